/**
 * A GGUF (version 3) writer, streaming: the header (metadata and tensor infos) first, then each
 * tensor's data produced and encoded one at a time, so a file is never held whole in memory.
 * Portable: it yields byte chunks; the caller writes them.
 *
 * The format, as llama.cpp's ggml reads it (all little-endian):
 * - `"GGUF"`, u32 version 3, u64 tensor count, u64 metadata count;
 * - each metadata entry: a string key (u64 length + UTF-8 bytes), a u32 value type, the value
 *   (arrays: u32 element type, u64 count, the elements);
 * - each tensor info: its name, u32 dimension count, u64 dimensions in ggml order (`ne[0]` is the
 *   contiguous one, so a row-major `[rows, cols]` matrix is `ne = [cols, rows]`), u32 ggml type,
 *   u64 offset into the data section (a multiple of the alignment);
 * - zero padding to `general.alignment` (32 unless set), then the data section.
 *
 * Tensor types: F32, F16 (round to nearest even), Q8_0 (blocks of 32 values along `ne[0]`:
 * an f16 scale `d = max|x| / 127`, then 32 int8 `round(x / d)`, rounded half away from zero) and
 * Q4_0 (blocks of 32: an f16 scale `d = m / -8` where `m` is the value of largest magnitude, then
 * 16 bytes of 4-bit codes `min(15, trunc(x / d + 8.5))`, value `j` in the low nibble of byte `j`
 * and value `j + 16` in its high nibble; a code `q` means `(q - 8) · d`).
 *
 * @example
 * ```ts
 * import { ggufChunks } from "./gguf_writer.ts";
 * const chunks = [...ggufChunks(
 *   [["general.architecture", { type: "string", value: "llama" }]],
 *   [{ name: "t", ne: [2], type: "F32", data: () => new Float32Array([1, 2]) }],
 * )];
 * ```
 */
import { f32ToF16Bits } from "./dtype.ts";

/** ggml's type ids of the tensor types written here. */
export const GGML_TYPES = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type GgufTensorType = keyof typeof GGML_TYPES;

/** Values per Q8_0 block, and bytes per block (f16 scale + 32 int8). */
export const Q8_0_BLOCK = 32;
const Q8_0_BLOCK_BYTES = 2 + Q8_0_BLOCK;
/** Values per Q4_0 block, and bytes per block (f16 scale + 16 bytes of nibbles). */
export const Q4_0_BLOCK = 32;
const Q4_0_BLOCK_BYTES = 2 + Q4_0_BLOCK / 2;

/** Values per block of a tensor type (1 for the float types). */
export function ggmlBlockSize(type: GgufTensorType): number {
  return type === "Q8_0" || type === "Q4_0" ? 32 : 1;
}

/** GGUF metadata value types. */
const VALUE_TYPES = {
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
} as const;

/** One metadata value. */
export type GgufValue =
  | { type: "u32" | "i32" | "f32" | "u64"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "array"; of: "string"; value: readonly string[] }
  | { type: "array"; of: "i32" | "f32"; value: ArrayLike<number> };

/** A tensor to write: its shape in ggml order and its f32 values, produced when written. */
export interface GgufTensor {
  name: string;
  ne: readonly number[];
  type: GgufTensorType;
  data: () => Float32Array;
}

