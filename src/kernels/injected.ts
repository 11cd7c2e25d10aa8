/**
 * The kernel loader of `mod_slim.ts`: no builds embedded, so the caller injects the compiled
 * module (`module: WebAssembly.Module`, e.g. Cloudflare's `import KERNELS from
 * "./kernels.relaxed.wasm"`) or asks for the TypeScript `reference` kernels. Without either it
 * throws, naming what to pass.
 *
 * @example
 * ```ts
 * import { loadKernels } from "./injected.ts";
 * const { variant } = await loadKernels({ variant: "reference" });
 * console.log(variant); // "reference"
 * ```
 * @module
 */
import {
  type LoadedKernels,
  loadKernelsFrom,
  type LoadKernelsOptions,
  loadKernelsSyncFrom,
} from "./load.ts";

/** Instantiates the injected `options.module` over a (new or given) memory, with its arena. */
export function loadKernels(options: LoadKernelsOptions = {}): Promise<LoadedKernels> {
  return loadKernelsFrom(null, options);
}

/** Synchronous form of {@link loadKernels}: one thread only (`threads` > 1 throws). */
export function loadKernelsSync(options: LoadKernelsOptions = {}): LoadedKernels {
  return loadKernelsSyncFrom(null, options);
}
