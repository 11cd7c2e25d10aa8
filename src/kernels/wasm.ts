/**
 * Loads the WebAssembly kernels: picks the relaxed-SIMD build where the engine validates it and
 * the plain simd128 build otherwise, binds them to one `WebAssembly.Memory`, and sets up the arena
 * every other allocation comes from.
 *
 * Portable: the module bytes come from `wasm/embedded.ts` (no file or network access). Edge
 * runtimes that cannot compile bytes at run time pass an already compiled `WebAssembly.Module`.
 *
 * @example
 * ```ts
 * import { loadKernels } from "./wasm.ts";
 * const { kernels, arena, variant } = await loadKernels();
 * const x = arena.allocF32(4);
 * arena.f32(x, 4).set([1, 2, 3, 4]);
 * console.log(variant, kernels.sumSquares(x, 4)); // 30
 * ```
 */
import type { Kernels } from "./abi.ts";
import { KERNEL_NAMES } from "./abi.ts";
import { Arena } from "../runtime/arena.ts";
import { KERNELS_RELAXED_BASE64, KERNELS_SIMD_BASE64 } from "../../wasm/embedded.ts";
import { createReferenceKernels } from "./reference/mod.ts";
import { checkInt4Shape } from "./reference/int4.ts";

/** Which build runs: `relaxed` (FMA, relaxed-simd), `simd` (plain simd128) or the TS `reference`. */
export type KernelVariant = "relaxed" | "simd" | "reference";

export interface LoadKernelsOptions {
  /** `auto` (default) prefers relaxed, then simd. */
  variant?: KernelVariant | "auto";
  /**
   * An already compiled kernel module (edge runtimes). Its variant is read from the module's
   * `slimtune.variant` section unless `variant` names it.
   */
  module?: WebAssembly.Module;
  /** Use this memory instead of a new one (e.g. a shared memory for workers). */
  memory?: WebAssembly.Memory;
}

export interface LoadedKernels {
  kernels: Kernels;
  arena: Arena;
  memory: WebAssembly.Memory;
  variant: KernelVariant;
}

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let relaxedBytes: Uint8Array | undefined;
let simdBytes: Uint8Array | undefined;

/** The embedded bytes of a build. */
export function kernelModuleBytes(variant: "relaxed" | "simd"): Uint8Array {
  if (variant === "relaxed") return relaxedBytes ??= decodeBase64(KERNELS_RELAXED_BASE64);
  return simdBytes ??= decodeBase64(KERNELS_SIMD_BASE64);
}

/** True where this engine accepts the relaxed-SIMD build. */
export function supportsRelaxedSimd(): boolean {
  return WebAssembly.validate(kernelModuleBytes("relaxed") as BufferSource);
}

/**
 * The build a compiled module is, from the `slimtune.variant` custom section scripts/build_wasm.ts
 * writes; a module without it (built elsewhere) is assumed to be plain simd128.
 */
export function moduleVariant(module: WebAssembly.Module): "relaxed" | "simd" {
  const sections = WebAssembly.Module.customSections(module, "slimtune.variant");
  if (sections.length === 0) return "simd";
  const name = new TextDecoder().decode(sections[0]);
  return name === "relaxed" ? "relaxed" : "simd";
}

/**
 * The int4 kernels trust their groupSize (a bad one would silently mis-read nibbles or trap with a
 * bare "divide by zero"), so the binding checks it and throws a RangeError naming the kernel.
 */
function withInt4ShapeChecks(k: Kernels): Kernels {
  return {
    ...k,
    int4Quantize(q, scales, biases, w, N, K, groupSize) {
      checkInt4Shape("int4Quantize", K, groupSize);
      k.int4Quantize(q, scales, biases, w, N, K, groupSize);
    },
    int4Dequantize(out, q, scales, biases, N, K, groupSize) {
      checkInt4Shape("int4Dequantize", K, groupSize);
      k.int4Dequantize(out, q, scales, biases, N, K, groupSize);
    },
    int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulXWt", K, groupSize);
      k.int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc);
    },
    int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulGW", K, groupSize);
      k.int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, alpha, acc);
    },
    int4GatherRows(out, ids, q, scales, biases, T, K, groupSize) {
      checkInt4Shape("int4GatherRows", K, groupSize);
      k.int4GatherRows(out, ids, q, scales, biases, T, K, groupSize);
    },
  };
}

const moduleCache = new Map<string, WebAssembly.Module>();

function compiled(variant: "relaxed" | "simd"): WebAssembly.Module {
  let m = moduleCache.get(variant);
  if (!m) {
    m = new WebAssembly.Module(kernelModuleBytes(variant) as BufferSource);
    moduleCache.set(variant, m);
  }
  return m;
}

/** Instantiates the kernels over a (new or given) memory and sets up the arena and scratch. */
export function loadKernels(options: LoadKernelsOptions = {}): Promise<LoadedKernels> {
  return Promise.resolve(loadKernelsSync(options));
}

/** Synchronous form of {@link loadKernels}. */
export function loadKernelsSync(options: LoadKernelsOptions = {}): LoadedKernels {
  const memory = options.memory ?? new WebAssembly.Memory({ initial: 1 });
  let variant: KernelVariant;
  let kernels: Kernels;
  const wanted = options.variant ?? "auto";
  if (wanted === "reference") {
    variant = "reference";
    kernels = createReferenceKernels(memory);
  } else {
    let module = options.module;
    if (module) {
      variant = wanted === "auto" ? moduleVariant(module) : wanted;
    } else {
      variant = wanted === "auto" ? (supportsRelaxedSimd() ? "relaxed" : "simd") : wanted;
      module = compiled(variant);
    }
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const exports = instance.exports as Record<string, unknown>;
    const bound: Record<string, unknown> = {};
    for (const name of KERNEL_NAMES) {
      const f = exports[name];
      if (typeof f !== "function") {
        throw new Error(`kernel module (${variant}) lacks export "${name}": rebuild wasm/`);
      }
      bound[name] = f;
    }
    kernels = withInt4ShapeChecks(bound as unknown as Kernels);
  }
  const arena = new Arena(memory, kernels.heapBase());
  const bytes = kernels.scratchBytes();
  if (bytes > 0) kernels.init(arena.alloc(bytes), bytes);
  return { kernels, arena, memory, variant };
}
