/**
 * Test helpers for the GEMM and int4 kernels: a wasm build loaded through the loader, the TS
 * reference bound to the SAME memory (both read identical inputs), a seeded generator, and the
 * error bound the matmul tests use.
 */
import type { Arena } from "../runtime/arena.ts";
import type { Kernels } from "./abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import { createReferenceKernels } from "./reference/mod.ts";
import { loadKernelsSync } from "./wasm.ts";

/** The kernels these tests exercise. */
export type MatmulKernels = Pick<
  Kernels,
  | "heapBase"
  | "scratchBytes"
  | "init"
  | "matmulABt"
  | "matmulAB"
  | "matmulAtB"
  | "int4Quantize"
  | "int4Dequantize"
  | "int4MatmulXWt"
  | "int4MatmulGW"
  | "int4GatherRows"
>;

/** One wasm build with the reference over the same memory and an arena past the scratch. */
export interface MatmulBuild {
  variant: "simd" | "relaxed";
  wasm: MatmulKernels;
  reference: Kernels;
  arena: Arena;
}

/** Loads a build of wasm/ through the loader, with the reference over the same memory. */
export function matmulBuild(variant: "simd" | "relaxed"): MatmulBuild {
  const loaded = loadKernelsSync({ variant });
  const wasm: MatmulKernels = loaded.kernels;
  return { variant, wasm, reference: createReferenceKernels(loaded.memory), arena: loaded.arena };
}

/** Deterministic uniform generator in [-1, 1) (mulberry32). */
export function makeRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

/** Allocates n f32 uniform in [-scale, scale). */
export function randomF32(arena: Arena, rand: () => number, n: number, scale = 1): Ptr {
  const p = arena.allocF32(Math.max(n, 1));
  const v = arena.f32(p, n);
  for (let i = 0; i < n; i++) v[i] = rand() * scale;
  return p;
}

/** Allocates a copy of the n f32 at src. */
export function copyF32(arena: Arena, src: Ptr, n: number): Ptr {
  const p = arena.allocF32(Math.max(n, 1));
  arena.f32(p, n).set(arena.f32(src, n));
  return p;
}

/** Unit roundoff of f32. */
export const F32_U = 2 ** -24;

/**
 * Asserts |actual[i] - expected[i]| <= tol * bound[i] for every i, naming the worst element.
 * The matmul tests use bound = |alpha| Σ_k |a_ik||b_kj| + |prior_ij| and tol = (K + 4) u: the
 * classical worst-case error of an f32 dot product of length K in any summation order (γ_K), plus
 * the alpha scaling, the add into the prior and the reference's own final rounding. A wrong index
 * or a dropped term errs by O(bound), far above this.
 */
export function assertWithinBound(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  bound: ArrayLike<number>,
  tol: number,
  label: string,
): void {
  let worst = -1;
  let worstRatio = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    const limit = tol * bound[i] + Number.MIN_VALUE;
    if (!(err <= limit)) {
      const ratio = Number.isNaN(err) ? Infinity : err / limit;
      if (ratio > worstRatio || worst < 0) {
        worst = i;
        worstRatio = ratio;
      }
    }
  }
  if (worst >= 0) {
    throw new Error(
      `${label}: element ${worst} is ${actual[worst]}, expected ${expected[worst]}, ` +
        `|err| = ${worstRatio.toPrecision(3)} x allowed (${tol} * ${bound[worst]})`,
    );
  }
}

/** Throws `message` unless `condition` holds (node:assert does not type-check without @types/node). */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

/** Asserts two numeric sequences are identical element by element (Object.is, so -0 != 0). */
export function checkIdentical(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  label: string,
): void {
  check(
    actual.length === expected.length,
    `${label}: length ${actual.length} != ${expected.length}`,
  );
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      throw new Error(`${label}: element ${i} is ${actual[i]}, expected ${expected[i]}`);
    }
  }
}
