/**
 * Final RMSNorm + LM head + softmax cross-entropy, fused over vocabulary chunks so the
 * `[tokens, vocab]` logits never exist: pass 1 streams the chunks to get each row's
 * log-sum-exp; pass 2 (backward) recomputes each chunk's logits, turns them into
 * `rowScale * (softmax - onehot)` in place and accumulates `dn += dlogits · W_chunk`.
 */
import type { Kernels, Ptr } from "../kernels/abi.ts";
import type { Arena } from "../runtime/arena.ts";
import { baseBackward, baseForward } from "./linear.ts";
import type { WeightStore } from "./weights.ts";

/** What the head needs: the store (final norm, head chunks) and the kernels. */
export interface HeadContext {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  /** Vocabulary rows per chunk (multiple of 16). */
  headChunkRows: number;
}

/**
 * HF causal-LM targets: row t of each sequence predicts `labels[t + 1]` of the same sequence;
 * the last row of each sequence and labels of -100 are ignored (written as -1).
 * Returns the number of counted rows.
 */
export function shiftLabels(
  labels: Int32Array,
  batchSize: number,
  seqLen: number,
  vocabSize: number,
  out: Int32Array,
): number {
  let count = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t;
      const label = t + 1 < seqLen ? labels[i + 1] : -100;
      if (label === -100) {
        out[i] = -1;
        continue;
      }
      if (!Number.isInteger(label) || label < 0 || label >= vocabSize) {
        throw new RangeError(
          `label ${label} at [${b}, ${t + 1}] outside vocabulary 0..${vocabSize - 1}`,
        );
      }
      out[i] = label;
      count++;
    }
  }
  return count;
}

/** Per-row log-sum-exp and target logit over all chunks (pass 1). Returns Σ (lse - target). */
async function lossPass(
  h: HeadContext,
  n: Ptr,
  targets: Ptr,
  N: number,
  lse: Ptr,
): Promise<number> {
  const { kernels: k, arena } = h;
  const mark = arena.mark();
  const rowSum = arena.allocF32(N);
  const target = arena.allocF32(N);
  arena.f32(lse, N).fill(-Infinity); // lse doubles as the running max
  arena.f32(rowSum, N).fill(0);
  arena.f32(target, N).fill(0);
  const logits = arena.allocF32(N * h.headChunkRows);
  for await (const { v0, weight } of h.store.headChunks(h.headChunkRows)) {
    baseForward(k, weight, logits, n, N, 0);
    k.ceChunkForward(logits, N, weight.out, v0, targets, lse, rowSum, target);
  }
  const m = arena.f32(lse, N);
  const s = arena.f32(rowSum, N);
  const tl = arena.f32(target, N);
  const tg = arena.i32(targets, N);
  let total = 0;
  for (let i = 0; i < N; i++) {
    if (tg[i] < 0) continue;
    m[i] = m[i] + Math.log(s[i]);
    total += m[i] - tl[i];
  }
  arena.release(mark);
  return total;
}

/**
 * Loss only: Σ over counted rows of the cross-entropy, from the final hidden states `x` [N, D]
 * (before the final norm). Nothing is kept.
 */
export async function headLoss(h: HeadContext, x: Ptr, targets: Ptr, N: number): Promise<number> {
  const { kernels: k, arena, store } = h;
  const D = store.config.hiddenSize;
  const mark = arena.mark();
  const rstd = arena.allocF32(N);
  const n = arena.allocF32(N * D);
  k.rmsnormForward(n, rstd, x, store.finalNorm, N, D, store.config.rmsNormEps);
  const lse = arena.allocF32(N);
  const total = await lossPass(h, n, targets, N, lse);
  arena.release(mark);
  return total;
}

/**
 * Loss and its gradient: returns Σ cross-entropy over counted rows and writes
 * `dx = rowScale * d(Σ CE)/dx` [N, D] (overwritten). With `rowScale = 1 / count` this is the
 * gradient of HF's mean loss.
 */
export async function headLossBackward(
  h: HeadContext,
  x: Ptr,
  targets: Ptr,
  N: number,
  rowScale: number,
  dx: Ptr,
): Promise<number> {
  const { kernels: k, arena, store } = h;
  const D = store.config.hiddenSize;
  const mark = arena.mark();
  const rstd = arena.allocF32(N);
  const n = arena.allocF32(N * D);
  k.rmsnormForward(n, rstd, x, store.finalNorm, N, D, store.config.rmsNormEps);
  const lse = arena.allocF32(N);
  const total = await lossPass(h, n, targets, N, lse);
  const dn = arena.allocF32(N * D);
  arena.f32(dn, N * D).fill(0);
  const logits = arena.allocF32(N * h.headChunkRows);
  for await (const { v0, weight } of store.headChunks(h.headChunkRows)) {
    baseForward(k, weight, logits, n, N, 0);
    k.ceChunkBackward(logits, N, weight.out, v0, targets, lse, rowScale);
    baseBackward(k, weight, dn, logits, N, 1);
  }
  k.rmsnormBackward(dx, 0, dn, x, store.finalNorm, rstd, N, D, 0);
  arena.release(mark);
  return total;
}
