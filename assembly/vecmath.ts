// SIMD helpers shared by the non-GEMM kernels: fused-or-not multiply-add, horizontal sums and a
// vectorized exp. Not exported from index.ts: internal to the kernel families.

/** a * b + c on f32x4: relaxed_madd (FMA where the engine has it) in the relaxed build. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/** Sum of the four lanes. */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(s, 0) + f32x4.extract_lane(s, 1);
}

/** Largest of the four lanes (NaN propagates). */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  const m = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return max<f32>(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1));
}

/** Adds the squares of the four f32 lanes of v, in f64, into acc (two f64 lanes). */
// @ts-ignore: decorator
@inline export function addSquaresF64(acc: v128, v: v128): v128 {
  const lo = f64x2.promote_low_f32x4(v);
  const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f64x2.add(f64x2.add(acc, f64x2.mul(lo, lo)), f64x2.mul(hi, hi));
}

/** Adds the squares of the two low f32 lanes of v, in f64, into acc (two f64 lanes). */
// @ts-ignore: decorator
@inline export function addLowSquaresF64(acc: v128, v: v128): v128 {
  const lo = f64x2.promote_low_f32x4(v);
  return f64x2.add(acc, f64x2.mul(lo, lo));
}

/** Adds the products of the two low f32 lanes of a and b, in f64 (exact), into acc. */
// @ts-ignore: decorator
@inline export function addLowProductsF64(acc: v128, a: v128, b: v128): v128 {
  return f64x2.add(acc, f64x2.mul(f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(b)));
}

/** Adds the lane-wise products a * b (f32 lanes, products exact in f64) into acc (f64x2). */
// @ts-ignore: decorator
@inline export function addProductsF64(acc: v128, a: v128, b: v128): v128 {
  const alo = f64x2.promote_low_f32x4(a);
  const ahi = f64x2.promote_low_f32x4(v128.shuffle<f32>(a, a, 2, 3, 0, 1));
  const blo = f64x2.promote_low_f32x4(b);
  const bhi = f64x2.promote_low_f32x4(v128.shuffle<f32>(b, b, 2, 3, 0, 1));
  return f64x2.add(f64x2.add(acc, f64x2.mul(alo, blo)), f64x2.mul(ahi, bhi));
}

/** Adds the four f32 lanes of v, in f64, into acc (two f64 lanes). */
// @ts-ignore: decorator
@inline export function addF64(acc: v128, v: v128): v128 {
  const lo = f64x2.promote_low_f32x4(v);
  const hi = f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f64x2.add(f64x2.add(acc, lo), hi);
}

