/**
 * safetensors dtypes: their sizes, and conversions between the float formats checkpoints use
 * (BF16, F16, F32, F64) and the f32 slimtune computes in.
 *
 * Conversions write into a caller-given `Float32Array` (typically an arena view) so that loading a
 * tensor allocates nothing beyond the destination.
 *
 * @example
 * ```ts
 * import { decodeToF32, encodeFromF32 } from "./dtype.ts";
 * const bytes = encodeFromF32(new Float32Array([1, -2.5]), "BF16");
 * const out = new Float32Array(2);
 * decodeToF32(bytes, "BF16", out); // out = [1, -2.5]
 * ```
 */

/** Bytes per element of every dtype slimtune accepts in a safetensors header. */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

/** A safetensors element type. */
export type Dtype = keyof typeof DTYPE_BYTES;

/** Float dtypes that {@link decodeToF32} converts. */
export type FloatDtype = "BF16" | "F16" | "F32" | "F64";

/** True if `s` names a dtype in {@link DTYPE_BYTES}. */
export function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.hasOwn(DTYPE_BYTES, s);
}

/** True if `d` is a float dtype {@link decodeToF32} can convert. */
export function isFloatDtype(d: string): d is FloatDtype {
  return d === "BF16" || d === "F16" || d === "F32" || d === "F64";
}

/** Decodes one IEEE half-precision value given as its 16 bits. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero or subnormal
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The 16 bits of IEEE half precision nearest to `x` (round to nearest even, overflow -> inf). */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // underflows to zero
    mant |= 0x800000; // implicit 1
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1))) m++;
    return sign | m; // may carry into the smallest normal, which is still correct
  }
  let out = sign | (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (out & 1))) out++; // carry may reach inf: correct
  return out;
}

/** The 16 bits of bfloat16 nearest to `x` (round to nearest even; NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff)) return (bits >>> 16) | 0x40;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Bytes as a typed array of `T` when aligned, otherwise a properly aligned copy. */
function aligned<T>(
  bytes: Uint8Array,
  width: number,
  make: (b: ArrayBufferLike, off: number, n: number) => T,
): T {
  const n = bytes.byteLength / width;
  if (bytes.byteOffset % width === 0) return make(bytes.buffer, bytes.byteOffset, n);
  return make(bytes.slice().buffer, 0, n);
}

/**
 * Converts little-endian `bytes` of a float dtype into `out` (length = element count).
 * Throws a RangeError when the sizes disagree.
 */
export function decodeToF32(bytes: Uint8Array, dtype: FloatDtype, out: Float32Array): void {
  const width = DTYPE_BYTES[dtype];
  if (bytes.byteLength !== out.length * width) {
    throw new RangeError(
      `decodeToF32: ${bytes.byteLength} bytes of ${dtype} do not hold ${out.length} elements`,
    );
  }
  switch (dtype) {
    case "F32":
      out.set(aligned(bytes, 4, (b, o, n) => new Float32Array(b, o, n)));
      return;
    case "F64":
      out.set(aligned(bytes, 8, (b, o, n) => new Float64Array(b, o, n)));
      return;
    case "BF16": {
      const src = aligned(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      const dst = new Uint32Array(out.buffer, out.byteOffset, out.length);
      for (let i = 0; i < src.length; i++) dst[i] = src[i] << 16;
      return;
    }
    case "F16": {
      const src = aligned(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
      for (let i = 0; i < src.length; i++) out[i] = f16BitsToF32(src[i]);
      return;
    }
  }
}

/** Encodes f32 values as little-endian bytes of a float dtype (fresh buffer). */
export function encodeFromF32(values: Float32Array, dtype: FloatDtype): Uint8Array {
  switch (dtype) {
    case "F32":
      return new Uint8Array(values.slice().buffer);
    case "F64":
      return new Uint8Array(Float64Array.from(values).buffer);
    case "BF16": {
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = f32ToBf16Bits(values[i]);
      return new Uint8Array(out.buffer);
    }
    case "F16": {
      const out = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
      return new Uint8Array(out.buffer);
    }
  }
}
