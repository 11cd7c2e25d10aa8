/**
 * `deno bundle` of one entry for the browser, under a deadline, for the harnesses that serve
 * bundled code to an engine (the browser example, workerd, the dispatch bench).
 *
 * Deno installs its esbuild binary into its cache the first time it bundles. Bundles started at
 * once on a fresh cache (parallel tests, or two entries bundled together) race on that install and
 * the loser fails with "failed to copy esbuild binary"; the install is done by then, so that one
 * failure is tried again. Any other failure is reported at once with what deno printed.
 *
 * @module
 */
import { runWithDeadline } from "./harness.ts";

/** Tries of a bundle that lost the esbuild install race. */
const INSTALL_RACE_TRIES = 3;

/** What deno prints when another process was installing esbuild at the same moment. */
export function isEsbuildInstallRace(stderr: string): boolean {
  return /failed to copy esbuild binary/.test(stderr);
}

/** Bundles `entryPath` (absolute) into `outFile`, run from `cwd`, within `timeoutMs`. */
export async function denoBundle(
  entryPath: string,
  outFile: string,
  o: { cwd: string; timeoutMs: number },
): Promise<void> {
  for (let attempt = 1;; attempt++) {
    const out = await runWithDeadline(
      Deno.execPath(),
      ["bundle", "--platform", "browser", "--output", outFile, entryPath],
      {
        timeoutMs: o.timeoutMs,
        what: `deno bundle ${entryPath}`,
        cwd: o.cwd,
        env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      },
    );
    if (out.success) return;
    if (attempt < INSTALL_RACE_TRIES && isEsbuildInstallRace(out.stderr)) {
      await new Promise((r) => setTimeout(r, 1000 * attempt));
      continue;
    }
    throw new Error(`deno bundle ${entryPath} failed:\n${out.stderr}`);
  }
}
