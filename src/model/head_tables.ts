/**
 * The buffers of the fused LM head (`head.ts`) as named tables, and their arena peaks: `head.ts`
 * allocates each buffer by its name from these tables and the memory plan sums the same ones, so
 * a size is written once. `M` is the rows that go through the head (the counted rows, gathered),
 * `C` the vocabulary rows per chunk.
 *
 * @example
 * ```ts
 * import { headChunkRowsOf, headPeaks } from "./head_tables.ts";
 * const C = headChunkRowsOf(1000); // 1008: a multiple of 16
 * const peaks = headPeaks({ rows: 31, hiddenSize: 64, chunkRows: C });
 * console.log(peaks.backward > peaks.forward); // true
 * ```
 */
import { tableBytes } from "./buffer_table.ts";

/** Default vocabulary rows per LM-head chunk. */
export const DEFAULT_HEAD_CHUNK_ROWS = 1024;

/**
 * The vocabulary rows per chunk the head runs with for `given` rows (absent: the default): rounded
 * up to a multiple of 16, the tile the int4 head weights come in.
 */
export function headChunkRowsOf(given?: number): number {
  return Math.ceil((given ?? DEFAULT_HEAD_CHUNK_ROWS) / 16) * 16;
}

/** What sizes the head's buffers. */
export interface HeadShape {
  /** Rows through the head (gathered). */
  rows: number;
  hiddenSize: number;
  /** Vocabulary rows per chunk (a multiple of 16). */
  chunkRows: number;
}

/** `headLoss`: gathered targets (i32), the final norm's rstd and output, the log-sum-exp. */
export function headLossTable(h: HeadShape) {
  const M = h.rows;
  return { targets: M, rstd: M, n: M * h.hiddenSize, lse: M };
}

/** The loss pass of `headLoss`: running sums, target logits, one chunk of logits. */
export function lossPassTable(h: HeadShape) {
  const M = h.rows;
  return { rowSum: M, target: M, logits: M * h.chunkRows };
}

/** `headLossBackward`, in allocation order (`noHit` is i32). */
export function headBackwardTable(h: HeadShape) {
  const M = h.rows;
  const D = h.hiddenSize;
  return {
    targets: M,
    rstd: M,
    n: M * D,
    rowMax: M,
    rowSum: M,
    target: M,
    oldMax: M,
    noHit: M,
    acc: M * D,
    targetRows: M * D,
    logits: M * h.chunkRows,
  };
}

/** The head's arena peaks, in bytes. */
export interface HeadPeaks {
  /** `headLoss`. */
  forward: number;
  /** `headLossBackward`. */
  backward: number;
}

/** {@link HeadPeaks} of `h` (nothing for no rows: the head returns before allocating). */
export function headPeaks(h: HeadShape): HeadPeaks {
  if (h.rows === 0) return { forward: 0, backward: 0 };
  return {
    forward: tableBytes(headLossTable(h)) + tableBytes(lossPassTable(h)),
    backward: tableBytes(headBackwardTable(h)),
  };
}
