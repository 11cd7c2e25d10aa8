/**
 * Training rows held compactly: the ids of every row live in a few large `Int32Array` blocks (not
 * one small typed array, let alone one JS array of numbers, per row), with three `Uint32Array`
 * entries per row saying where it is. Labels are almost always the token itself or -100 (every
 * text, prompt/completion and chat record, and most pre-tokenized ones), so a block holds them as
 * one bit a token; a block with any other label holds an `Int32Array` of labels instead. What it
 * holds is known to the byte ({@link TokenRows.bytesHeld}), so a memory plan can count the data.
 *
 * @example
 * ```ts
 * import { TokenRows } from "./token_rows.ts";
 * const rows = new TokenRows();
 * rows.push(Int32Array.of(1, 2, 3), Int32Array.of(-100, 2, 3));
 * rows.compact();
 * // 12 bytes of ids, 1 byte of label bits, 12 bytes of index:
 * console.log(rows.length, Array.from(rows.row(0).labels), rows.bytesHeld); // 1 [-100, 2, 3] 25
 * ```
 */
import { IGNORE_INDEX } from "./labels.ts";
import type { TokenizedExample } from "./example.ts";

/** Tokens of the first block; each further block doubles, up to {@link MAX_BLOCK_TOKENS}. */
const FIRST_BLOCK_TOKENS = 4096;
/** 4 MiB per array: large enough that per-block overhead vanishes, small enough to trim cheaply. */
const MAX_BLOCK_TOKENS = 1 << 20;

/** Rows of token ids and labels, appended in order, read by index. */
export class TokenRows {
  #ids: Int32Array[] = [];
  /** Per block: bit t set when token t's label is its id, clear when it is -100. */
  #trained: Uint8Array[] = [];
  /** Per block: every label, only for a block with a label that is neither its id nor -100. */
  #labels: (Int32Array | null)[] = [];
  /** Tokens used in the last block. */
  #used = 0;
  #count = 0;
  #tokens = 0;
  #maxLength = 0;
  #rowBlock = new Uint32Array(64);
  #rowStart = new Uint32Array(64);
  #rowLength = new Uint32Array(64);

  /** Copies `examples` (each one row) into a new {@link TokenRows}. */
  static from(examples: Iterable<TokenizedExample>): TokenRows {
    const rows = new TokenRows();
    for (const e of examples) rows.push(e.inputIds, e.labels);
    rows.compact();
    return rows;
  }

  /** Number of rows. */
  get length(): number {
    return this.#count;
  }

  /** Tokens in all rows. */
  get tokenCount(): number {
    return this.#tokens;
  }

  /** Length of the longest row (0 when there is none). */
  get maxRowLength(): number {
    return this.#maxLength;
  }

