/**
 * Training data as fixed-shape batches: examples are streamed from a JSONL file and tokenized,
 * packed (or truncated) into rows of at most `seqLen` tokens, and served in a seeded, per-epoch
 * shuffled order. The order is a pure function of (seed, epoch), so a {@link DataPosition}
 * (epoch, row index) is all a checkpoint needs to continue with exactly the same batches.
 *
 * @example
 * ```ts
 * import { BatchSource, buildRows, loadExamples } from "./dataset.ts";
 * const bytes = new TextEncoder().encode('{"input_ids":[1,2,3,4]}\n{"input_ids":[5,6,7]}\n');
 * const examples = await loadExamples(new Blob([bytes]).stream(), "mem.jsonl", null, 10);
 * const { rows } = buildRows(examples, 8, "greedy");
 * const source = new BatchSource(rows, { batchSize: 1, seqLen: 8, padId: 0, seed: 0 });
 * const batch = source.next(); // one packed row of 7 tokens
 * ```
 */
import { Rng } from "../runtime/rng.ts";
import { IGNORE_INDEX } from "./chat.ts";
import { DataError, parseExampleLine, type TokenizedExample } from "./example.ts";
import { JsonlDecodeError, jsonlLines } from "./jsonl.ts";
import type { TextTokenizer } from "./tokenizer.ts";

/**
 * A batch as the training session takes it (same shape as `Batch` in `src/methods/session.ts`):
 * `[batchSize * seqLen]` row-major ids and unshifted labels, -100 = ignored.
 */
export interface TokenBatch {
  inputIds: Int32Array;
  labels: Int32Array;
  batchSize: number;
  seqLen: number;
}

/** Reads and tokenizes every example of a JSONL stream. Stops at the first bad line. */
export async function loadExamples(
  bytes: ReadableStream<Uint8Array>,
  file: string,
  tokenizer: TextTokenizer | null,
  vocabSize: number,
): Promise<TokenizedExample[]> {
  const examples: TokenizedExample[] = [];
  for await (const e of readExampleLines(bytes, file, tokenizer, vocabSize)) examples.push(e);
  return examples;
}

/**
 * {@link loadExamples} one example at a time (for writers that stream, e.g.
 * tools/pretokenize.ts): the same parsing, the same `FILE:LINE` errors, the same refusal of a
 * file with no examples (thrown when the stream ends).
 */
export async function* readExampleLines(
  bytes: ReadableStream<Uint8Array>,
  file: string,
  tokenizer: TextTokenizer | null,
  vocabSize: number,
): AsyncGenerator<TokenizedExample> {
  let lastLine = 0;
  let count = 0;
  try {
    for await (const { line, text } of jsonlLines(bytes)) {
      lastLine = line;
      const example = parseExampleLine(text, file, line, tokenizer, vocabSize);
      count++;
      yield example;
    }
  } catch (e) {
    if (e instanceof DataError) throw e;
    if (e instanceof JsonlDecodeError) throw new DataError(file, e.line, e.message);
    // A failing read of the source: named at the line it was reading.
    throw new DataError(file, lastLine + 1, (e as Error).message);
  }
  if (count === 0) throw new DataError(file, 1, "no examples in the file");
}

/** How examples become rows: `greedy` packs whole examples together; `none` is one per row. */
export type PackingMode = "greedy" | "none";

/** Rows plus what packing had to do to fit them. */
export interface PackedRows {
  rows: TokenizedExample[];
  /** Examples cut at `seqLen`. */
  truncated: number;
  /** Rows dropped because nothing in them is trained on (e.g. a completion truncated away). */
  dropped: number;
}

/** True when some position t ≥ 1 has a label (the shifted loss never uses position 0's label). */
function hasTarget(labels: Int32Array): boolean {
  for (let t = 1; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) return true;
  return false;
}

/** Packs or truncates `examples` into rows of at most `seqLen` tokens, in the given order. */
export function buildRows(
  examples: readonly TokenizedExample[],
  seqLen: number,
  mode: PackingMode,
): PackedRows {
  if (!Number.isInteger(seqLen) || seqLen < 2) throw new RangeError(`seqLen ${seqLen} < 2`);
  let truncated = 0;
  let dropped = 0;
  const rows: TokenizedExample[] = [];
  const emit = (parts: TokenizedExample[]) => {
    const n = parts.reduce((s, p) => s + p.inputIds.length, 0);
    const row = { inputIds: new Int32Array(n), labels: new Int32Array(n) };
    let at = 0;
    for (const p of parts) {
      row.inputIds.set(p.inputIds, at);
      row.labels.set(p.labels, at);
      at += p.inputIds.length;
    }
    if (hasTarget(row.labels)) rows.push(row);
    else dropped++;
  };
  let current: TokenizedExample[] = [];
  let used = 0;
  for (let ex of examples) {
    if (ex.inputIds.length > seqLen) {
      truncated++;
      ex = { inputIds: ex.inputIds.subarray(0, seqLen), labels: ex.labels.subarray(0, seqLen) };
    }
    if (mode === "none") {
      emit([ex]);
      continue;
    }
    if (used + ex.inputIds.length > seqLen && current.length) {
      emit(current);
      current = [];
      used = 0;
    }
    current.push(ex);
    used += ex.inputIds.length;
  }
  if (current.length) emit(current);
  return { rows, truncated, dropped };
}

