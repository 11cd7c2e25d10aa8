/**
 * Helpers shared by the kernel tests: a seeded generator, central finite differences in f64, an
 * element-wise closeness check that names the worst element, and the kernel builds under test.
 */
import { Arena } from "../runtime/arena.ts";
import type { Kernels, Ptr } from "./abi.ts";
import { createReferenceKernels } from "./reference/mod.ts";
import { kernelModuleBytes } from "./wasm.ts";

/** Deterministic uniform generator in [-1, 1) (mulberry32). */
export function makeRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/** n values uniform in [-scale, scale) as f64. */
export function randomArray(rand: () => number, n: number, scale = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * scale;
  return a;
}

/** Σ a_i b_i in f64. */
export function dotAll(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Central finite differences of a scalar `loss()` with respect to every element of `x` (perturbed
 * in place and restored). In f64 with h = 1e-5 the truncation error is ~h² |f'''| ≈ 1e-10 and the
 * rounding error ~1e-16 / h ≈ 1e-11, so a 1e-6 relative tolerance is far from both.
 */
export function finiteDifferences(loss: () => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i];
    x[i] = x0 + h;
    const up = loss();
    x[i] = x0 - h;
    const down = loss();
    x[i] = x0;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/**
 * Asserts |actual - expected| <= atol + rtol * |expected| element-wise; the message names the
 * first failing element and the largest deviation.
 */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: { rtol?: number; atol?: number },
  label: string,
): void {
  const rtol = tol.rtol ?? 0;
  const atol = tol.atol ?? 0;
  if (actual.length !== expected.length) {
    throw new Error(`${label}: length ${actual.length} != expected ${expected.length}`);
  }
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < actual.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const ok = err <= atol + rtol * Math.abs(expected[i]);
    if (!ok || Number.isNaN(actual[i]) !== Number.isNaN(expected[i])) {
      if (worst < 0 || err > worstErr || Number.isNaN(err)) {
        worst = i;
        worstErr = err;
      }
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(|err| ${worstErr}, atol ${atol}, rtol ${rtol})`,
    );
  }
}

/** One kernel build under test over its own memory and arena. */
export interface KernelBuild {
  name: "reference" | "simd" | "relaxed";
  kernels: Kernels;
  arena: Arena;
}

/**
 * Instantiates a wasm build directly (the loader insists on every ABI export, which the GEMM/int4
 * families may not provide yet); exports the build lacks throw when called.
 */
export function wasmBuild(variant: "simd" | "relaxed"): KernelBuild {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const module = new WebAssembly.Module(kernelModuleBytes(variant) as BufferSource);
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<
    string,
    unknown
  >;
  const kernels = new Proxy({} as Kernels, {
    get(_, name: string) {
      const f = exports[name];
      if (typeof f !== "function") throw new Error(`wasm build ${variant} lacks ${name}`);
      return f;
    },
  });
  const arena = new Arena(memory, kernels.heapBase());
  const bytes = kernels.scratchBytes();
  kernels.init(arena.alloc(bytes), bytes);
  return { name: variant, kernels, arena };
}

/** The TS reference over its own memory. */
export function referenceBuild(): KernelBuild {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const kernels = createReferenceKernels(memory);
  return { name: "reference", kernels, arena: new Arena(memory, kernels.heapBase()) };
}

/** Both wasm builds. */
export function wasmBuilds(): KernelBuild[] {
  return [wasmBuild("simd"), wasmBuild("relaxed")];
}

/** Copies `data` into a fresh f32 allocation. */
export function putF32(arena: Arena, data: ArrayLike<number>): Ptr {
  const p = arena.allocF32(Math.max(1, data.length));
  arena.f32(p, data.length).set(data);
  return p;
}

/** Copies `data` into a fresh i32 allocation. */
export function putI32(arena: Arena, data: ArrayLike<number>): Ptr {
  const p = arena.allocI32(Math.max(1, data.length));
  arena.i32(p, data.length).set(data);
  return p;
}

/** A copy of n f32 values at p. */
export function getF32(arena: Arena, p: Ptr, n: number): Float32Array {
  return arena.f32(p, n).slice();
}