  /**
   * Bytes of every typed array held (blocks and row index, spare capacity included): what the
   * data adds to a run's memory for as long as the rows live.
   */
  get bytesHeld(): number {
    let n = this.#rowBlock.byteLength + this.#rowStart.byteLength + this.#rowLength.byteLength;
    for (let b = 0; b < this.#ids.length; b++) {
      n += this.#ids[b].byteLength + this.#trained[b].byteLength +
        (this.#labels[b]?.byteLength ?? 0);
    }
    return n;
  }

  /** Length of row `i`. */
  rowLength(i: number): number {
    this.#check(i);
    return this.#rowLength[i];
  }

  /**
   * Row `i`: the ids are a view into its block (valid as long as this object, never to be
   * written); the labels are made from the label bits (or are a view too).
   */
  row(i: number): TokenizedExample {
    this.#check(i);
    const b = this.#rowBlock[i], s = this.#rowStart[i], e = s + this.#rowLength[i];
    const ids = this.#ids[b];
    const full = this.#labels[b];
    if (full) return { inputIds: ids.subarray(s, e), labels: full.subarray(s, e) };
    const trained = this.#trained[b];
    const labels = new Int32Array(e - s);
    for (let t = s; t < e; t++) {
      labels[t - s] = (trained[t >>> 3] >>> (t & 7)) & 1 ? ids[t] : IGNORE_INDEX;
    }
    return { inputIds: ids.subarray(s, e), labels };
  }

  *[Symbol.iterator](): IterableIterator<TokenizedExample> {
    for (let i = 0; i < this.#count; i++) yield this.row(i);
  }

  /** Appends one row (copied). */
  push(inputIds: ArrayLike<number>, labels: ArrayLike<number>): void {
    this.pushParts([{ inputIds, labels }]);
  }

  /** Appends one row made of `parts` end to end (copied). */
  pushParts(parts: readonly { inputIds: ArrayLike<number>; labels: ArrayLike<number> }[]): void {
    let n = 0;
    for (const p of parts) {
      if (p.labels.length !== p.inputIds.length) {
        throw new RangeError(`${p.labels.length} labels for ${p.inputIds.length} ids`);
      }
      n += p.inputIds.length;
    }
    const block = this.#blockFor(n);
    if (!this.#labels[block] && !parts.every(labelsAreBits)) this.#fullLabels(block);
    const ids = this.#ids[block], full = this.#labels[block], trained = this.#trained[block];
    let at = this.#used;
    for (const p of parts) {
      ids.set(p.inputIds, at);
      if (full) full.set(p.labels, at);
      else {
        for (let t = 0, k = at; t < p.labels.length; t++, k++) {
          if (p.labels[t] === IGNORE_INDEX) trained[k >>> 3] &= ~(1 << (k & 7));
          else trained[k >>> 3] |= 1 << (k & 7);
        }
      }
      at += p.inputIds.length;
    }
    if (this.#count === this.#rowStart.length) this.#growIndex(Math.max(64, 2 * this.#count));
    this.#rowBlock[this.#count] = block;
    this.#rowStart[this.#count] = this.#used;
    this.#rowLength[this.#count] = n;
    this.#count++;
    this.#used = at;
    this.#tokens += n;
    if (n > this.#maxLength) this.#maxLength = n;
  }

  /** Gives back spare capacity (the last block's tail, the index's slack) once rows are all in. */
  compact(): void {
    const last = this.#ids.length - 1;
    if (last >= 0 && this.#used < this.#ids[last].length) {
      this.#ids[last] = this.#ids[last].slice(0, this.#used);
      this.#trained[last] = this.#trained[last].slice(0, (this.#used + 7) >>> 3);
      this.#labels[last] = this.#labels[last]?.slice(0, this.#used) ?? null;
    }
    if (this.#count < this.#rowStart.length) this.#growIndex(this.#count);
  }

  /** The block a row of `n` tokens goes to: the last one if it fits, else a new one. */
  #blockFor(n: number): number {
    const last = this.#ids.length - 1;
    if (last >= 0 && this.#used + n <= this.#ids[last].length) return last;
    const previous = last >= 0 ? this.#ids[last].length : FIRST_BLOCK_TOKENS / 2;
    const size = Math.max(n, Math.min(MAX_BLOCK_TOKENS, 2 * previous));
    this.#ids.push(new Int32Array(size));
    this.#trained.push(new Uint8Array((size + 7) >>> 3));
    this.#labels.push(null);
    this.#used = 0;
    return last + 1;
  }

  /** Switches `block` from label bits to an `Int32Array` of labels (its rows so far kept). */
  #fullLabels(block: number): void {
    const ids = this.#ids[block], trained = this.#trained[block];
    const full = new Int32Array(ids.length);
    for (let t = 0; t < this.#used; t++) {
      full[t] = (trained[t >>> 3] >>> (t & 7)) & 1 ? ids[t] : IGNORE_INDEX;
    }
    this.#labels[block] = full;
    this.#trained[block] = new Uint8Array(0);
  }

  #growIndex(capacity: number): void {
    const resize = (a: Uint32Array) => {
      const b = new Uint32Array(capacity);
      b.set(a.subarray(0, Math.min(capacity, this.#count)));
      return b;
    };
    this.#rowBlock = resize(this.#rowBlock);
    this.#rowStart = resize(this.#rowStart);
    this.#rowLength = resize(this.#rowLength);
  }

  #check(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.#count) {
      throw new RangeError(`row ${i} of ${this.#count}`);
    }
  }
}

/** True when every label of `p` is its own id or -100 (so one bit a token can hold it). */
function labelsAreBits(p: { inputIds: ArrayLike<number>; labels: ArrayLike<number> }): boolean {
  for (let t = 0; t < p.labels.length; t++) {
    if (p.labels[t] !== IGNORE_INDEX && p.labels[t] !== p.inputIds[t]) return false;
  }
  return true;
}