/** Default data alignment of GGUF. */
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** Bytes of a tensor of `count` values of `type` (the block types need whole blocks). */
export function ggufTensorBytes(type: GgufTensorType, count: number): number {
  if (type === "F32") return 4 * count;
  if (type === "F16") return 2 * count;
  if (type === "Q4_0") return (count / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES;
  return (count / Q8_0_BLOCK) * Q8_0_BLOCK_BYTES;
}

/** Encodes f32 values as `type`. */
export function encodeGgmlTensor(type: GgufTensorType, x: Float32Array): Uint8Array {
  if (type === "F32") return new Uint8Array(x.slice().buffer);
  if (type === "F16") {
    const out = new Uint16Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = f32ToF16Bits(x[i]);
    return new Uint8Array(out.buffer);
  }
  if (type === "Q4_0") return quantizeQ4_0(x);
  return quantizeQ8_0(x);
}

/** Q4_0 blocks of `x` (length a multiple of 32). */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  if (x.length % Q4_0_BLOCK !== 0) {
    throw new RangeError(`Q4_0 needs a multiple of ${Q4_0_BLOCK} values, got ${x.length}`);
  }
  const blocks = x.length / Q4_0_BLOCK;
  const out = new Uint8Array(blocks * Q4_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  const half = Q4_0_BLOCK / 2;
  const code = (v: number) => Math.min(15, Math.trunc(Math.fround(v + 8.5)));
  for (let b = 0; b < blocks; b++) {
    const at0 = b * Q4_0_BLOCK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < Q4_0_BLOCK; j++) {
      const v = x[at0 + j];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    // In f32, as ggml computes it: the scale, its inverse, each scaled value.
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    const at = b * Q4_0_BLOCK_BYTES;
    view.setUint16(at, f32ToF16Bits(d), true);
    for (let j = 0; j < half; j++) {
      const lo = code(Math.fround(x[at0 + j] * id));
      const hi = code(Math.fround(x[at0 + half + j] * id));
      out[at + 2 + j] = lo | (hi << 4);
    }
  }
  return out;
}

/** Q8_0 blocks of `x` (length a multiple of 32). */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % Q8_0_BLOCK !== 0) {
    throw new RangeError(`Q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${x.length}`);
  }
  const blocks = x.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(x[b * Q8_0_BLOCK + j]));
    // In f32, as ggml computes it: the scale, its inverse, each scaled value.
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const at = b * Q8_0_BLOCK_BYTES;
    view.setUint16(at, f32ToF16Bits(d), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      const v = Math.fround(x[b * Q8_0_BLOCK + j] * id);
      view.setInt8(at + 2 + j, Math.sign(v) * Math.round(Math.abs(v)));
    }
  }
  return out;
}

/** A little-endian byte builder for the header. */
class Bytes {
  #buf = new Uint8Array(1024);
  #view = new DataView(this.#buf.buffer);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.length + n));
    grown.set(this.#buf.subarray(0, this.length));
    this.#buf = grown;
    this.#view = new DataView(grown.buffer);
  }
  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.#room(4);
    this.#view.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.#room(4);
    this.#view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  u64(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u64 value ${v}`);
    this.#room(8);
    this.#view.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  u8(v: number): void {
    this.#room(1);
    this.#buf[this.length++] = v;
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
  }
  pad(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.length);
  }
}

function writeValue(out: Bytes, v: GgufValue): void {
  out.u32(VALUE_TYPES[v.type]);
  switch (v.type) {
    case "u32":
      return out.u32(v.value);
    case "i32":
      return out.i32(v.value);
    case "f32":
      return out.f32(v.value);
    case "u64":
      return out.u64(v.value);
    case "bool":
      return out.u8(v.value ? 1 : 0);
    case "string":
      return out.string(v.value);
    case "array": {
      out.u32(VALUE_TYPES[v.of]);
      out.u64(v.value.length);
      if (v.of === "string") { for (const s of v.value as readonly string[]) out.string(s); }
      else {
        const put = v.of === "i32" ? (x: number) => out.i32(x) : (x: number) => out.f32(x);
        const a = v.value as ArrayLike<number>;
        for (let i = 0; i < a.length; i++) put(a[i]);
      }
    }
  }
}

function checkTensor(t: Omit<GgufTensor, "data">): number {
  if (t.ne.length < 1 || t.ne.length > 4 || !t.ne.every((n) => Number.isSafeInteger(n) && n > 0)) {
    throw new RangeError(`${t.name}: bad shape [${t.ne.join(", ")}]`);
  }
  const block = ggmlBlockSize(t.type);
  if (t.ne[0] % block !== 0) {
    throw new RangeError(`${t.name}: ${t.type} needs ne[0] a multiple of ${block}, got ${t.ne[0]}`);
  }
  return t.ne.reduce((a, b) => a * b, 1);
}

/**
 * A tensor whose values may come from an asynchronous read (a file, a network), whole or as
 * chunks of whole rows (`ne[0]` values each) in order, so a large tensor is never held whole.
 */
export interface GgufAsyncTensor extends Omit<GgufTensor, "data"> {
  data: () => Float32Array | Promise<Float32Array> | AsyncIterable<Float32Array>;
}

