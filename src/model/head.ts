/**
 * Final RMSNorm + LM head + softmax cross-entropy, fused over vocabulary chunks so the
 * `[tokens, vocab]` logits never exist.
 *
 * Loss only ({@link headLoss}): one pass over the chunks keeps each row's online log-sum-exp.
 * Loss and gradient ({@link headLossBackward}): ONE pass too (each chunk's logits are computed
 * once, not recomputed after the log-sum-exp is known). With `m` the running row max and `s` the
 * running `Σ exp(l - m)`, `d(CE)/dn = Σ_v softmax_v W_v - W_target
 * = (Σ_v exp(l_v - m) W_v) / s - W_target`: each chunk adds `exp(l - m) · W_chunk` into an
 * accumulator whose rows are rescaled by `exp(m_old - m_new)` whenever a row's max moves (as
 * the online sum is), and each row's target weight row is copied out of the chunk holding it.
 */
import type { Kernels, Ptr } from "../kernels/abi.ts";
import type { Arena } from "../runtime/arena.ts";
import { expPortable, logPortable } from "../runtime/portable_math.ts";
import { baseBackward, baseForward } from "./linear.ts";
import type { LinearWeight, WeightStore } from "./weights.ts";

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
    m[i] = m[i] + logPortable(s[i]);
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
 * gradient of HF's mean loss. One pass over the LM head (see the module doc). `dx` may be `x`
 * (the final hidden states are dead once the head is done: the residual buffer becomes dy).
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
  const V = store.config.vocabSize;
  const mark = arena.mark();
  const rstd = arena.allocF32(N);
  const n = arena.allocF32(N * D);
  k.rmsnormForward(n, rstd, x, store.finalNorm, N, D, store.config.rmsNormEps);
  const rowMax = arena.allocF32(N);
  const rowSum = arena.allocF32(N);
  const target = arena.allocF32(N);
  const oldMax = arena.allocF32(N);
  // Targets that never match a column (V) for counted rows, -1 for ignored rows: the chunk
  // backward then yields exp(l - m) without the one-hot, and zero rows where ignored.
  const noHit = arena.allocI32(N);
  const acc = arena.allocF32(N * D);
  const targetRows = arena.allocF32(N * D);
  const logits = arena.allocF32(N * h.headChunkRows);
  const tg = arena.i32(targets, N).slice();
  const nh = arena.i32(noHit, N);
  for (let t = 0; t < N; t++) nh[t] = tg[t] < 0 ? -1 : V;
  arena.f32(rowMax, N).fill(-Infinity);
  arena.f32(rowSum, N).fill(0);
  arena.f32(target, N).fill(0);
  arena.f32(acc, N * D).fill(0);
  arena.f32(targetRows, N * D).fill(0);
  for await (const { v0, weight } of store.headChunks(h.headChunkRows)) {
    const Vc = weight.out;
    baseForward(k, weight, logits, n, N, 0);
    arena.f32(oldMax, N).set(arena.f32(rowMax, N));
    k.ceChunkForward(logits, N, Vc, v0, targets, rowMax, rowSum, target);
    k.ceChunkBackward(logits, N, Vc, v0, noHit, rowMax, 1);
    const before = arena.f32(oldMax, N);
    const now = arena.f32(rowMax, N);
    for (let t = 0; t < N; t++) {
      // The accumulator holds Σ exp(l - m_old) W: rescale rows whose max moved (0 rows stay 0).
      if (tg[t] >= 0 && before[t] !== now[t] && before[t] !== -Infinity) {
        k.scale(acc + t * D * F, expPortable(before[t] - now[t]), D);
      }
    }
    baseBackward(k, weight, acc, logits, N, 1);
    for (let t = 0; t < N; t++) {
      if (tg[t] >= v0 && tg[t] < v0 + Vc) {
        copyRow(k, arena, weight, tg[t] - v0, targetRows + t * D * F);
      }
    }
  }
  const m = arena.f32(rowMax, N);
  const s = arena.f32(rowSum, N);
  const tl = arena.f32(target, N);
  let total = 0;
  for (let t = 0; t < N; t++) {
    const row = acc + t * D * F;
    if (tg[t] < 0) continue; // its accumulator row is 0: zero gradient
    total += m[t] + logPortable(s[t]) - tl[t];
    // dn = rowScale (acc / s - W_target)
    k.scale(row, rowScale / s[t], D);
    k.axpy(row, targetRows + t * D * F, -rowScale, D);
  }
  // targetRows is dead: it takes a copy of x, so dx may alias x.
  arena.f32(targetRows, N * D).set(arena.f32(x, N * D));
  k.rmsnormBackward(dx, 0, acc, targetRows, store.finalNorm, rstd, N, D, 0);
  arena.release(mark);
  return total;
}

const F = 4;

/** out[K] = row `j` of `w` as f32 (rows of a LinearWeight are contiguous, see abi.ts). */
function copyRow(k: Kernels, arena: Arena, w: LinearWeight, j: number, out: Ptr): void {
  const K = w.in;
  if (w.kind === "f32") {
    arena.f32(out, K).set(arena.f32(w.w + j * K * F, K));
    return;
  }
  const groups = K / w.groupSize;
  k.int4Dequantize(
    out,
    w.q + j * (K / 8) * F,
    w.scales + j * groups * F,
    w.biases + j * groups * F,
    1,
    K,
    w.groupSize,
  );
}
