/**
 * Math whose result is the same in every JavaScript engine. ECMAScript leaves `Math.pow`,
 * `Math.exp`, `Math.log`, `Math.cos` … implementation-approximated, and engines differ in the
 * last bit (SpiderMonkey's and JavaScriptCore's `0.9 ** 4` is 0.6561000000000001, V8's 0.6561);
 * a step's learning-rate factor computed from one then differs between browsers. What is built
 * here from `+ - * /` and exact bit manipulation alone (correctly rounded by IEEE 754
 * everywhere) does not.
 *
 * @example
 * ```ts
 * import { expPortable, logPortable, powInt } from "./portable_math.ts";
 * console.log(powInt(0.9, 4)); // 0.6561 in every engine
 * console.log(logPortable(Math.E), expPortable(1)); // 1 2.718281828459045
 * ```
 * @module
 */

/** `base` to the power `n` (an integer >= 0) by repeated squaring: the same bits everywhere. */
export function powInt(base: number, n: number): number {
  if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`powInt: n must be >= 0, got ${n}`);
  let result = 1;
  let square = base;
  for (let e = n; e > 0; e = Math.floor(e / 2)) {
    if (e % 2 === 1) result *= square;
    if (e > 1) square *= square;
  }
  return result;
}

const LN2_HI = 6.93147180369123816490e-01; // ln 2 with its low bits zero: k * LN2_HI is exact
const LN2_LO = 1.90821492927058770002e-10;
const SQRT_HALF = Math.SQRT1_2;
const bits = new DataView(new ArrayBuffer(8));

/** 2^k for an integer k in [-1022, 1023], from its bits (exact). */
function pow2(k: number): number {
  bits.setUint32(0, (k + 1023) << 20);
  bits.setUint32(4, 0);
  return bits.getFloat64(0);
}

/**
 * Natural logarithm from `+ - * /` only (within a few ulp of the true value): x = 2^k m with m
 * in [√½, √2), ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.1716, by its series to s^23.
 */
export function logPortable(x: number): number {
  if (Number.isNaN(x) || x < 0) return NaN;
  if (x === 0) return -Infinity;
  if (x === Infinity) return Infinity;
  let scale = 0;
  if (x < 2.2250738585072014e-308) { // subnormal: make it normal first
    x *= 2 ** 54;
    scale = -54;
  }
  bits.setFloat64(0, x);
  const hi = bits.getUint32(0);
  let k = (hi >>> 20) - 1023;
  bits.setUint32(0, (hi & 0x000fffff) | 0x3ff00000);
  let m = bits.getFloat64(0); // [1, 2)
  if (m > 2 * SQRT_HALF) {
    m /= 2;
    k += 1;
  }
  k += scale;
  const f = m - 1;
  const s = f / (2 + f);
  const z = s * s;
  let p = 1 / 23;
  for (let n = 21; n >= 3; n -= 2) p = p * z + 1 / n;
  const r = 2 * z * p; // ln m = 2s + s r, and 2s = f - s f
  return k * LN2_HI - ((s * (f - r) - k * LN2_LO) - f);
}

/**
 * e^x from `+ - * /` only (within a few ulp of the true value): x = k ln 2 + r,
 * |r| <= ln2 / 2, e^r by its Taylor series to r^18, times 2^k.
 */
export function expPortable(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x > 709.782712893384) return Infinity;
  if (x < -745.1332191019412) return 0;
  const k = Math.round(x * Math.LOG2E);
  const r = (x - k * LN2_HI) - k * LN2_LO;
  let e = 1;
  for (let n = 18; n >= 1; n--) e = 1 + e * r / n;
  if (k > 1023) return e * pow2(1023) * pow2(k - 1023);
  if (k < -1022) return e * pow2(k + 1022) * pow2(-1022);
  return e * pow2(k);
}
