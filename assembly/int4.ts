// int4 affine-weight kernels (see src/kernels/abi.ts and src/kernels/reference/int4.ts for the
// layout and the exact quantization rule, which this file reproduces bit for bit).
//
// The matmuls never build a whole f32 W: x · Wᵀ and g · W dequantize one 8-column panel of one K
// block at a time into scratch (gemm_core.ts) and run the f32 6x8 register tile on it; for a few
// rows of x (M <= 8, generation) a GEMV reads the packed nibbles directly.

import { scratchBase, SCRATCH_BYTES } from "./setup";
import {
  A_ROWS,
  B_INT4_KN,
  B_INT4_NK,
  dequantWord8,
  EPI_BIAS,
  GEMM_SCRATCH_END,
  gemm,
  gemmStrided,
  setInt4Operand,
} from "./gemm_core";
import { gemvX1W1, gemvX1W2, gemvX1W4, gemvX2W1 } from "./gemv_rows";
import { GEMV_MAX_ROWS } from "./tile_shape";
import { addBias } from "./elementwise";

/**
 * Quantizes f32 w[N,K] per group of `groupSize` columns: lo = min, hi = max,
 * scale = (hi - lo) / 15, bias = lo, q = clamp(nearest((w - lo) / scale), 0, 15) with ties to
 * even, q = 0 when scale == 0. Nibble i of word j of a row is column 8j + i.
 */
export function int4Quantize(
  q: usize,
  scales: usize,
  biases: usize,
  w: usize,
  N: i32,
  K: i32,
  groupSize: i32,
): void {
  const groups = K / groupSize;
  const vectors = groupSize >> 2;
  // Nibble positions as multipliers: lane t of the low vector goes to bits 4t, of the high one
  // to bits 16 + 4t (the wrapping i32 multiply keeps the bits of 15 << 28).
  const placeLo = i32x4(1, 16, 256, 4096);
  const placeHi = i32x4(65536, 1048576, 16777216, 268435456);
  const fifteen = f32x4.splat(15);
  const zero = f32x4.splat(0);
  for (let n: i32 = 0; n < N; n++) {
    for (let g: i32 = 0; g < groups; g++) {
      const src = w + ((<usize>n * <usize>K + <usize>(g * groupSize)) << 2);
      // min / max are exact and order-free, so the vector scan equals the reference's scalar one.
      let vlo = v128.load(src);
      let vhi = vlo;
      for (let i: i32 = 1; i < vectors; i++) {
        const v = v128.load(src + (<usize>i << 4));
        vlo = f32x4.min(vlo, v);
        vhi = f32x4.max(vhi, v);
      }
      const lo = min<f32>(
        min<f32>(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)),
        min<f32>(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)),
      );
      const hi = max<f32>(
        max<f32>(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)),
        max<f32>(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)),
      );
      const scale: f32 = (hi - lo) / <f32>15;
      const gi = (<usize>n * <usize>groups + <usize>g) << 2;
      store<f32>(scales + gi, scale);
      store<f32>(biases + gi, lo);
      const dst = q + ((<usize>n * <usize>(K >> 3) + <usize>(g * (groupSize >> 3))) << 2);
      if (scale == 0) {
        memory.fill(dst, 0, <usize>(groupSize >> 1));
        continue;
      }
      const vl = f32x4.splat(lo);
      const vs = f32x4.splat(scale);
      for (let j: i32 = 0; j < groupSize >> 3; j++) {
        const p = src + (<usize>j << 5);
        // Per element exactly the reference: nearest((w - lo) / scale), clamped to 0..15.
        const a = f32x4.nearest(f32x4.div(f32x4.sub(v128.load(p), vl), vs));
        const b = f32x4.nearest(f32x4.div(f32x4.sub(v128.load(p, 16), vl), vs));
        const qa = i32x4.trunc_sat_f32x4_s(f32x4.min(fifteen, f32x4.max(zero, a)));
        const qb = i32x4.trunc_sat_f32x4_s(f32x4.min(fifteen, f32x4.max(zero, b)));
        const bits = i32x4.add(i32x4.mul(qa, placeLo), i32x4.mul(qb, placeHi));
        const word = i32x4.extract_lane(bits, 0) | i32x4.extract_lane(bits, 1) |
          i32x4.extract_lane(bits, 2) | i32x4.extract_lane(bits, 3);
        store<i32>(dst + (<usize>j << 2), word);
      }
    }
  }
}

/** Powers 16^-t that undo the nibble positions kept in place by dequantWord8. */
// @ts-ignore: decorator
@inline function unshiftLanes(): v128 {
  return f32x4(1.0, 0.0625, 0.00390625, 0.000244140625);
}

