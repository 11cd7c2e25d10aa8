/**
 * Reference fused cross-entropy over vocabulary chunks (see `ceChunkForward` in abi.ts).
 *
 * The forward keeps an online log-sum-exp per row: on each chunk the running max moves to
 * `max(rowMax, chunkMax)` and the running sum is rescaled by `exp(oldMax - newMax)`. After the
 * last chunk, `lse = rowMax + log(rowSum)` and the loss of a row is `lse - targetLogit`.
 */
import type { Kernels } from "../abi.ts";
import type { Floats } from "./floats.ts";
import type { MemViews } from "./views.ts";

/** Array-level chunk forward (see abi.ts); state arrays are updated in place. */
export function ceChunkForwardArrays(
  logits: Floats,
  T: number,
  Vc: number,
  v0: number,
  targets: Int32Array,
  rowMax: Floats,
  rowSum: Floats,
  targetLogit: Floats,
): void {
  for (let t = 0; t < T; t++) {
    const target = targets[t];
    if (target < 0) continue;
    const o = t * Vc;
    let cmax = -Infinity;
    for (let j = 0; j < Vc; j++) if (logits[o + j] > cmax) cmax = logits[o + j];
    const oldMax = rowMax[t];
    const newMax = Math.max(oldMax, cmax);
    // All logits so far are -Infinity: nothing to add, and -Inf - -Inf would be NaN.
    if (newMax === -Infinity) continue;
    let sum = 0;
    for (let j = 0; j < Vc; j++) sum += Math.exp(logits[o + j] - newMax);
    rowSum[t] = rowSum[t] * Math.exp(oldMax - newMax) + sum;
    rowMax[t] = newMax;
    if (target >= v0 && target < v0 + Vc) targetLogit[t] = logits[o + target - v0];
  }
}

/** Array-level chunk backward: logits -> rowScale * (softmax - onehot), ignored rows -> 0. */
export function ceChunkBackwardArrays(
  logits: Floats,
  T: number,
  Vc: number,
  v0: number,
  targets: Int32Array,
  lse: Floats,
  rowScale: number,
): void {
  for (let t = 0; t < T; t++) {
    const target = targets[t];
    const o = t * Vc;
    if (target < 0) {
      logits.fill(0, o, o + Vc);
      continue;
    }
    const l = lse[t];
    for (let j = 0; j < Vc; j++) {
      const hit = v0 + j === target ? 1 : 0;
      logits[o + j] = rowScale * (Math.exp(logits[o + j] - l) - hit);
    }
  }
}

/** Cross-entropy chunk kernels over linear memory. */
export function crossEntropyReference(
  m: MemViews,
): Pick<Kernels, "ceChunkForward" | "ceChunkBackward"> {
  return {
    ceChunkForward(logits, T, Vc, v0, targets, rowMax, rowSum, targetLogit) {
      ceChunkForwardArrays(
        m.f32(logits, T * Vc),
        T,
        Vc,
        v0,
        m.i32(targets, T),
        m.f32(rowMax, T),
        m.f32(rowSum, T),
        m.f32(targetLogit, T),
      );
    },
    ceChunkBackward(logits, T, Vc, v0, targets, lse, rowScale) {
      ceChunkBackwardArrays(
        m.f32(logits, T * Vc),
        T,
        Vc,
        v0,
        m.i32(targets, T),
        m.f32(lse, T),
        rowScale,
      );
    },
  };
}
