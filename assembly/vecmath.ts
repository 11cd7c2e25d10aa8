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
const P0: f32 = 1.9875691500e-4;
const P1: f32 = 1.3981999507e-3;
const P2: f32 = 8.3334519073e-3;
const P3: f32 = 4.1665795894e-2;
const P4: f32 = 1.6666665459e-1;
const P5: f32 = 5.0000001201e-1;

/** exp of four f32 lanes; relative error about 1 ulp; exp(-Infinity) = 0, NaN stays NaN. */
// @ts-ignore: decorator
@inline export function expv(x0: v128): v128 {
  // max/min propagate NaN (unlike pmax/pmin), so NaN in gives NaN out.
  const x = f32x4.min(f32x4.max(x0, f32x4.splat(X_MIN)), f32x4.splat(X_MAX));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(LOG2E)));
  // Plain mul/sub (not madd) here: with LN2_HI's 9-bit mantissa n * LN2_HI is exact anyway.
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(LN2_HI)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(LN2_LO)));
  let p = madd(f32x4.splat(P0), r, f32x4.splat(P1));
  p = madd(p, r, f32x4.splat(P2));
  p = madd(p, r, f32x4.splat(P3));
  p = madd(p, r, f32x4.splat(P4));
  p = madd(p, r, f32x4.splat(P5));
  const y = f32x4.add(madd(p, f32x4.mul(r, r), r), f32x4.splat(1.0));
  const ni = i32x4.trunc_sat_f32x4_s(n);
  const n1 = i32x4.shr_s(ni, 1);
  const n2 = i32x4.sub(ni, n1);
  const bias = i32x4.splat(127);
  const s1 = i32x4.shl(i32x4.add(n1, bias), 23);
  const s2 = i32x4.shl(i32x4.add(n2, bias), 23);
  return f32x4.mul(f32x4.mul(y, s1), s2);
}

/** Scalar exp with exactly the same arithmetic as one lane of expv (tails stay consistent). */
// @ts-ignore: decorator
@inline export function expf(x: f32): f32 {
  return f32x4.extract_lane(expv(f32x4.splat(x)), 0);
}
