/**
 * Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
 * counter-based generator. Output block `i` is a pure function of (key, counter), so any element
 * of a random stream can be regenerated on demand without state and without storing the stream.
 * MeZO uses this to regenerate its perturbation z from (seed, tensor, element).
 *
 * @example
 * ```ts
 * import { philox4x32 } from "./philox.ts";
 * const out = new Uint32Array(4);
 * philox4x32(out, 0, 0, 0, 0, 0, 0); // out = 6627e8d5 e169c58d bc57ac4c 9b00dbd8
 * ```
 */

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO_POW_32 = 4294967296;

const TWO_POW_M32 = 1 / TWO_POW_32;

/**
 * High 32 bits of the 64-bit product of two u32 (exported for its test). The double product `a * b` is within 2^11 of the
 * exact P = hi·2^32 + lo (53-bit mantissa, P < 2^64), and lo is exact from `Math.imul`, so
 * (a·b - lo) / 2^32 lies within 2^-20 of the integer hi: rounding recovers it exactly.
 */
export function mulHi32(a: number, b: number): number {
  return Math.round((a * b - (Math.imul(a, b) >>> 0)) * TWO_POW_M32) >>> 0;
}

/**
 * Writes the Philox4x32-10 block for counter (c0, c1, c2, c3) and key (k0, k1), all u32, into
 * `out[0..3]`.
 */
export function philox4x32(
  out: Uint32Array,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
): void {
  let x0 = c0 >>> 0, x1 = c1 >>> 0, x2 = c2 >>> 0, x3 = c3 >>> 0;
  let key0 = k0 >>> 0, key1 = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      key0 = (key0 + W0) >>> 0;
      key1 = (key1 + W1) >>> 0;
    }
    const hi0 = mulHi32(M0, x0), lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulHi32(M1, x2), lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ key0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ key1) >>> 0;
    x3 = lo0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

/** Domain tag in counter word 3, so other users of Philox with the same key get other streams. */
const NORMAL_STREAM_TAG = 0x4e4f524d; // "NORM"

const block = new Uint32Array(4);

/**
 * Fills `out` with standard normals `z[offset .. offset + out.length)` of the stream keyed by
 * (`seed`, `stream`). Element `e` comes from Philox block `floor(e / 4)` (counter
 * `[block lo, block hi, stream, tag]`, key `[seed lo, seed hi]`), whose four words give two
 * Box–Muller pairs. `offset` must be a multiple of 4; the result does not depend on how a stream
 * is split into calls.
 */
export function fillNormalStream(
  out: Float32Array,
  seed: number,
  stream: number,
  offset: number,
): void {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer: ${seed}`);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0) {
    throw new RangeError(`offset must be a non-negative multiple of 4, got ${offset}`);
  }
  const k0 = seed >>> 0, k1 = Math.floor(seed / TWO_POW_32) >>> 0;
  const s = stream >>> 0;
  for (let i = 0; i < out.length; i += 4) {
    const b = (offset + i) / 4;
    philox4x32(block, b >>> 0, Math.floor(b / TWO_POW_32) >>> 0, s, NORMAL_STREAM_TAG, k0, k1);
    for (let pair = 0; pair < 2; pair++) {
      // u1 in (0, 1] keeps the logarithm finite; u2 in [0, 1).
      const u1 = (block[2 * pair] + 1) / TWO_POW_32;
      const u2 = block[2 * pair + 1] / TWO_POW_32;
      const r = Math.sqrt(-2 * Math.log(u1));
      const angle = 2 * Math.PI * u2;
      const j = i + 2 * pair;
      if (j < out.length) out[j] = r * Math.cos(angle);
      if (j + 1 < out.length) out[j + 1] = r * Math.sin(angle);
    }
  }
}
