/**
 * The BPE model of a `tokenizer.json` held in typed arrays: every token's text in one byte pool
 * with an open-addressing hash from text to id, and the merge list as three `Int32Array`s (left
 * id, right id, merged id, indexed by rank) with a hash from the id pair to its rank. For
 * Qwen2.5's 151,665 tokens and 151,387 merges that is ~6 MB, where a `Map` of strings costs
 * tens of MB.
 *
 * Token text is kept in the file's own form: for byte-level vocabularies that is the printable
 * stand-in characters (`Ġ` for a space), for SentencePiece-style ones the UTF-8 text with `▁`.
 *
 * Merging follows the usual rule: repeatedly join the adjacent pair with the lowest rank, the
 * leftmost first among equal ranks (a binary heap keyed `rank · 2³² + position`).
 *
 * @example
 * ```ts
 * import { BpeModelBuilder } from "./bpe_model.ts";
 * const b = new BpeModelBuilder();
 * const enc = new TextEncoder();
 * for (const [t, id] of [["a", 0], ["b", 1], ["ab", 2]] as const) b.addToken(enc.encode(t), id);
 * b.addMerge(enc.encode("a"), enc.encode("b"));
 * const m = b.build();
 * console.log(m.merge(Int32Array.of(0, 1, 0), 3)); // [2, 0]
 * ```
 */

/** Hash of `bytes[off..off+len)` (FNV-1a, 32-bit). */
function hashBytes(bytes: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) h = Math.imul(h ^ bytes[off + i], 0x01000193);
  return h >>> 0;
}

function pairHash(a: number, b: number): number {
  return (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77)) >>> 0;
}

/** Power-of-two table size at most 2/3 full. */
function tableSize(n: number): number {
  let cap = 16;
  while (cap * 2 < n * 3) cap *= 2;
  return cap;
}

/**
 * Frees the memory of `a`, a builder's own array it has grown out of, now: left to the collector,
 * the copies a 262k-token file grows through add up to twice its tables before one runs.
 */
function discard(a: ArrayBufferView): void {
  (a.buffer as ArrayBuffer).transfer?.(0);
}

class GrowBytes {
  data = new Uint8Array(1 << 16);
  length = 0;
  push(src: Uint8Array, off: number, len: number): number {
    if (this.length + len > this.data.length) {
      const grown = new Uint8Array(Math.max(this.data.length * 2, this.length + len));
      grown.set(this.data.subarray(0, this.length));
      discard(this.data);
      this.data = grown;
    }
    this.data.set(src.subarray(off, off + len), this.length);
    const at = this.length;
    this.length += len;
    return at;
  }
}

/** `a` with room for `need` values: `a` itself, or a larger copy (and `a` is discarded). */
function grownInts<T extends Int32Array | Uint32Array>(a: T, need: number, fill = 0): T {
  if (need <= a.length) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, Math.ceil(a.length * 1.5)));
  b.set(a);
  if (fill !== 0) b.fill(fill, a.length);
  discard(a);
  return b;
}

/**
 * Collects tokens and merges as they are read, then builds the {@link BpeModel}. Tokens go into
 * the text hash as they arrive, so a later entry for the same text takes it over; merges arriving
 * after the tokens are turned into ids at once, so their texts are never stored.
 */
