/**
 * Builds safetensors files from named tensors. Portable (no file APIs): either one `Uint8Array`
 * ({@link serializeSafetensors}) or a stream of chunks ({@link safetensorsChunks}) that a caller
 * writes wherever it likes, e.g. `writeFileAtomic` from `src/deno/fs.ts`.
 *
 * Layout: u64 LE header length N, N bytes of UTF-8 JSON padded with spaces so the data starts at a
 * multiple of 8, then each tensor's bytes back to back in the order given.
 *
 * @example
 * ```ts
 * import { serializeSafetensors } from "./safetensors_writer.ts";
 * const bytes = serializeSafetensors([
 *   { name: "w", dtype: "F32", shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) },
 * ], { format: "pt" });
 * ```
 */
import { type Dtype, DTYPE_BYTES, isDtype } from "./dtype.ts";

/** Name, dtype and shape of a tensor: what a header entry describes. */
export interface TensorSpec {
  name: string;
  dtype: Dtype;
  shape: readonly number[];
}

/** A tensor with its little-endian bytes. */
export interface TensorData extends TensorSpec {
  data: Uint8Array;
}

/**
 * A tensor whose bytes are produced only when the writer reaches it (streaming writers): one
 * buffer, or a sequence of chunks that together hold the tensor (so no whole tensor is in memory).
 */
export interface LazyTensor extends TensorSpec {
  data: () =>
    | Uint8Array
    | Promise<Uint8Array>
    | Iterable<Uint8Array>
    | AsyncIterable<Uint8Array>;
}

/**
 * The bytes of `data` for a {@link LazyTensor}'s `data()`: a view of it, with no copy (a copy per
 * tensor would stay in the heap until a later collection, holding the whole file again while it
 * is written), or a copy where it lies in shared (threads) memory, which writers such as `Blob`
 * may not read from.
 */
export function tensorBytes(data: ArrayBufferView): Uint8Array {
  const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof SharedArrayBuffer === "function" && data.buffer instanceof SharedArrayBuffer) {
    return view.slice();
  }
  return view;
}

/** Bytes a tensor of `spec` occupies, as a safe integer (throws when it is not one). */
export function tensorByteLength(spec: TensorSpec): number {
  let n = DTYPE_BYTES[spec.dtype];
  for (const d of spec.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(`tensor ${spec.name}: bad dimension ${d} in shape [${spec.shape}]`);
    }
    n *= d;
    if (!Number.isSafeInteger(n)) {
      throw new RangeError(`tensor ${spec.name}: shape [${spec.shape}] is too large`);
    }
  }
  return n;
}

/**
 * The header of a safetensors file holding `specs` in order: 8-byte length prefix + padded JSON.
 * Also returns the total data length that must follow it.
 */
export function encodeSafetensorsHeader(
  specs: readonly TensorSpec[],
  metadata?: Record<string, string>,
): { header: Uint8Array; dataBytes: number } {
  const json: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new TypeError(`__metadata__ value for "${k}" must be a string, got ${typeof v}`);
      }
    }
    json.__metadata__ = metadata;
  }
  const seen = new Set<string>();
  let offset = 0;
  for (const spec of specs) {
    if (spec.name === "" || spec.name === "__metadata__") {
      throw new RangeError(`bad tensor name "${spec.name}"`);
    }
    if (seen.has(spec.name)) throw new RangeError(`duplicate tensor name ${spec.name}`);
    seen.add(spec.name);
    if (!isDtype(spec.dtype)) {
      throw new RangeError(`tensor ${spec.name}: unknown dtype ${spec.dtype}`);
    }
    const bytes = tensorByteLength(spec);
    json[spec.name] = {
      dtype: spec.dtype,
      shape: [...spec.shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil(text.length / 8) * 8;
  const header = new Uint8Array(8 + padded);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  header.fill(0x20, 8 + text.length);
  return { header, dataBytes: offset };
}

function checkLength(t: TensorSpec, data: Uint8Array): Uint8Array {
  const want = tensorByteLength(t);
  if (data.byteLength !== want) {
    throw new RangeError(
      `tensor ${t.name}: ${data.byteLength} data bytes, expected ${want} for ${t.dtype} [${t.shape}]`,
    );
  }
  return data;
}

/** A whole safetensors file in memory. */
export function serializeSafetensors(
  tensors: readonly TensorData[],
  metadata?: Record<string, string>,
): Uint8Array {
  const { header, dataBytes } = encodeSafetensorsHeader(tensors, metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  let at = header.length;
  for (const t of tensors) {
    out.set(checkLength(t, t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * A safetensors file as a stream of chunks: the header, then each tensor's bytes. Lazy tensors are
 * produced one at a time as the consumer pulls, so a file far larger than memory can be written.
 */
export async function* safetensorsChunks(
  tensors: readonly (TensorData | LazyTensor)[],
  metadata?: Record<string, string>,
): AsyncGenerator<Uint8Array> {
  const { header } = encodeSafetensorsHeader(tensors, metadata);
  yield header;
  for (const t of tensors) {
    const data = typeof t.data === "function" ? await t.data() : t.data;
    if (data instanceof Uint8Array) {
      yield checkLength(t, data);
      continue;
    }
    const want = tensorByteLength(t);
    let got = 0;
    for await (const chunk of data) {
      got += chunk.byteLength;
      if (got > want) break;
      yield chunk;
    }
    if (got !== want) {
      throw new RangeError(
        `tensor ${t.name}: chunks hold ${got > want ? `more than ${want}` : got} data bytes, ` +
          `expected ${want} for ${t.dtype} [${t.shape}]`,
      );
    }
  }
}
