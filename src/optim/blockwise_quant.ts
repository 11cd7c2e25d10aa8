/**
 * Block-wise 8-bit codes for optimizer moments: each block of {@link QUANT_BLOCK} values keeps
 * one f32 scale (the block's largest magnitude) and one byte per value on a power map, so the
 * small values of a block keep relative precision that a linear map would round to zero.
 *
 * - signed (first moment): `code ∈ [-127, 127]` as an int8 byte, `x = scale · sign · (|code|/127)²`;
 * - unsigned (second moment): `code ∈ [0, 255]`, `x = scale · (code/255)⁴`; a positive value never
 *   gets code 0 (it is rounded up to the smallest step), so `sqrt(v)` in a denominator never
 *   collapses to `eps` because of rounding.
 *
 * Encoding rounds to the nearest code in the power domain; decoding reads a 256-entry table.
 *
 * @example
 * ```ts
 * import { decodeBlock, encodeBlock } from "./blockwise_quant.ts";
 * const x = new Float64Array([0.5, -0.01, 0, 1e-4]);
 * const codes = new Uint8Array(4);
 * const scale = encodeBlock(x, 0, 4, codes, 0, "signed");
 * const back = new Float64Array(4);
 * decodeBlock(codes, 0, 4, scale, back, 0, "signed"); // back ≈ x, back[2] === 0
 * ```
 */

/** Values per quantization block (one f32 scale each). */
export const QUANT_BLOCK = 256;

/** Which code a moment uses. */
export type QuantMap = "signed" | "unsigned";

/** `(|code| / 127)²` with the sign, indexed by the code's byte (two's complement). */
const SIGNED_TABLE = (() => {
  const t = new Float64Array(256);
  for (let b = 0; b < 256; b++) {
    const c = b < 128 ? b : b - 256;
    const u = Math.abs(c) / 127;
    t[b] = Math.sign(c) * u * u;
  }
  return t;
})();

/** `(code / 255)⁴`. */
const UNSIGNED_TABLE = (() => {
  const t = new Float64Array(256);
  for (let c = 0; c < 256; c++) t[c] = (c / 255) ** 4;
  return t;
})();

/** Number of blocks for `n` values. */
export function quantBlocks(n: number): number {
  return Math.ceil(n / QUANT_BLOCK);
}

/**
 * Encodes `x[from .. from+len)` into `codes[at .. at+len)` and returns the block's scale (an
 * f32 value: the block's largest magnitude rounded to f32, rounded up if needed so no code
 * exceeds the range). A block of zeros gets scale 0 and codes 0.
 */
export function encodeBlock(
  x: ArrayLike<number>,
  from: number,
  len: number,
  codes: Uint8Array,
  at: number,
  map: QuantMap,
): number {
  let absmax = 0;
  for (let i = 0; i < len; i++) {
    const a = Math.abs(x[from + i]);
    if (a > absmax) absmax = a;
  }
  let scale = Math.fround(absmax);
  if (scale < absmax) scale = nextF32Up(scale);
  if (!(scale > 0)) {
    codes.fill(0, at, at + len);
    return 0;
  }
  const inv = 1 / scale;
  if (map === "signed") {
    for (let i = 0; i < len; i++) {
      const xi = x[from + i];
      const c = Math.round(127 * Math.sqrt(Math.abs(xi) * inv));
      codes[at + i] = xi < 0 ? (256 - c) & 255 : c;
    }
  } else {
    for (let i = 0; i < len; i++) {
      const xi = x[from + i];
      const c = Math.round(255 * Math.sqrt(Math.sqrt(xi * inv)));
      codes[at + i] = c === 0 && xi > 0 ? 1 : c;
    }
  }
  return scale;
}

/** Decodes `codes[at .. at+len)` with `scale` into `out[to .. to+len)`. */
export function decodeBlock(
  codes: Uint8Array,
  at: number,
  len: number,
  scale: number,
  out: Float64Array | Float32Array,
  to: number,
  map: QuantMap,
): void {
  const t = map === "signed" ? SIGNED_TABLE : UNSIGNED_TABLE;
  for (let i = 0; i < len; i++) out[to + i] = scale * t[codes[at + i]];
}

/** The smallest f32 above the (finite, non-negative) f32 `x`. */
function nextF32Up(x: number): number {
  F32_BITS[0] = x;
  U32_BITS[0]++;
  return F32_BITS[0];
}

const F32_BITS = new Float32Array(1);
const U32_BITS = new Uint32Array(F32_BITS.buffer);
