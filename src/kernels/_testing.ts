/**
 * Helpers shared by the kernel tests: a seeded generator, central finite differences in f64, an
 * element-wise closeness check that names the worst element, and the kernel builds under test.
 */
import { Arena } from "../runtime/arena.ts";
import type { Kernels } from "./abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import { createReferenceKernels } from "./reference/mod.ts";
import { kernelModuleBytes, loadKernelsSync } from "./wasm.ts";

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
    // NaN matches only NaN; equal values (infinities included) always match.
    if (Number.isNaN(actual[i]) && Number.isNaN(expected[i])) continue;
    if (actual[i] === expected[i]) continue;
    const err = Math.abs(actual[i] - expected[i]);
    const ok = err <= atol + rtol * Math.abs(expected[i]);
    if (!ok) {
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

/** A wasm build through the real loader, over its own memory and arena. */
export function wasmBuild(variant: "simd" | "relaxed"): KernelBuild {
  const { kernels, arena } = loadKernelsSync({ variant });
  return { name: variant, kernels, arena };
}

/**
 * The raw exports of a wasm build over a fresh memory with scratch set up, for exports outside the
 * ABI (e.g. `expArray`).
 */
export function wasmExports(
  variant: "simd" | "relaxed",
): { exports: Record<string, (...args: number[]) => number>; arena: Arena } {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const module = new WebAssembly.Module(kernelModuleBytes(variant) as BufferSource);
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<
    string,
    (...args: number[]) => number
  >;
  const arena = new Arena(memory, exports.heapBase());
  const bytes = exports.scratchBytes();
  exports.init(arena.alloc(bytes), bytes);
  return { exports, arena };
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

/** Largest |x|. */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/**
 * Runs `f` on the reference and on each wasm build (fresh memories, same inputs); returns each
 * build's outputs, reference first.
 */
export function onEveryBuild<R>(f: (b: KernelBuild) => R): { build: string; out: R }[] {
  return [referenceBuild(), ...wasmBuilds()].map((b) => ({ build: b.name, out: f(b) }));
}