/** Where a {@link BatchSource} is: the next row to serve is `order(epoch)[index]`. */
export interface DataPosition {
  epoch: number;
  index: number;
}

/** Options of a {@link BatchSource}. */
export interface BatchSourceOptions {
  batchSize: number;
  /** Every batch is padded to this length (padding gets label -100). */
  seqLen: number;
  padId: number;
  /** Seed of the per-epoch shuffle; a u32. */
  seed: number;
  /** Default true. Without it the rows are served in file order every epoch. */
  shuffle?: boolean;
}

/** Serves training batches forever, epoch after epoch, each epoch in its own seeded order. */
export class BatchSource {
  #epoch = 0;
  #index = 0;
  #order: number[] = [];
  #orderEpoch = -1;

  constructor(readonly rows: readonly TokenizedExample[], readonly options: BatchSourceOptions) {
    if (rows.length === 0) throw new RangeError("no rows to train on");
    for (const r of rows) {
      if (r.inputIds.length > options.seqLen) {
        throw new RangeError(`row of ${r.inputIds.length} tokens > seqLen ${options.seqLen}`);
      }
    }
  }

  /** Position of the next row to serve. */
  get position(): DataPosition {
    return { epoch: this.#epoch, index: this.#index };
  }

  /** Continues from a saved position. */
  seek(p: DataPosition): void {
    if (!Number.isInteger(p.epoch) || p.epoch < 0 || !Number.isInteger(p.index) || p.index < 0) {
      throw new RangeError(`bad data position ${JSON.stringify(p)}`);
    }
    if (p.index >= this.rows.length) {
      throw new RangeError(
        `data position ${p.index} is past the ${this.rows.length} rows of the data ` +
          `(was the data file changed?)`,
      );
    }
    this.#epoch = p.epoch;
    this.#index = p.index;
  }

  /** Row order of `epoch`: a permutation that depends only on (seed, epoch). */
  order(epoch: number): number[] {
    if (epoch !== this.#orderEpoch) {
      const order = Array.from(this.rows, (_, i) => i);
      if (this.options.shuffle ?? true) {
        new Rng((this.options.seed >>> 0) * 1048576 + (epoch % 1048576)).shuffle(order);
      }
      this.#order = order;
      this.#orderEpoch = epoch;
    }
    return this.#order;
  }

  /** The next `batchSize` rows (wrapping into the next epoch), padded to `seqLen`. */
  next(): TokenBatch {
    const { batchSize, seqLen, padId } = this.options;
    const picked: TokenizedExample[] = [];
    for (let b = 0; b < batchSize; b++) {
      picked.push(this.rows[this.order(this.#epoch)[this.#index]]);
      if (++this.#index === this.rows.length) {
        this.#index = 0;
        this.#epoch++;
      }
    }
    return packBatch(picked, seqLen, padId);
  }
}

/** Pads `rows` to `seqLen` into one batch. */
export function packBatch(
  rows: readonly TokenizedExample[],
  seqLen: number,
  padId: number,
): TokenBatch {
  const inputIds = new Int32Array(rows.length * seqLen).fill(padId);
  const labels = new Int32Array(rows.length * seqLen).fill(IGNORE_INDEX);
  rows.forEach((r, b) => {
    inputIds.set(r.inputIds, b * seqLen);
    labels.set(r.labels, b * seqLen);
  });
  return { inputIds, labels, batchSize: rows.length, seqLen };
}

/** Fixed evaluation batches over every row in order (the last one may be smaller). */
export function evalBatches(
  rows: readonly TokenizedExample[],
  batchSize: number,
  seqLen: number,
  padId: number,
): TokenBatch[] {
  const out: TokenBatch[] = [];
  for (let i = 0; i < rows.length; i += batchSize) {
    out.push(packBatch(rows.slice(i, i + batchSize), seqLen, padId));
  }
  return out;
}

/** The padded length for `rows`: the longest row (so short data does not pay for `maxLen`). */
export function paddedLength(rows: readonly TokenizedExample[], maxLen: number): number {
  let n = 2;
  for (const r of rows) n = Math.max(n, r.inputIds.length);
  return Math.min(n, maxLen);
}

/** Number of non-padding tokens of a batch (for tokens/s). */
export function countTokens(batch: TokenBatch, padId: number): number {
  // Padding is appended as (padId, -100); trailing positions of that form are not real tokens.
  let n = 0;
  for (let b = 0; b < batch.batchSize; b++) {
    let end = batch.seqLen;
    const off = b * batch.seqLen;
    while (
      end > 0 && batch.inputIds[off + end - 1] === padId &&
      batch.labels[off + end - 1] === IGNORE_INDEX
    ) end--;
    n += end;
  }
  return n;
}