/** Sum of the two f64 lanes. */
// @ts-ignore: decorator
@inline export function hsumF64(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// exp: x = n ln2 + r with n = round(x / ln2), |r| <= ln2 / 2 (Cody-Waite: ln2 split in a part
// with few mantissa bits, so n * LN2_HI is exact, and a small correction), exp(r) by the
// degree-7 minimax polynomial of the Cephes expf, then the 2^n scaling applied in two halves so
// that results in the subnormal range and overflow to +Infinity come out right.
const LOG2E: f32 = 1.44269504088896341;
const LN2_HI: f32 = 0.693359375;
const LN2_LO: f32 = -2.12194440e-4;
// Below X_MIN every result is 0 (exp(-104) < 2^-149 / 2); above X_MAX it is +Infinity.
const X_MIN: f32 = -104.0;
const X_MAX: f32 = 89.0;
// 1.5 * 2^23: for |y| < 2^22, y + ROUND_MAGIC has a unit last place, so the addition rounds y to
// the nearest integer, ties to even (what f32x4.nearest does), and that integer sits in the low
// mantissa bits: bits(y + ROUND_MAGIC) - bits(ROUND_MAGIC) = round(y) as an i32.
const ROUND_MAGIC: f32 = 12582912.0;
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;

/**
 * The exp constants, each splatted to a v128, in static memory. V8 builds every v128.const from
 * two 64-bit immediates (several instructions) at each use, inside loops too, and binaryen folds
 * a splat held in a local back into a v128.const; a kernel that loads the constants once before
 * its loop ({@link ExpConsts}) lets the engine keep them in registers.
 */
const EXP_TABLE = memory.data<f32>([
  X_MIN, X_MIN, X_MIN, X_MIN,
  X_MAX, X_MAX, X_MAX, X_MAX,
  LOG2E, LOG2E, LOG2E, LOG2E,
  ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC, ROUND_MAGIC,
  LN2_HI, LN2_HI, LN2_HI, LN2_HI,
  LN2_LO, LN2_LO, LN2_LO, LN2_LO,
  P0, P0, P0, P0,
  P1, P1, P1, P1,
  P2, P2, P2, P2,
  P3, P3, P3, P3,
  P4, P4, P4, P4,
  P5, P5, P5, P5,
  1.0, 1.0, 1.0, 1.0,
], 16);

/** f32x4.splat(1.0), read from the table (a value the engine can keep in a register). */
// @ts-ignore: decorator
@inline export function onev(): v128 {
  return v128.load(EXP_TABLE, 12 * 16);
}

/** Entry `i` of the exp table: 0 X_MIN, 1 X_MAX, 2 LOG2E, 3 ROUND_MAGIC, 4 LN2_HI, 5 LN2_LO, 6-11 P0-P5, 12 one. */
// @ts-ignore: decorator
@inline export function expConst(i: i32): v128 {
  return v128.load(EXP_TABLE + (<usize>i << 4));
}

/**
 * exp of four f32 lanes with the table's constants passed in (`k0` … `k12` = expConst(0 … 12)):
 * a loop loads them once before it and calls this inside. Relative error about 1 ulp;
 * exp(-Infinity) = 0, NaN stays NaN.
 */
// @ts-ignore: decorator
@inline export function expvWith(
  x0: v128, k0: v128, k1: v128, k2: v128, k3: v128, k4: v128, k5: v128, k6: v128, k7: v128,
  k8: v128, k9: v128, k10: v128, k11: v128, k12: v128,
): v128 {
  // pmax(x, lo) = x < lo ? lo : x and pmin(x, hi) = hi < x ? hi : x pass a NaN x through, and
  // each is one instruction where min/max need a NaN-fixing sequence.
  const x = f32x4.pmin(f32x4.pmax(x0, k0), k1);
  // Plain mul then add (not madd): the rounding to an integer must see the rounded product.
  const t = f32x4.add(f32x4.mul(x, k2), k3);
  const n = f32x4.sub(t, k3);
  // Plain mul/sub (not madd) here: with LN2_HI's 9-bit mantissa n * LN2_HI is exact anyway.
  let r = f32x4.sub(x, f32x4.mul(n, k4));
  r = f32x4.sub(r, f32x4.mul(n, k5));
  let p = madd(k6, r, k7);
  p = madd(p, r, k8);
  p = madd(p, r, k9);
  p = madd(p, r, k10);
  p = madd(p, r, k11);
  const y = f32x4.add(madd(p, f32x4.mul(r, r), r), k12);
  // n as an i32 (k3's bits are ROUND_MAGIC's), split n = n1 + n2 so that each 2^ni is a normal
  // f32; (ni << 23) + bits(1.0) is the bit pattern of 2^ni.
  const ni = i32x4.sub(t, k3);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const s1 = i32x4.add(i32x4.shl(n1, 23), k12);
  const s2 = i32x4.add(i32x4.shl(n2, 23), k12);
  return f32x4.mul(f32x4.mul(y, s1), s2);
}

/** exp of four f32 lanes, the constants read from the table at the call (see {@link expvWith}). */
// @ts-ignore: decorator
@inline export function expv(x: v128): v128 {
  return expvWith(
    x, expConst(0), expConst(1), expConst(2), expConst(3), expConst(4), expConst(5), expConst(6),
    expConst(7), expConst(8), expConst(9), expConst(10), expConst(11), expConst(12),
  );
}

/** Scalar exp with exactly the same arithmetic as one lane of expv (tails stay consistent). */
// @ts-ignore: decorator
@inline export function expf(x: f32): f32 {
  return f32x4.extract_lane(expv(f32x4.splat(x)), 0);
}
