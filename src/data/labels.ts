/**
 * Labels and the targets they become: the Hugging Face causal-LM convention of
 * docs/design.md, "Loss and labels". Labels are stored unshifted, beside the inputs; row `t` of a
 * sequence is trained to predict the label at `t + 1` of the same sequence, so the label at
 * position 0 is never a target and the last row predicts nothing.
 *
 * @example
 * ```ts
 * import { IGNORE_INDEX, NO_TARGET, shiftLabels } from "./labels.ts";
 * const labels = Int32Array.of(IGNORE_INDEX, IGNORE_INDEX, 7, 8);
 * const targets = new Int32Array(4);
 * const counted = shiftLabels(labels, 1, 4, 10, targets);
 * console.log(counted, Array.from(targets)); // 2 [-1, 7, 8, -1]
 * console.log(targets[0] === NO_TARGET); // true
 * ```
 */

/** Label of a position that is not trained on: prompts, system turns, padding (HF convention). */
export const IGNORE_INDEX = -100;

/** Shifted target of a row that predicts nothing, as the loss kernels read it. */
export const NO_TARGET = -1;

/**
 * Shifts `labels` (`batchSize` sequences of `seqLen`) into per-row targets, written to `out`
 * when given ({@link NO_TARGET} for rows without one), and returns how many rows have a target.
 * A label that is neither {@link IGNORE_INDEX} nor a token id below `vocabSize` is refused.
 */
export function shiftLabels(
  labels: Int32Array,
  batchSize: number,
  seqLen: number,
  vocabSize: number,
  out?: Int32Array,
): number {
  let count = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let t = 0; t < seqLen; t++) {
      const i = b * seqLen + t;
      const label = t + 1 < seqLen ? labels[i + 1] : IGNORE_INDEX;
      if (label === IGNORE_INDEX) {
        if (out) out[i] = NO_TARGET;
        continue;
      }
      if (!Number.isInteger(label) || label < 0 || label >= vocabSize) {
        throw new RangeError(
          `label ${label} at [${b}, ${t + 1}] outside vocabulary 0..${vocabSize - 1}`,
        );
      }
      if (out) out[i] = label;
      count++;
    }
  }
  return count;
}

/** Rows of a batch that have a target: what its loss is averaged over. */
export function countTargets(
  batch: { labels: Int32Array; batchSize: number; seqLen: number },
  vocabSize: number,
): number {
  return shiftLabels(batch.labels, batch.batchSize, batch.seqLen, vocabSize);
}

/**
 * True when the label runs, read end to end as one sequence, give some row a target: a label
 * other than {@link IGNORE_INDEX} past the sequence's position 0.
 */
export function hasTarget(runs: Iterable<ArrayLike<number>>): boolean {
  let first = 1;
  for (const labels of runs) {
    for (let t = first; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) return true;
    first = Math.max(0, first - labels.length);
  }
  return false;
}