/** The encoded header (padded to the alignment) and each tensor's data size in bytes. */
function ggufHeader(
  metadata: readonly [string, GgufValue][],
  tensors: readonly Omit<GgufTensor, "data">[],
  alignment: number,
): { header: Uint8Array; sizes: number[] } {
  const keys = new Set<string>();
  const header = new Bytes();
  for (const c of "GGUF") header.u8(c.charCodeAt(0));
  header.u32(3);
  header.u64(tensors.length);
  const entries = [...metadata];
  if (alignment !== GGUF_DEFAULT_ALIGNMENT && !metadata.some(([k]) => k === "general.alignment")) {
    entries.push(["general.alignment", { type: "u32", value: alignment }]);
  }
  header.u64(entries.length);
  for (const [key, value] of entries) {
    if (keys.has(key)) throw new RangeError(`duplicate metadata key ${key}`);
    keys.add(key);
    header.string(key);
    writeValue(header, value);
  }
  const names = new Set<string>();
  let offset = 0;
  const sizes: number[] = [];
  for (const t of tensors) {
    if (names.has(t.name)) throw new RangeError(`duplicate tensor ${t.name}`);
    names.add(t.name);
    const count = checkTensor(t);
    header.string(t.name);
    header.u32(t.ne.length);
    for (const n of t.ne) header.u64(n);
    header.u32(GGML_TYPES[t.type]);
    header.u64(offset);
    const bytes = ggufTensorBytes(t.type, count);
    sizes.push(bytes);
    offset += Math.ceil(bytes / alignment) * alignment;
  }
  header.pad(alignment);
  return { header: header.bytes(), sizes };
}

/** One tensor's encoded data followed by its padding, after checking the value count. */
function* tensorData(
  t: Omit<GgufTensor, "data">,
  values: Float32Array,
  size: number,
  alignment: number,
): Generator<Uint8Array> {
  const count = checkTensor(t);
  if (values.length !== count) {
    throw new RangeError(`${t.name}: ${values.length} values for shape [${t.ne.join(", ")}]`);
  }
  yield encodeGgmlTensor(t.type, values);
  const pad = Math.ceil(size / alignment) * alignment - size;
  if (pad > 0) yield new Uint8Array(pad);
}

/**
 * The GGUF file as chunks: the header, then each tensor's encoded data and its padding. Each
 * tensor's `data()` is called only when its turn comes, and its length is checked.
 */
export function* ggufChunks(
  metadata: readonly [string, GgufValue][],
  tensors: readonly GgufTensor[],
  options: { alignment?: number } = {},
): Generator<Uint8Array> {
  const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const { header, sizes } = ggufHeader(metadata, tensors, alignment);
  yield header;
  for (let i = 0; i < tensors.length; i++) {
    yield* tensorData(tensors[i], tensors[i].data(), sizes[i], alignment);
  }
}

/** {@link ggufChunks} for tensors read asynchronously: one tensor in memory at a time. */
export async function* ggufChunksAsync(
  metadata: readonly [string, GgufValue][],
  tensors: readonly GgufAsyncTensor[],
  options: { alignment?: number } = {},
): AsyncGenerator<Uint8Array> {
  const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
  const { header, sizes } = ggufHeader(metadata, tensors, alignment);
  yield header;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const data = await t.data();
    if (data instanceof Float32Array) {
      yield* tensorData(t, data, sizes[i], alignment);
      continue;
    }
    const count = checkTensor(t);
    let got = 0;
    for await (const chunk of data) {
      if (chunk.length % t.ne[0] !== 0 || got + chunk.length > count) {
        throw new RangeError(
          `${t.name}: a chunk of ${chunk.length} values is not whole rows of ${t.ne[0]} within ` +
            `shape [${t.ne.join(", ")}]`,
        );
      }
      got += chunk.length;
      yield encodeGgmlTensor(t.type, chunk);
    }
    if (got !== count) {
      throw new RangeError(`${t.name}: ${got} values for shape [${t.ne.join(", ")}]`);
    }
    const pad = Math.ceil(sizes[i] / alignment) * alignment - sizes[i];
    if (pad > 0) yield new Uint8Array(pad);
  }
}
