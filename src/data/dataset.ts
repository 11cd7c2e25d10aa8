/**
 * Training data as fixed-shape batches: examples are streamed from a JSONL file and tokenized one
 * line at a time, packed (or truncated) into rows of at most `seqLen` tokens as they come, and
 * held compactly ({@link TokenRows}); batches are served in a seeded, per-epoch shuffled order.
 * Nothing holds the whole file, nor the examples: only the rows. The order is a pure function of
 * (seed, epoch), so a {@link DataPosition} (epoch, row index) is all a checkpoint needs to continue
 * with exactly the same batches.
 *
 * @example
 * ```ts
 * import { BatchSource, loadRows } from "./dataset.ts";
 * const bytes = new TextEncoder().encode('{"input_ids":[1,2,3,4]}\n{"input_ids":[5,6,7]}\n');
 * const { rows } = await loadRows(new Blob([bytes]).stream(), "mem.jsonl", {
 *   vocabSize: 10,
 *   seqLen: 8,
 *   packing: "greedy",
 * });
 * const source = new BatchSource(rows, { batchSize: 1, seqLen: 8, padId: 0, seed: 0 });
 * const batch = source.next(); // one packed row of 7 tokens
 * console.log(rows.bytesHeld); // 41: 7 ids, 7 label bits, one row of index
 * ```
 */
import { Rng } from "../runtime/rng.ts";
import { DataError, parseJsonLine, type TokenizedExample, tokenizeRecord } from "./example.ts";
import { needsTokenizer, type RecordKind, recordKind } from "./record_kind.ts";
import type { Batch } from "./batch.ts";
import { hasTarget, IGNORE_INDEX } from "./labels.ts";
import { JsonlDecodeError, type JsonlLine, jsonlLines, JsonlLineTooLongError } from "./jsonl.ts";
import type { TextTokenizer } from "./tokenizer.ts";
import { TokenRows } from "./token_rows.ts";

/** The first record of a file that needs a tokenizer, where one was not given. */
export interface TokenizerRequest {
  kind: RecordKind;
  file: string;
  line: number;
}

/** Builds the tokenizer when a record first needs it; null when there is none to build. */
export type TokenizerLoader = (request: TokenizerRequest) => Promise<TextTokenizer | null>;

/** How a JSONL data file is read. */
export interface ReadExamplesOptions {
  /** Longest line accepted, in bytes (default 8 MiB, `DEFAULT_MAX_LINE_BYTES` in jsonl.ts). */
  maxLineBytes?: number;
  /**
   * Called once, at the first well-formed record that needs a tokenizer, when none was given:
   * pre-tokenized data never builds one, and mixed data is still read in one pass. Without it
   * such a record is the error `"KIND" data needs the model's tokenizer.json`.
   */
  loadTokenizer?: TokenizerLoader;
}

/** Reads and tokenizes every example of a JSONL stream. Stops at the first bad line. */
export async function loadExamples(
  bytes: ReadableStream<Uint8Array>,
  file: string,
  tokenizer: TextTokenizer | null,
  vocabSize: number,
  options: ReadExamplesOptions = {},
): Promise<TokenizedExample[]> {
  const examples: TokenizedExample[] = [];
  for await (const e of readExampleLines(bytes, file, tokenizer, vocabSize, options)) {
    examples.push(e);
  }
  return examples;
}

/** `f()`, its error a {@link DataError} naming `file:line` (the error kept as `cause`). */
function atLine<T>(file: string, line: number, f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new DataError(file, line, (e as Error).message, { cause: e });
  }
}

/**
 * {@link loadExamples} one example at a time (what {@link loadRows} packs as it reads, and what
 * tools/pretokenize.ts writes as it reads): the same parsing, the same `FILE:LINE` errors, the
 * same refusal of a file with no examples (thrown when the stream ends). The stream is read once;
 * the tokenizer, if it has to be loaded, is loaded in the middle of that pass.
 */