export class BpeModelBuilder {
  #model = new BpeModel(
    new Uint8Array(0),
    new Uint32Array(1 << 12),
    new Int32Array(1 << 12).fill(-1),
    new Int32Array(1 << 12),
    new Int32Array(1 << 12),
    new Int32Array(1 << 12),
    new Int32Array(1 << 12),
    new Int32Array(16),
  );
  #pool = new GrowBytes();
  #tokens = 0;
  #merges = 0;
  #joined = new Uint8Array(256);
  /** Texts that moved to another id after merges had already used them: old id → new id. */
  #moved = new Map<number, number>();

  /** Adds token `id` with text `bytes[off..off+len)`; a later entry for the same text wins. */
  addToken(bytes: Uint8Array, id: number, off = 0, len = bytes.length - off): void {
    if (!Number.isInteger(id) || id < 0 || id >= 1 << 30) {
      throw new RangeError(`token id ${id} is not a valid id`);
    }
    const m = this.#model;
    const at = this.#pool.push(bytes, off, len);
    m.pool = this.#pool.data;
    m.start = grownInts(m.start, id + 1);
    m.len = grownInts(m.len, id + 1, -1);
    m.start[id] = at;
    m.len[id] = len;
    if (++this.#tokens * 3 > m.table.length * 2) {
      const old = m.table;
      m.rehash(m.table.length * 2);
      discard(old);
    }
    const old = m.insertToken(id);
    if (old >= 0 && old !== id && this.#merges > 0) this.#moved.set(old, id);
  }

  /** Adds the next merge (rank = order of arrival) of the texts `left` then `right`. */
  addMerge(
    left: Uint8Array,
    right: Uint8Array,
    leftOff = 0,
    leftLen = left.length - leftOff,
    rightOff = 0,
    rightLen = right.length - rightOff,
  ): void {
    const m = this.#model;
    const r = this.#merges++;
    if (r >= m.left.length) {
      const n = Math.max(this.#tokens, Math.ceil(m.left.length * 1.5));
      m.left = grownInts(m.left, n);
      m.right = grownInts(m.right, n);
      m.merged = grownInts(m.merged, n);
    }
    if (this.#joined.length < leftLen + rightLen) {
      this.#joined = new Uint8Array(2 * (leftLen + rightLen));
    }
    this.#joined.set(left.subarray(leftOff, leftOff + leftLen));
    this.#joined.set(right.subarray(rightOff, rightOff + rightLen), leftLen);
    const a = m.lookup(left, leftOff, leftLen), b = m.lookup(right, rightOff, rightLen);
    const ab = m.lookup(this.#joined, 0, leftLen + rightLen);
    // A merge of texts outside the vocabulary can never apply: nothing produces them. A merge
    // read before its tokens is kept as -2 and refused at build (no supported file does that).
    const known = a >= 0 && b >= 0 && ab >= 0;
    m.left[r] = known ? a : this.#tokens === 0 ? -2 : -1;
    m.right[r] = known ? b : -1;
    m.merged[r] = known ? ab : -1;
  }

  build(): BpeModel {
    const m = this.#model;
    const n = this.#merges;
    if (n > 0 && m.left[0] === -2) {
      throw new RangeError('"merges" come before "vocab"; this reader needs vocab first');
    }
    const at = (id: number) => this.#moved.get(id) ?? id;
    const left = m.left.slice(0, n), right = m.right.slice(0, n), merged = m.merged.slice(0, n);
    if (this.#moved.size) {
      for (let r = 0; r < n; r++) {
        if (left[r] < 0) continue;
        left[r] = at(left[r]);
        right[r] = at(right[r]);
        merged[r] = at(merged[r]);
      }
    }
    let size = m.len.length;
    while (size > 0 && m.len[size - 1] < 0) size--;
    const built = new BpeModel(
      this.#pool.data.subarray(0, this.#pool.length),
      m.start.subarray(0, size),
      m.len.subarray(0, size),
      m.table,
      left,
      right,
      merged,
      new Int32Array(0),
    );
    built.setMerges(left, right, merged, new Int32Array(tableSize(n)));
    // The builder's merge arrays were copied out above; it is not used after building.
    for (const a of [m.left, m.right, m.merged]) discard(a);
    return built;
  }
}

/** A built BPE model: token texts and ids, merge ranks, and the merge algorithm. */
export class BpeModel {
  #heap = new Float64Array(64);
  #heapLen = 0;
  #next = new Int32Array(64);
  #prev = new Int32Array(64);

  constructor(
    /** Token texts, back to back. */
    public pool: Uint8Array,
    /** Per id: offset of its text in `pool`. */
    public start: Uint32Array,
    /** Per id: byte length of its text, -1 for an id no entry names. */
    public len: Int32Array,
    /** Text hash → id + 1 (0 = empty). */
    public table: Int32Array,
    /** Per rank: the left and right ids and the merged id (-1: a merge that never applies). */
    public left: Int32Array,
    public right: Int32Array,
    public merged: Int32Array,
    /** Pair hash → rank + 1 (0 = empty). */
    public pairs: Int32Array,
  ) {}

  /** Ids 0 .. size-1 may have a text. */
  get size(): number {
    return this.len.length;
  }

  /** Bytes held by the tables. */
  get bytes(): number {
    // Whole buffers, not the views: their spare capacity is memory held too. Each buffer once:
    // a model read from a snapshot holds every table in one.
    const buffers = new Set<ArrayBufferLike>();
    for (const a of this.arrays()) buffers.add(a.buffer);
    let n = 0;
    for (const b of buffers) n += b.byteLength;
    return n;
  }

  /**
   * Frees the tables now: each buffer is detached, which hands its memory back at once instead of
   * whenever the engine next collects (a large buffer is its own mapping, so the process shrinks).
   * The model cannot be used afterwards.
   */
  release(): void {
    const buffers = new Set<ArrayBufferLike>();
    for (const a of this.arrays()) buffers.add(a.buffer);
    for (const b of buffers) {
      if (b instanceof ArrayBuffer && !b.detached) b.transfer(0);
    }
  }

  /** The tables, in a fixed order (what a snapshot stores). */
  arrays(): [
    Uint8Array,
    Uint32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
    Int32Array,
  ] {
    return [
      this.pool,
      this.start,
      this.len,
      this.table,
      this.left,
      this.right,
      this.merged,
      this.pairs,
    ];
  }

  /**
   * Puts `id`'s text in the hash; an equal text already there now means `id`. Returns the id
   * the text meant before, or -1.
   */
  insertToken(id: number): number {
    const mask = this.table.length - 1;
    const off = this.start[id], n = this.len[id];
    for (let h = hashBytes(this.pool, off, n) & mask;; h = (h + 1) & mask) {
      const slot = this.table[h];
      if (slot === 0 || this.#sameText(slot - 1, this.pool, off, n)) {
        this.table[h] = id + 1;
        return slot - 1;
      }
    }
  }

  /** Rebuilds the text hash with `cap` slots. */
  rehash(cap: number): void {
    const old = this.table;
    this.table = new Int32Array(cap);
    for (const slot of old) if (slot !== 0) this.insertToken(slot - 1);
  }

  /** Id of the text `bytes[off..off+len)`, or -1. */
  lookup(bytes: Uint8Array, off: number, len: number): number {
    const mask = this.table.length - 1;
    for (let h = hashBytes(bytes, off, len) & mask;; h = (h + 1) & mask) {
      const slot = this.table[h];
      if (slot === 0) return -1;
      if (this.#sameText(slot - 1, bytes, off, len)) return slot - 1;
    }
  }

  #sameText(id: number, bytes: Uint8Array, off: number, n: number): boolean {
    if (this.len[id] !== n) return false;
    const s = this.start[id], pool = this.pool;
    for (let i = 0; i < n; i++) if (pool[s + i] !== bytes[off + i]) return false;
    return true;
  }

  /** The text bytes of `id` (a view into the pool), or null. */
  text(id: number): Uint8Array | null {
    if (id < 0 || id >= this.len.length || this.len[id] < 0) return null;
    return this.pool.subarray(this.start[id], this.start[id] + this.len[id]);
  }

  setMerges(left: Int32Array, right: Int32Array, merged: Int32Array, pairs: Int32Array): void {
    this.left = left;
    this.right = right;
    this.merged = merged;
    this.pairs = pairs;
    const mask = pairs.length - 1;
    for (let r = 0; r < left.length; r++) {
      const a = left[r], b = right[r];
      if (a < 0) continue;
      for (let h = pairHash(a, b) & mask;; h = (h + 1) & mask) {
        const slot = pairs[h];
        // A repeated pair takes the later rank, as a map filled in list order would.
        if (slot === 0 || (left[slot - 1] === a && right[slot - 1] === b)) {
          pairs[h] = r + 1;
          break;
        }
      }
    }
  }

  /** Rank of merging ids `a` then `b`, or -1. Negative ids (unknown characters) never merge. */
  rank(a: number, b: number): number {
    if (a < 0 || b < 0) return -1;
    const pairs = this.pairs, mask = pairs.length - 1;
    for (let h = pairHash(a, b) & mask;; h = (h + 1) & mask) {
      const slot = pairs[h];
      if (slot === 0) return -1;
      if (this.left[slot - 1] === a && this.right[slot - 1] === b) return slot - 1;
    }
  }

  /**
   * Merges the symbols `sym[0..n)` in place and returns them (a new array, in order). Negative
   * symbols pass through unmerged.
   */
  merge(sym: Int32Array, n: number): number[] {
    if (n < 2) return n === 1 ? [sym[0]] : [];
    if (this.#next.length < n) {
      this.#next = new Int32Array(n * 2);
      this.#prev = new Int32Array(n * 2);
    }
    const next = this.#next, prev = this.#prev;
    const SHIFT = 4294967296;
    this.#heapLen = 0;
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
      if (i + 1 < n) {
        const r = this.rank(sym[i], sym[i + 1]);
        if (r >= 0) this.#push(r * SHIFT + i);
      }
    }
    while (this.#heapLen > 0) {
      const key = this.#pop();
      const r = Math.floor(key / SHIFT), i = key - r * SHIFT;
      const j = next[i];
      // Stale entries: the left symbol was merged away (prev = -2), or the pair has changed.
      if (prev[i] === -2 || j < 0 || this.rank(sym[i], sym[j]) !== r) continue;
      sym[i] = this.merged[r];
      const k = next[j];
      next[i] = k;
      prev[j] = -2;
      if (k >= 0) prev[k] = i;
      const p = prev[i];
      if (p >= 0) {
        const rp = this.rank(sym[p], sym[i]);
        if (rp >= 0) this.#push(rp * SHIFT + p);
      }
      if (k >= 0) {
        const rk = this.rank(sym[i], sym[k]);
        if (rk >= 0) this.#push(rk * SHIFT + i);
      }
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(sym[i]);
    return out;
  }

  #push(key: number): void {
    if (this.#heapLen === this.#heap.length) {
      const grown = new Float64Array(this.#heap.length * 2);
      grown.set(this.#heap);
      this.#heap = grown;
    }
    const h = this.#heap;
    let i = this.#heapLen++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= key) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = key;
  }

  #pop(): number {
    const h = this.#heap;
    const top = h[0];
    const last = h[--this.#heapLen];
    let i = 0;
    const n = this.#heapLen;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && h[c + 1] < h[c]) c++;
      if (h[c] >= last) break;
      h[i] = h[c];
      i = c;
    }
    h[i] = last;
    return top;
  }
}
