/**
 * Block-wise 8-bit codes for optimizer moments: each block of {@link QUANT_BLOCK} values keeps
 * one f32 scale (the block's largest magnitude) and one byte per value. A byte indexes a table
 * of magnitude levels in [0, 1]: evenly spaced near the top (steps of 1/64 for the signed map,
 * 1/128 for the unsigned one) down to where neighbouring levels are 10 % apart, then
 * geometric with ratio 1.1 further down. So every level below the top is at most ~10 % from its
 * neighbours (a value decaying by 0.9 per step always moves down a level, instead of sticking
 * at a coarse bottom code), the top keeps sub-percent steps, and the range reaches
 * 1.6e-4 (signed) / 1.8e-7 (unsigned) of the block's largest value.
 *
 * - signed: `code ∈ [-127, 127]` as an int8 byte, `x = scale · sign · level[|code|]`;
 * - unsigned: `code ∈ [0, 255]`, `x = scale · level[code]`; a positive value never gets code 0
 *   (it is rounded up to the smallest level).
 *
 * Encoding rounds to the nearest level: a table indexed by the top 16 bits of the f32 value
 * gives a candidate (buckets are narrower than the level gaps), then the midpoints settle it;
 * decoding reads a table.
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

/** Ratio between neighbouring levels in the geometric part. */
const RATIO = 1.1;

/**
 * `count + 1` ascending magnitudes, `[0] = 0`, `[count] = 1`: `k / linear` for k from `linear`
 * down to the first k where k/(k-1) reaches {@link RATIO}, then geometric below.
 */
export function magnitudeLevels(count: number, linear: number): Float64Array {
  const levels = new Float64Array(count + 1);
  let k = linear;
  let i = count;
  for (; i > 0 && k / (k - 1) < RATIO; i--, k--) levels[i] = k / linear;
  let x = k / linear;
  for (; i > 0; i--, x /= RATIO) levels[i] = x;
  return levels;
}

/** The signed map's magnitudes (index = |code|) and the unsigned map's levels (index = code). */
export const SIGNED_LEVELS = magnitudeLevels(127, 64);
export const UNSIGNED_LEVELS = magnitudeLevels(255, 128);

/** Scratch for reading an f32's bits. */
const F32_BITS = new Float32Array(1);
const U32_BITS = new Uint32Array(F32_BITS.buffer);

/** Midpoints between neighbouring levels: code k covers `[mid[k-1], mid[k])`. */
function midpoints(levels: Float64Array): Float64Array {
  const mid = new Float64Array(levels.length - 1);
  for (let k = 0; k < mid.length; k++) mid[k] = (levels[k] + levels[k + 1]) / 2;
  return mid;
}

const SIGNED_MIDS = midpoints(SIGNED_LEVELS);
const UNSIGNED_MIDS = midpoints(UNSIGNED_LEVELS);

/** f32 bits >> 15 (8 exponent and 8 mantissa bits) of every y in [0, 1]: 0 .. 0x7f00. */
const BUCKET_SHIFT = 15;

/** The nearest level of each bucket's smallest value (a candidate within one level). */
function bucketCodes(mids: Float64Array): Uint8Array {
  const last = 0x3f800000 >>> BUCKET_SHIFT;
  const t = new Uint8Array(last + 1);
  for (let b = 0; b <= last; b++) {
    U32_BITS[0] = b << BUCKET_SHIFT;
    t[b] = nearestBySearch(mids, F32_BITS[0]);
  }
  return t;
}

/** `x = scale · SIGNED_TABLE[byte]`: the signed levels with the sign, by two's-complement byte. */
const SIGNED_TABLE = (() => {
  const t = new Float64Array(256);
  for (let b = 0; b < 256; b++) t[b] = b < 128 ? SIGNED_LEVELS[b] : -SIGNED_LEVELS[256 - b];
  t[128] = -1; // unused byte (-128); decodes in range
  return t;
})();

/**
 * The bucket tables, built on first use: building them runs ~65k searches, which on import
 * would cost every run the JIT's compile memory, whether or not it uses 8-bit moments.
 */
let buckets: { signed: Uint8Array; unsigned: Uint8Array } | null = null;

function bucketTables(): { signed: Uint8Array; unsigned: Uint8Array } {
  buckets ??= { signed: bucketCodes(SIGNED_MIDS), unsigned: bucketCodes(UNSIGNED_MIDS) };
  return buckets;
}

/** The level index nearest to `y` in [0, 1]: the bucket's candidate, moved to the right gap. */
function nearest(mids: Float64Array, buckets: Uint8Array, y: number): number {
  F32_BITS[0] = y;
  let c = buckets[U32_BITS[0] >>> BUCKET_SHIFT];
  while (c < mids.length && y >= mids[c]) c++;
  while (c > 0 && y < mids[c - 1]) c--;
  return c;
}

/** Number of blocks for `n` values. */
export function quantBlocks(n: number): number {
  return Math.ceil(n / QUANT_BLOCK);
}

/** The level index nearest to `y` in [0, 1], by binary search. */
function nearestBySearch(mids: Float64Array, y: number): number {
  let lo = 0, hi = mids.length; // answer in [lo, hi]
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (y < mids[m]) hi = m;
    else lo = m + 1;
  }
  return lo;
}

/**
 * Encodes `x[from .. from+len)` into `codes[at .. at+len)` and returns the block's scale (an
 * f32 value: the block's largest magnitude, rounded up to f32). A block of zeros gets scale 0 and
 * codes 0. The unsigned map expects values >= 0.
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
  const tables = bucketTables();
  if (map === "signed") {
    const signedBuckets = tables.signed;
    for (let i = 0; i < len; i++) {
      const xi = x[from + i];
      const c = nearest(SIGNED_MIDS, signedBuckets, Math.abs(xi) * inv);
      codes[at + i] = xi < 0 ? (256 - c) & 255 : c;
    }
  } else {
    const unsignedBuckets = tables.unsigned;
    for (let i = 0; i < len; i++) {
      const xi = x[from + i];
      const c = nearest(UNSIGNED_MIDS, unsignedBuckets, xi * inv);
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
  const t = map === "signed" ? SIGNED_TABLE : UNSIGNED_LEVELS;
  for (let i = 0; i < len; i++) out[to + i] = scale * t[codes[at + i]];
}

/** The smallest f32 above the (finite, non-negative) f32 `x`. */
function nextF32Up(x: number): number {
  F32_BITS[0] = x;
  U32_BITS[0]++;
  return F32_BITS[0];
}
