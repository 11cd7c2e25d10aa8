// Entry point of the multi-threaded kernel builds (wasm/kernels.{simd,relaxed}-threads.wasm):
// every kernel of index.ts over an imported SHARED memory, plus the head-range attention entry
// points and the column-range int4 x·Wᵀ workers use. src/kernels/parallel.ts splits calls across workers.
export * from "./index";
export { attentionBackwardGroups, attentionForwardHeads } from "./attention";
import { int4XWtStrided } from "./int4";

/**
 * int4MatmulXWt over W rows q.. (N of them) into columns of an output whose rows are `ldOut`
 * floats apart: a column range of a wider call (src/kernels/parallel.ts cuts at multiples of 8).
 */
export function int4MatmulXWtCols(
  out: usize,
  x: usize,
  q: usize,
  scales: usize,
  biases: usize,
  M: i32,
  N: i32,
  K: i32,
  groupSize: i32,
  alpha: f32,
  acc: i32,
  ldOut: i32,
): void {
  int4XWtStrided(out, <usize>ldOut << 2, x, q, scales, biases, M, N, K, groupSize, alpha, acc);
}
