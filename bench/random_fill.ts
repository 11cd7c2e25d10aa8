/**
 * Deterministic benchmark inputs: an arena allocation filled with values in [-1, 1) from a small
 * LCG. Portable (no Deno APIs), so the browser side of bench/dispatch.ts can use it too.
 *
 * @module
 */
import type { Arena } from "../src/runtime/arena.ts";

/** Allocates `n` floats in `arena` and fills them from `seed`; returns the pointer. */
export function fillRandom(arena: Arena, n: number, seed: number): number {
  const p = arena.allocF32(n);
  const v = arena.f32(p, n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    v[i] = s / 2 ** 31 - 1;
  }
  return p;
}