/** Dequantizes row `row` of W [.., K] into out[K]. */
function dequantRows(
  out: usize,
  q: usize,
  scales: usize,
  biases: usize,
  row: usize,
  K: i32,
  groupSize: i32,
): void {
  const words = K >> 3;
  const groups = K / groupSize;
  const wordsPerGroup = groupSize >> 3;
  const qr = q + ((row * <usize>words) << 2);
  const sr = scales + ((row * <usize>groups) << 2);
  const br = biases + ((row * <usize>groups) << 2);
  const unshift = unshiftLanes();
  for (let g: i32 = 0; g < groups; g++) {
    const scaleLanes = f32x4.mul(f32x4.splat(load<f32>(sr + (<usize>g << 2))), unshift);
    const bias = f32x4.splat(load<f32>(br + (<usize>g << 2)));
    for (let j: i32 = 0; j < wordsPerGroup; j++) {
      const w = g * wordsPerGroup + j;
      dequantWord8(out + (<usize>w << 5), load<u32>(qr + (<usize>w << 2)), scaleLanes, bias);
    }
  }
}

/** out[N,K] = scale * q + bias (an f32 multiply then an f32 add, like the reference). */
export function int4Dequantize(
  out: usize,
  q: usize,
  scales: usize,
  biases: usize,
  N: i32,
  K: i32,
  groupSize: i32,
): void {
  for (let n: i32 = 0; n < N; n++) {
    dequantRows(out + ((<usize>n * <usize>K) << 2), q, scales, biases, <usize>n, K, groupSize);
  }
}

/** out[T,K] = dequantized rows ids[t] of W (ids are trusted: the caller checks them). */
export function int4GatherRows(
  out: usize,
  ids: usize,
  q: usize,
  scales: usize,
  biases: usize,
  T: i32,
  K: i32,
  groupSize: i32,
): void {
  for (let t: i32 = 0; t < T; t++) {
    const row = <usize>load<i32>(ids + (<usize>t << 2));
    dequantRows(out + ((<usize>t * <usize>K) << 2), q, scales, biases, row, K, groupSize);
  }
}

/** out[M,N] (+)= alpha * x[M,K] · Wᵀ. */
export function int4MatmulXWt(
  out: usize,
  x: usize,
  q: usize,
  scales: usize,
  biases: usize,
  M: i32,
  N: i32,
  K: i32,
  groupSize: i32,
  alpha: f32,
  acc: i32,
): void {
  int4XWtStrided(out, <usize>N << 2, x, q, scales, biases, M, N, K, groupSize, alpha, acc);
}

/**
 * out[M,N] = x[M,K] · Wᵀ + bias[N]: int4MatmulXWt then addBias, with the bias added to each
 * tile as it is finished (the GEMM path) instead of in a second pass over out.
 */
export function int4MatmulXWtBias(
  out: usize,
  x: usize,
  q: usize,
  scales: usize,
  biases: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
  groupSize: i32,
): void {
  const ldo = <usize>N << 2;
  if (
    M <= GEMV_MAX_ROWS && groupSize % 32 == 0 && M > 0 && N > 0 &&
    gemvFits(M, K, groupSize)
  ) {
    int4Gemv(out, ldo, x, q, scales, biases, M, N, K, groupSize, 1, 0);
    addBias(out, bias, M, N);
    return;
  }
  setInt4Operand(q, scales, biases, groupSize);
  gemmStrided(out, ldo, x, 0, M, N, K, 1, 0, A_ROWS, B_INT4_NK, bias, EPI_BIAS);
}

/**
 * int4MatmulXWt with rows of out `ldo` bytes apart: the column range of W rows q.. of a wider
 * output (the threads build's int4MatmulXWtCols). Same operations per element as the whole call.
 */
export function int4XWtStrided(
  out: usize,
  ldo: usize,
  x: usize,
  q: usize,
  scales: usize,
  biases: usize,
  M: i32,
  N: i32,
  K: i32,
  groupSize: i32,
  alpha: f32,
  acc: i32,
): void {
  if (
    M <= GEMV_MAX_ROWS && groupSize % 32 == 0 && M > 0 && N > 0 &&
    gemvFits(M, K, groupSize)
  ) {
    int4Gemv(out, ldo, x, q, scales, biases, M, N, K, groupSize, alpha, acc);
    return;
  }
  setInt4Operand(q, scales, biases, groupSize);
  gemmStrided(out, ldo, x, 0, M, N, K, alpha, acc, A_ROWS, B_INT4_NK);
}

/** out[M,K] (+)= alpha * g[M,N] · W: the gemm engine with W's rows as the reduction axis. */
export function int4MatmulGW(
  out: usize,
  g: usize,
  q: usize,
  scales: usize,
  biases: usize,
  M: i32,
  N: i32,
  K: i32,
  groupSize: i32,
  alpha: f32,
  acc: i32,
): void {
  setInt4Operand(q, scales, biases, groupSize);
  gemm(out, g, 0, M, K, N, alpha, acc, A_ROWS, B_INT4_KN);
}

