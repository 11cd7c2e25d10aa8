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
  GEMM_SCRATCH_END,
  gemm,
  madd,
  setInt4Operand,
} from "./gemm_core";

/** Largest M the GEMV path serves. */
const GEMV_MAX_ROWS: i32 = 8;

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
  if (
    M <= GEMV_MAX_ROWS && groupSize % 32 == 0 && M > 0 && N > 0 &&
    gemvFits(M, K, groupSize)
  ) {
    int4Gemv(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc);
    return;
  }
  setInt4Operand(q, scales, biases, groupSize);
  gemm(out, x, 0, M, N, K, alpha, acc, A_ROWS, B_INT4_NK);
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
// Four consecutive words of a row hold 32 columns; shifting their i32x4 right by 4t and masking
// gives columns {t, 8+t, 16+t, 24+t} of the block. x is permuted once into that order, so each
// nibble vector multiplies a contiguous x vector. Per group only Σ q·x is accumulated; the bias
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
        for (let l: i32 = 0; l < 4; l++) {
          const v = load<f32>(src + (<usize>(b * 32 + l * 8 + t) << 2));
          store<f32>(dst + (<usize>(b * 32 + t * 4 + l) << 2), v);
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
  for (let n: i32 = 0; n < N; n++) {
    const qr = q + ((<usize>n * words) << 2);
    const sr = scales + ((<usize>n * <usize>groups) << 2);
    const br = biases + ((<usize>n * <usize>groups) << 2);
    const o = out + (<usize>n << 2);
    const ldo = <usize>N << 2;
    let m: i32 = 0;
    // Two rows of x share each dequantized nibble vector.
    for (; m + 2 <= M; m += 2) {
      const px = xp + ((<usize>m * <usize>K) << 2);
      const xs = xsum + ((<usize>m * <usize>groups) << 2);
      gemvRow2(o + <usize>m * ldo, ldo, qr, sr, br, px, <usize>K << 2, xs, <usize>groups << 2, groups, blocksPerGroup, alpha, acc);
    }
    if (m < M) {
      const px = xp + ((<usize>m * <usize>K) << 2);
      const xs = xsum + ((<usize>m * <usize>groups) << 2);
      gemvRow1(o + <usize>m * ldo, qr, sr, br, px, xs, groups, blocksPerGroup, alpha, acc);
    }
  }
}

/** Horizontal sum of four f32 lanes. */
// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) +
    f32x4.extract_lane(v, 3);
}

/** Nibble t (0..7) of each of four words, as f32. */
// @ts-ignore: decorator
@inline function nibbles(w: v128, t: i32): v128 {
  const shifted = t == 0 ? w : i32x4.shr_u(w, t * 4);
  return f32x4.convert_i32x4_s(t == 7 ? shifted : v128.and(shifted, i32x4.splat(15)));
}

/** One output element: o (+)= alpha * (row of W) · (permuted row of x). */
function gemvRow1(
  o: usize,
  qr: usize,
  sr: usize,
  br: usize,
  px: usize,
  xs: usize,
  groups: i32,
  blocksPerGroup: i32,
  alpha: f32,
  acc: i32,
): void {
  let pq = qr;
  let total = f32x4.splat(0);
  let biasSum: f32 = 0;
  for (let g: i32 = 0; g < groups; g++) {
    // Two accumulators (even / odd nibbles) halve the dependency chain.
    let even = f32x4.splat(0);
    let odd = f32x4.splat(0);
    for (let b: i32 = 0; b < blocksPerGroup; b++) {
      const w = v128.load(pq);
      even = madd(nibbles(w, 0), v128.load(px), even);
      odd = madd(nibbles(w, 1), v128.load(px, 16), odd);
      even = madd(nibbles(w, 2), v128.load(px, 32), even);
      odd = madd(nibbles(w, 3), v128.load(px, 48), odd);
      even = madd(nibbles(w, 4), v128.load(px, 64), even);
      odd = madd(nibbles(w, 5), v128.load(px, 80), odd);
      even = madd(nibbles(w, 6), v128.load(px, 96), even);
      odd = madd(nibbles(w, 7), v128.load(px, 112), odd);
      pq += 16;
      px += 128;
    }
    const gi = <usize>g << 2;
    total = madd(f32x4.add(even, odd), f32x4.splat(load<f32>(sr + gi)), total);
    biasSum += load<f32>(br + gi) * load<f32>(xs + gi);
  }
  const prior: f32 = acc ? load<f32>(o) : 0;
  store<f32>(o, prior + alpha * (hsum(total) + biasSum));
}

/** Two output elements (rows m, m+1 of x; x rows `ldx`, sums `ldxs`, outputs `ldo` bytes apart). */
function gemvRow2(
  o: usize,
  ldo: usize,
  qr: usize,
  sr: usize,
  br: usize,
  px: usize,
  ldx: usize,
  xs: usize,
  ldxs: usize,
  groups: i32,
  blocksPerGroup: i32,
  alpha: f32,
  acc: i32,
): void {
  let pq = qr;
  let total0 = f32x4.splat(0);
  let total1 = f32x4.splat(0);
  let biasSum0: f32 = 0;
  let biasSum1: f32 = 0;
  for (let g: i32 = 0; g < groups; g++) {
    let even0 = f32x4.splat(0);
    let odd0 = f32x4.splat(0);
    let even1 = f32x4.splat(0);
    let odd1 = f32x4.splat(0);
    for (let b: i32 = 0; b < blocksPerGroup; b++) {
      const w = v128.load(pq);
      const px1 = px + ldx;
      let f = nibbles(w, 0);
      even0 = madd(f, v128.load(px), even0);
      even1 = madd(f, v128.load(px1), even1);
      f = nibbles(w, 1);
      odd0 = madd(f, v128.load(px, 16), odd0);
      odd1 = madd(f, v128.load(px1, 16), odd1);
      f = nibbles(w, 2);
      even0 = madd(f, v128.load(px, 32), even0);
      even1 = madd(f, v128.load(px1, 32), even1);
      f = nibbles(w, 3);
      odd0 = madd(f, v128.load(px, 48), odd0);
      odd1 = madd(f, v128.load(px1, 48), odd1);
      f = nibbles(w, 4);
      even0 = madd(f, v128.load(px, 64), even0);
      even1 = madd(f, v128.load(px1, 64), even1);
      f = nibbles(w, 5);
      odd0 = madd(f, v128.load(px, 80), odd0);
      odd1 = madd(f, v128.load(px1, 80), odd1);
      f = nibbles(w, 6);
      even0 = madd(f, v128.load(px, 96), even0);
      even1 = madd(f, v128.load(px1, 96), even1);
      f = nibbles(w, 7);
      odd0 = madd(f, v128.load(px, 112), odd0);
      odd1 = madd(f, v128.load(px1, 112), odd1);
      pq += 16;
      px += 128;
    }
    const gi = <usize>g << 2;
    const scale = f32x4.splat(load<f32>(sr + gi));
    total0 = madd(f32x4.add(even0, odd0), scale, total0);
    total1 = madd(f32x4.add(even1, odd1), scale, total1);
    const bias = load<f32>(br + gi);
    biasSum0 += bias * load<f32>(xs + gi);
    biasSum1 += bias * load<f32>(xs + ldxs + gi);
  }
  const prior0: f32 = acc ? load<f32>(o) : 0;
  store<f32>(o, prior0 + alpha * (hsum(total0) + biasSum0));
  const prior1: f32 = acc ? load<f32>(o + ldo) : 0;
  store<f32>(o + ldo, prior1 + alpha * (hsum(total1) + biasSum1));
}