export async function* readExampleLines(
  bytes: ReadableStream<Uint8Array>,
  file: string,
  tokenizer: TextTokenizer | null,
  vocabSize: number,
  options: ReadExamplesOptions = {},
): AsyncGenerator<TokenizedExample> {
  let tok = tokenizer;
  let load = tok ? undefined : options.loadTokenizer;
  const lines = jsonlLines(bytes, { maxLineBytes: options.maxLineBytes });
  let lastLine = 0;
  let count = 0;
  try {
    while (true) {
      let next: IteratorResult<JsonlLine>;
      try {
        next = await lines.next();
      } catch (e) {
        if (e instanceof JsonlDecodeError || e instanceof JsonlLineTooLongError) {
          throw new DataError(file, e.line, e.message);
        }
        // A failing read of the source: named at the line it was reading.
        throw new DataError(file, lastLine + 1, (e as Error).message);
      }
      if (next.done) break;
      const { line, text } = next.value;
      lastLine = line;
      const record = parseJsonLine(text, file, line);
      // Decided before encoding: the tokenizer is built for the first line that needs it.
      if (tok === null && load && atLine(file, line, () => needsTokenizer(record))) {
        const loader = load;
        load = undefined;
        tok = await loader({ kind: recordKind(record), file, line });
      }
      const example = atLine(file, line, () => tokenizeRecord(record, tok, vocabSize));
      count++;
      yield example;
    }
  } finally {
    await lines.return(undefined);
  }
  if (count === 0) throw new DataError(file, 1, "no examples in the file");
}

/** How examples become rows: `greedy` packs whole examples together; `none` is one per row. */
export type PackingMode = "greedy" | "none";

/** Rows plus what packing had to do to fit them. */
export interface PackedRows {
  rows: TokenRows;
  /** Examples cut at `seqLen`. */
  truncated: number;
  /** Rows dropped because nothing in them is trained on (e.g. a completion truncated away). */
  dropped: number;
}

/**
 * Packs or truncates examples into rows of at most `seqLen` tokens as they arrive, in order:
 * only the examples of the row being filled are held, so a stream of any length packs in the
 * memory of its rows.
 */
export class RowPacker {
  readonly rows: TokenRows = new TokenRows();
  /** Examples cut at `seqLen`. */
  truncated = 0;
  /** Rows dropped because nothing in them is trained on. */
  dropped = 0;
  /** Examples added. */
  examples = 0;
  #current: TokenizedExample[] = [];
  #used = 0;

  constructor(readonly seqLen: number, readonly mode: PackingMode) {
    if (!Number.isInteger(seqLen) || seqLen < 2) throw new RangeError(`seqLen ${seqLen} < 2`);
  }

  /** Adds the next example. */
  add(example: TokenizedExample): void {
    let ex = example;
    this.examples++;
    if (ex.inputIds.length > this.seqLen) {
      this.truncated++;
      ex = {
        inputIds: ex.inputIds.subarray(0, this.seqLen),
        labels: ex.labels.subarray(0, this.seqLen),
      };
    }
    if (this.mode === "none") {
      this.#emit([ex]);
      return;
    }
    if (this.#used + ex.inputIds.length > this.seqLen && this.#current.length) this.#flush();
    this.#current.push(ex);
    this.#used += ex.inputIds.length;
  }

  /** Emits the last row and trims the rows' spare capacity. */
  finish(): PackedRows {
    this.#flush();
    this.rows.compact();
    return { rows: this.rows, truncated: this.truncated, dropped: this.dropped };
  }

  #flush(): void {
    if (this.#current.length) this.#emit(this.#current);
    this.#current = [];
    this.#used = 0;
  }

  #emit(parts: TokenizedExample[]): void {
    if (hasTarget(parts.map((p) => p.labels))) this.rows.pushParts(parts);
    else this.dropped++;
  }
}

/** Packs or truncates `examples` into rows of at most `seqLen` tokens, in the given order. */
export function buildRows(
  examples: Iterable<TokenizedExample>,
  seqLen: number,
  mode: PackingMode,
): PackedRows {
  const packer = new RowPacker(seqLen, mode);
  for (const ex of examples) packer.add(ex);
  return packer.finish();
}

/** What {@link loadRows} is told. */
export interface LoadRowsOptions extends ReadExamplesOptions {
  /** The tokenizer, if already built; else `loadTokenizer` builds it on demand. */
  tokenizer?: TextTokenizer | null;
  vocabSize: number;
  seqLen: number;
  packing: PackingMode;
}