// ---- GEMV: a few rows of x against packed nibbles ------------------------------------------
//
// Four consecutive words of a row hold 32 columns; masking nibble t of their i32x4 gives columns
// {t, 8+t, 16+t, 24+t} of the block, times 16^t. x is permuted once into that order and scaled by
// 16^-t (a power of two: each product is still q·x exactly), so each nibble vector multiplies a
// contiguous x vector with no shift. Per group only Σ q·x is accumulated; the bias
// enters as bias * Σ x over the group, from sums taken once per call. Needs groupSize % 32 == 0.

// @ts-ignore: decorator
@inline function gemvXp(): usize {
  return (scratchBase + GEMM_SCRATCH_END + 15) & ~(<usize>15);
}

function gemvFits(M: i32, K: i32, groupSize: i32): bool {
  const need = <usize>M * <usize>K * 4 + <usize>M * <usize>(K / groupSize) * 4;
  return gemvXp() + need <= scratchBase + <usize>SCRATCH_BYTES;
}

function int4Gemv(
  out: usize,
  ldo: usize,
  x: usize,
  q: usize,
  scales: usize,
  biases: usize,
  M: i32,
  N: i32,
  K: i32,
  groupSize: i32,
  alpha: f32,
  acc: i32,
): void {
  const xp = gemvXp();
  const groups = K / groupSize;
  const blocks = K >> 5;
  const blocksPerGroup = groupSize >> 5;
  const xsum = xp + ((<usize>M * <usize>K) << 2);
  for (let m: i32 = 0; m < M; m++) {
    const src = x + ((<usize>m * <usize>K) << 2);
    const dst = xp + ((<usize>m * <usize>K) << 2);
    for (let b: i32 = 0; b < blocks; b++) {
      for (let t: i32 = 0; t < 8; t++) {
        // The kernels keep nibble t (< 7) at bit 4t: 16^-t here makes each product q·x exactly.
        const unshift: f32 = t == 7 ? 1 : reinterpret<f32>((127 - 4 * t) << 23);
        for (let l: i32 = 0; l < 4; l++) {
          const v = load<f32>(src + (<usize>(b * 32 + l * 8 + t) << 2));
          store<f32>(dst + (<usize>(b * 32 + t * 4 + l) << 2), v * unshift);
        }
      }
    }
    for (let g: i32 = 0; g < groups; g++) {
      let s: f32 = 0;
      for (let k: i32 = 0; k < groupSize; k++) {
        s += load<f32>(src + (<usize>(g * groupSize + k) << 2));
      }
      store<f32>(xsum + ((<usize>m * <usize>groups + <usize>g) << 2), s);
    }
  }
  const words = <usize>(K >> 3);
  const ldq = words << 2;
  const ldg = <usize>groups << 2;
  const ldx = <usize>K << 2;
  if (M == 1) {
    // Decoding: four (then two, one) W rows per pass share every x vector.
    let n: i32 = 0;
    for (; n + 4 <= N; n += 4) {
      const un = <usize>n;
      gemvX1W4(out + (un << 2), ldo, q + un * ldq, ldq, scales + un * ldg, biases + un * ldg, ldg, xp, ldx, xsum, ldg, groups, blocksPerGroup, alpha, acc);
    }
    for (; n + 2 <= N; n += 2) {
      const un = <usize>n;
      gemvX1W2(out + (un << 2), ldo, q + un * ldq, ldq, scales + un * ldg, biases + un * ldg, ldg, xp, ldx, xsum, ldg, groups, blocksPerGroup, alpha, acc);
    }
    if (n < N) {
      const un = <usize>n;
      gemvX1W1(out + (un << 2), ldo, q + un * ldq, ldq, scales + un * ldg, biases + un * ldg, ldg, xp, ldx, xsum, ldg, groups, blocksPerGroup, alpha, acc);
    }
    return;
  }
  for (let n: i32 = 0; n < N; n++) {
    const un = <usize>n;
    const qr = q + un * ldq;
    const sr = scales + un * ldg;
    const br = biases + un * ldg;
    const o = out + (un << 2);
    let m: i32 = 0;
    // Two rows of x share each dequantized nibble vector.
    for (; m + 2 <= M; m += 2) {
      const px = xp + <usize>m * ldx;
      const xs = xsum + <usize>m * ldg;
      gemvX2W1(o + <usize>m * ldo, ldo, qr, ldq, sr, br, ldg, px, ldx, xs, ldg, groups, blocksPerGroup, alpha, acc);
    }
    if (m < M) {
      const px = xp + <usize>m * ldx;
      const xs = xsum + <usize>m * ldg;
      gemvX1W1(o + <usize>m * ldo, ldo, qr, ldq, sr, br, ldg, px, ldx, xs, ldg, groups, blocksPerGroup, alpha, acc);
    }
  }
}
