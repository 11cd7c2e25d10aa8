/**
 * The kernel builds of another git revision, for benchmarks that compare this tree's kernels
 * with a baseline in one process, interleaved (the machine's other load then falls on both):
 * `wasm/kernels.<build>.wasm` as committed at `rev`, read with `git show`.
 *
 * ```ts ignore
 * const baseline = await loadBaselineKernels("main", { threads: 2 });
 * ```
 *
 * @module
 */
import type { KernelBuild, LoadedKernels, LoadKernelsOptions } from "../src/kernels/wasm.ts";
import { loadKernelsFrom } from "../src/kernels/load.ts";

/** How long one `git show` may take before the benchmark gives up. */
const GIT_DEADLINE_MS = 30_000;
const BUILDS: KernelBuild[] = ["relaxed", "simd", "relaxed-threads", "simd-threads"];

/** The four builds' bytes as committed at `rev` (a branch, tag or commit). */
export async function baselineBuilds(rev: string): Promise<Map<KernelBuild, Uint8Array>> {
  const root = new URL("..", import.meta.url).pathname;
  const out = new Map<KernelBuild, Uint8Array>();
  for (const build of BUILDS) {
    const path = `wasm/kernels.${build}.wasm`;
    const signal = AbortSignal.timeout(GIT_DEADLINE_MS);
    let r: Deno.CommandOutput;
    try {
      r = await new Deno.Command("git", {
        args: ["show", `${rev}:${path}`],
        cwd: root,
        stdout: "piped",
        stderr: "piped",
        signal,
      }).output();
    } catch (e) {
      if (signal.aborted) {
        throw new Error(`git show ${rev}:${path} did not answer within ${GIT_DEADLINE_MS} ms`);
      }
      throw e;
    }
    if (!r.success) {
      const msg = new TextDecoder().decode(r.stderr).trim().split("\n")[0];
      throw new Error(`--baseline ${rev}: git show ${rev}:${path} failed: ${msg}`);
    }
    out.set(build, r.stdout);
  }
  return out;
}

/** The kernels of revision `rev`, loaded like {@link loadKernels} with `options`. */
export async function loadBaselineKernels(
  rev: string,
  options: LoadKernelsOptions = {},
): Promise<LoadedKernels> {
  const builds = await baselineBuilds(rev);
  return loadKernelsFrom((b) => builds.get(b)!, options);
}