/** What {@link loadRows} read. */
export interface LoadedRows extends PackedRows {
  /** Examples (non-blank lines) read. */
  examples: number;
  /** The tokenizer given or loaded, or null when the data needed none. */
  tokenizer: TextTokenizer | null;
}

/**
 * Reads a JSONL stream once, straight into packed rows: each line is tokenized and packed as it
 * is read, and dropped. What stays is the rows ({@link TokenRows.bytesHeld}).
 */
export async function loadRows(
  bytes: ReadableStream<Uint8Array>,
  file: string,
  options: LoadRowsOptions,
): Promise<LoadedRows> {
  let tokenizer = options.tokenizer ?? null;
  const load = options.loadTokenizer;
  const packer = new RowPacker(options.seqLen, options.packing);
  const examples = readExampleLines(bytes, file, tokenizer, options.vocabSize, {
    maxLineBytes: options.maxLineBytes,
    loadTokenizer: load && (async (request) => (tokenizer = await load(request))),
  });
  for await (const ex of examples) packer.add(ex);
  return { ...packer.finish(), examples: packer.examples, tokenizer };
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
  /** The rows served (arrays of examples are copied into one {@link TokenRows}). */
  readonly rows: TokenRows;

  constructor(
    rows: TokenRows | readonly TokenizedExample[],
    readonly options: BatchSourceOptions,
  ) {
    this.rows = asTokenRows(rows);
    if (this.rows.length === 0) throw new RangeError("no rows to train on");
    if (this.rows.maxRowLength > options.seqLen) {
      throw new RangeError(`row of ${this.rows.maxRowLength} tokens > seqLen ${options.seqLen}`);
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
      const order = Array.from({ length: this.rows.length }, (_, i) => i);
      if (this.options.shuffle ?? true) {
        new Rng((this.options.seed >>> 0) * 1048576 + (epoch % 1048576)).shuffle(order);
      }
      this.#order = order;
      this.#orderEpoch = epoch;
    }
    return this.#order;
  }

  /** The next `batchSize` rows (wrapping into the next epoch), padded to `seqLen`. */
  next(): Batch {
    const { batchSize, seqLen, padId } = this.options;
    const picked: TokenizedExample[] = [];
    for (let b = 0; b < batchSize; b++) {
      picked.push(this.rows.row(this.order(this.#epoch)[this.#index]));
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
): Batch {
  const inputIds = new Int32Array(rows.length * seqLen).fill(padId);
  const labels = new Int32Array(rows.length * seqLen).fill(IGNORE_INDEX);
  rows.forEach((r, b) => {
    inputIds.set(r.inputIds, b * seqLen);
    labels.set(r.labels, b * seqLen);
  });
  return { inputIds, labels, batchSize: rows.length, seqLen };
}

function asTokenRows(rows: TokenRows | readonly TokenizedExample[]): TokenRows {
  return rows instanceof TokenRows ? rows : TokenRows.from(rows);
}

/** Fixed evaluation batches over every row in order (the last one may be smaller). */
export function evalBatches(
  rows: TokenRows | readonly TokenizedExample[],
  batchSize: number,
  seqLen: number,
  padId: number,
): Batch[] {
  const all = asTokenRows(rows);
  const out: Batch[] = [];
  for (let i = 0; i < all.length; i += batchSize) {
    const picked: TokenizedExample[] = [];
    for (let j = i; j < Math.min(all.length, i + batchSize); j++) picked.push(all.row(j));
    out.push(packBatch(picked, seqLen, padId));
  }
  return out;
}

/** The padded length for `rows`: the longest row (so short data does not pay for `maxLen`). */
export function paddedLength(
  rows: TokenRows | readonly TokenizedExample[],
  maxLen: number,
): number {
  let n = 2;
  if (rows instanceof TokenRows) n = Math.max(n, rows.maxRowLength);
  else for (const r of rows) n = Math.max(n, r.inputIds.length);
  return Math.min(n, maxLen);
}

/** Number of non-padding tokens of a batch (for tokens/s). */
export function countTokens(batch: Batch, padId: number): number {
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
