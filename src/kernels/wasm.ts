/**
 * Loads the WebAssembly kernels with the builds embedded in `wasm/embedded.ts` (no file or
 * network access): the relaxed-SIMD build where the engine validates it and the plain simd128
 * build otherwise, over one `WebAssembly.Memory` and its arena (the loader is `load.ts`). Edge
 * runtimes that cannot compile bytes at run time pass an already compiled `WebAssembly.Module`;
 * those that always do can import `mod_slim.ts`, whose loader embeds no builds.
 *
 * @example
 * ```ts
 * import { loadKernels } from "./wasm.ts";
 * const { kernels, arena, variant } = await loadKernels();
 * const x = arena.allocF32(4);
 * arena.f32(x, 4).set([1, 2, 3, 4]);
 * console.log(variant, kernels.sumSquares(x, 4)); // 30
 * ```
 *
 * Threads: `loadKernels({ threads: N })` (see `load.ts`): N - 1 kernel workers, bit-identical
 * results, one thread wherever workers cannot run; `close()` when done.
 */
import {
  KERNELS_RELAXED_BASE64,
  KERNELS_RELAXED_THREADS_BASE64,
  KERNELS_SIMD_BASE64,
  KERNELS_SIMD_THREADS_BASE64,
} from "../../wasm/embedded.ts";
import {
  type KernelBuild,
  type LoadedKernels,
  loadKernelsFrom,
  type LoadKernelsOptions,
  loadKernelsSyncFrom,
} from "./load.ts";

export {
  isThreadsModule,
  type KernelBuild,
  type KernelVariant,
  type LoadedKernels,
  type LoadKernelsOptions,
  moduleVariant,
  supportsRelaxedSimd,
} from "./load.ts";

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const EMBEDDED: Record<KernelBuild, string> = {
  "relaxed": KERNELS_RELAXED_BASE64,
  "simd": KERNELS_SIMD_BASE64,
  "relaxed-threads": KERNELS_RELAXED_THREADS_BASE64,
  "simd-threads": KERNELS_SIMD_THREADS_BASE64,
};
const decoded = new Map<KernelBuild, Uint8Array>();

/** The embedded bytes of a build. */
export function kernelModuleBytes(build: KernelBuild): Uint8Array {
  let b = decoded.get(build);
  if (!b) {
    b = decodeBase64(EMBEDDED[build]);
    decoded.set(build, b);
  }
  return b;
}

/** Instantiates the kernels over a (new or given) memory and sets up the arena and scratch. */
export function loadKernels(options: LoadKernelsOptions = {}): Promise<LoadedKernels> {
  return loadKernelsFrom(kernelModuleBytes, options);
}

/** Synchronous form of {@link loadKernels}: one thread only (`threads` > 1 throws). */
export function loadKernelsSync(options: LoadKernelsOptions = {}): LoadedKernels {
  return loadKernelsSyncFrom(kernelModuleBytes, options);
}
