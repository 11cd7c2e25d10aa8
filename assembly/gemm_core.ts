// The shared GEMM engine behind matmulABt/AB/AtB and the int4 matmuls (internal: not exported
// from the module).
//
// Shape of the computation: out[M,N] (+)= alpha * A(M x K) · B(K x N), where A and B are read
// through an "operand kind" so one loop nest serves every orientation:
//   - B is packed, one K block at a time, into panels of NR = 8 columns laid out [k][8] (the
//     int4 kinds dequantize while packing, so a whole f32 W never exists; a panel is L1-sized);
//   - A is packed per MR = 6 row sliver into [k][6], so the micro-kernel reads both operands with
//     one pointer each and constant offsets;
//   - a 6x8 register tile (12 v128 accumulators, 2 B vectors, 1 broadcast A = 15 of the 16 xmm
//     registers V8 uses on x64) does 12 multiply-adds per 8 loads, as XNNPACK's wasmsimd 6x8
//     kernels do.
// Row remainders of 1..4 (and 7 = 4 + 3, 8 = 4 + 4) use a 4x8 tile on the same packed A. Ragged
// M and N run the tile into a scratch tile and merge only the valid part; ragged K needs nothing
// (the packed K block has exactly kc rows). Block sizes (KC 192..512) made no measurable
// difference here; the 4x k unroll gained a few percent with relaxed-simd.
//
// The LoRA GEMMs with the rank (8) as M or N use each packed sliver or panel once or twice, so
// packing costs about as much as the multiply-adds: there, in-place tiles (DIRECT_TILES of
// scripts/gen_kernels.ts) read A's rows or k-major columns and B_KN's rows where they lie, with the
// same K blocks, row walk and stores, so every element is computed as on the packed path.
// Epilogues (a bias, a residual add) run on a sliver's rows of a column block once its last K block
// is stored.

import { scratchBase } from "./setup";
import {
  kernel4x8,
  kernel4x8Cols,
  kernel4x8Rows,
  kernel6x8,
  kernel6x8Cols,
  kernel6x8Rows,
  packASliverRows,
  packB4Rows,
} from "./gemm_tiles";
import { MR, NR } from "./tile_shape";

/** Largest K block: a packed A sliver (6 KiB) and a B panel (8 KiB) stay in L1 together. */
const KC: i32 = 256;
/** Columns per packed B block: KC * NC * 4 = 1 MiB, half of this machine's per-core L2. */
const NC: i32 = 1024;

// Scratch layout (bytes from scratchBase). The GEMV path of int4.ts uses [GEMM_SCRATCH_END, 4 MiB).
const B_BLOCK_OFFSET: usize = 0;
const A_SLIVER_OFFSET: usize = <usize>(KC * NC * 4);
const TILE_OFFSET: usize = A_SLIVER_OFFSET + <usize>(KC * MR * 4);
/** First scratch byte the GEMM engine does not use. */
export const GEMM_SCRATCH_END: usize = TILE_OFFSET + <usize>(MR * NR * 4);

/** A(i,k) = a[i*K + k] (activations, gradients: row-major [M,K]). */
export const A_ROWS: i32 = 0;
/** A(i,k) = a[k*M + i] (matmulAtB: a is [K,M]). */
export const A_COLS: i32 = 1;

/** B(k,j) = b[j*K + k] (f32 weight stored [N,K]). */
export const B_NK: i32 = 0;
/** B(k,j) = b[k*N + j] (f32 [K,N]). */
export const B_KN: i32 = 1;
/** B(k,j) = W[j,k], W int4 [N,K] (x · Wᵀ). */
export const B_INT4_NK: i32 = 2;
/** B(k,j) = W[k,j], W int4 [K,N] (g · W: the reduction runs over W's rows). */
export const B_INT4_KN: i32 = 3;

// The int4 operand of the current call (set by int4.ts through setInt4Operand).
let int4Q: usize = 0;
let int4Scales: usize = 0;
let int4Biases: usize = 0;
let int4GroupSize: i32 = 64;

/** Names the int4 weight the next B_INT4_* gemm reads. */
export function setInt4Operand(q: usize, scales: usize, biases: usize, groupSize: i32): void {
  int4Q = q;
  int4Scales = scales;
  int4Biases = biases;
  int4GroupSize = groupSize;
}

// ---- packing A -------------------------------------------------------------------------------

/** Packs rows i0 .. i0+mr-1, columns k0 .. k0+kc-1 of A into dst [kc][6] (missing rows = 0). */
function packA(
  dst: usize,
  kind: i32,
  a: usize,
  M: i32,
  K: i32,
  i0: i32,
  mr: i32,
  k0: i32,
  kc: i32,
): void {
  if (kind == A_ROWS) {
    if (mr == MR) {
      packASliverRows(dst, a, K, i0, k0, kc);
      return;
    }
    for (let r: i32 = 0; r < MR; r++) {
      const row = a + ((<usize>(i0 + r) * <usize>K + <usize>k0) << 2);
      for (let k: i32 = 0; k < kc; k++) {
        const v: f32 = r < mr ? load<f32>(row + (<usize>k << 2)) : 0;
        store<f32>(dst + <usize>((k * MR + r) * 4), v);
      }
    }
    return;
  }
  // A_COLS: the MR values of one k are contiguous in a [K,M].
  for (let k: i32 = 0; k < kc; k++) {
    const src = a + ((<usize>(k0 + k) * <usize>M + <usize>i0) << 2);
    const p = dst + <usize>(k * MR * 4);
    if (mr == MR) {
      v128.store(p, v128.load(src));
      v128.store64_lane(p, v128.load64_zero(src, 16), 0, 16);
    } else {
      for (let r: i32 = 0; r < MR; r++) {
        store<f32>(p + (<usize>r << 2), r < mr ? load<f32>(src + (<usize>r << 2)) : 0);
      }
    }
  }
}

// ---- packing B -------------------------------------------------------------------------------

/** Packs columns j0 .. j0+7 (N bounds the valid ones), rows k0 .. k0+kc-1 of B into dst [kc][8]. */
function packBPanel(
  dst: usize,
  kind: i32,
  b: usize,
  N: i32,
  K: i32,
  j0: i32,
  k0: i32,
  kc: i32,
): void {
  const nr = min<i32>(NR, N - j0);
  if (kind == B_KN) {
    const stride = <usize>N << 2;
    let src = b + ((<usize>k0 * <usize>N + <usize>j0) << 2);
    if (nr == NR) {
      for (let k: i32 = 0; k < kc; k++) {
        const p = dst + <usize>(k * NR * 4);
        v128.store(p, v128.load(src));
        v128.store(p, v128.load(src, 16), 16);
        src += stride;
      }
    } else {
      for (let k: i32 = 0; k < kc; k++) {
        const p = dst + <usize>(k * NR * 4);
        for (let j: i32 = 0; j < NR; j++) {
          store<f32>(p + (<usize>j << 2), j < nr ? load<f32>(src + (<usize>j << 2)) : 0);
        }
        src += stride;
      }
    }
    return;
  }
  if (kind == B_NK) {
    // Rows of b are columns of B: transpose 4 rows x 4 k at a time.
    for (let h: i32 = 0; h < 2; h++) {
      const jh = j0 + h * 4;
      const out = dst + <usize>(h * 16);
      if (N - jh >= 4) {
        packB4Rows(out, b, K, jh, k0, kc);
      } else {
        for (let j: i32 = 0; j < 4; j++) {
          const valid = jh + j < N;
          const row = b + ((<usize>(jh + j) * <usize>K + <usize>k0) << 2);
          for (let k: i32 = 0; k < kc; k++) {
            const v: f32 = valid ? load<f32>(row + (<usize>k << 2)) : 0;
            store<f32>(out + <usize>((k * NR + j) * 4), v);
          }
        }
      }
    }
    return;
  }
  if (kind == B_INT4_KN) {
    packInt4KN(dst, N, j0, k0, kc);
    return;
  }
  packInt4NK(dst, N, K, j0, k0, kc);
}

/**
 * Packs a whole B_KN block row by row: each row of b is read once, front to back, and its 8-column
 * pieces go to their panels (reading panel by panel would stride N*4 bytes per step instead).
 */
function packBlockKN(
  dst: usize,
  b: usize,
  N: i32,
  n0: i32,
  nc: i32,
  k0: i32,
  kc: i32,
  panelBytes: usize,
): void {
  const full = nc >> 3;
  const rest = nc & 7;
  for (let k: i32 = 0; k < kc; k++) {
    let src = b + ((<usize>(k0 + k) * <usize>N + <usize>n0) << 2);
    let d = dst + <usize>(k * NR * 4);
    for (let p: i32 = 0; p < full; p++) {
      v128.store(d, v128.load(src));
      v128.store(d, v128.load(src, 16), 16);
      src += 32;
      d += panelBytes;
    }
    if (rest) {
      for (let j: i32 = 0; j < NR; j++) {
        store<f32>(d + (<usize>j << 2), j < rest ? load<f32>(src + (<usize>j << 2)) : 0);
      }
    }
  }
}

/** Lane weights that undo the in-place nibble positions: lane t holds q_t << 4t. */
// @ts-ignore: decorator
@inline function nibbleUnshift(): v128 {
  return f32x4(1.0, 0.0625, 0.00390625, 0.000244140625);
}

/**
 * Eight dequantized columns 8w .. 8w+7 of one int4 row from its word: lane t of the low vector is
 * column 8w+t, of the high one 8w+4+t. Each value is (scale * q) + bias as an f32 multiply then an
 * f32 add: masking keeps nibble t at bit 4t, so the int->float value is q * 16^t exactly and the
 * lane factor scale * 16^-t (exact: a power of two) brings the product back to scale * q with the
 * same single rounding as the reference. Stores both vectors at dst and dst + 16.
 */
// @ts-ignore: decorator
@inline export function dequantWord8(dst: usize, word: u32, scaleLanes: v128, bias: v128): void {
  const v = i32x4.splat(word);
  const mask = i32x4(0xf, 0xf0, 0xf00, 0xf000);
  const lo = f32x4.convert_i32x4_s(v128.and(v, mask));
  const hi = f32x4.convert_i32x4_s(v128.and(i32x4.shr_u(v, 16), mask));
  v128.store(dst, f32x4.add(f32x4.mul(lo, scaleLanes), bias));
  v128.store(dst, f32x4.add(f32x4.mul(hi, scaleLanes), bias), 16);
}

/** g · W panel: B(k,j) = W[k,j], columns j0..j0+7 are word j0/8 of rows k0..k0+kc-1. */
function packInt4KN(dst: usize, N: i32, j0: i32, k0: i32, kc: i32): void {
  const words = <usize>(N >> 3);
  const groups = <usize>(N / int4GroupSize);
  const w = <usize>(j0 >> 3);
  const g = <usize>(j0 / int4GroupSize);
  const unshift = nibbleUnshift();
  for (let k: i32 = 0; k < kc; k++) {
    const row = <usize>(k0 + k);
    const word = load<u32>(int4Q + ((row * words + w) << 2));
    const gi = (row * groups + g) << 2;
    const scaleLanes = f32x4.mul(f32x4.splat(load<f32>(int4Scales + gi)), unshift);
    const bias = f32x4.splat(load<f32>(int4Biases + gi));
    dequantWord8(dst + <usize>(k * NR * 4), word, scaleLanes, bias);
  }
}

/**
 * x · Wᵀ panel: B(k,j) = W[j,k] for W rows j0..j0+7 (N bounds them), columns k0..k0+kc-1 (k0 and
 * kc multiples of 8). Four W rows at a time: their words for the same 8 columns form one i32x4, so
 * shifting by 4t and masking gives column 8w+t of the four rows, already in the [k][8] order.
 */
function packInt4NK(dst: usize, N: i32, K: i32, j0: i32, k0: i32, kc: i32): void {
  const words = <usize>(K >> 3);
  const groups = <usize>(K / int4GroupSize);
  const wordsPerGroup = int4GroupSize >> 3;
  const nibble = i32x4.splat(15);
  for (let h: i32 = 0; h < 2; h++) {
    const jh = j0 + h * 4;
    const out = dst + <usize>(h * 16);
    // Rows beyond N repeat row N-1 (reads stay inside W) and their lanes are zeroed at the end.
    const ra = <usize>min<i32>(jh, N - 1);
    const rb = <usize>min<i32>(jh + 1, N - 1);
    const rc = <usize>min<i32>(jh + 2, N - 1);
    const rd = <usize>min<i32>(jh + 3, N - 1);
    const valid = N - jh;
    const w0 = k0 >> 3;
    const wEnd = (k0 + kc) >> 3;
    let w = w0;
    while (w < wEnd) {
      // One group (or the part of it inside this K block) shares scales and biases.
      const g = <usize>(w / wordsPerGroup);
      const gEnd = min<i32>(wEnd, (<i32>g + 1) * wordsPerGroup);
      let s = f32x4.splat(load<f32>(int4Scales + ((ra * groups + g) << 2)));
      s = f32x4.replace_lane(s, 1, load<f32>(int4Scales + ((rb * groups + g) << 2)));
      s = f32x4.replace_lane(s, 2, load<f32>(int4Scales + ((rc * groups + g) << 2)));
      s = f32x4.replace_lane(s, 3, load<f32>(int4Scales + ((rd * groups + g) << 2)));
      let bi = f32x4.splat(load<f32>(int4Biases + ((ra * groups + g) << 2)));
      bi = f32x4.replace_lane(bi, 1, load<f32>(int4Biases + ((rb * groups + g) << 2)));
      bi = f32x4.replace_lane(bi, 2, load<f32>(int4Biases + ((rc * groups + g) << 2)));
      bi = f32x4.replace_lane(bi, 3, load<f32>(int4Biases + ((rd * groups + g) << 2)));
      for (; w < gEnd; w++) {
        const uw = <usize>w;
        let q = i32x4.splat(load<i32>(int4Q + ((ra * words + uw) << 2)));
        q = i32x4.replace_lane(q, 1, load<i32>(int4Q + ((rb * words + uw) << 2)));
        q = i32x4.replace_lane(q, 2, load<i32>(int4Q + ((rc * words + uw) << 2)));
        q = i32x4.replace_lane(q, 3, load<i32>(int4Q + ((rd * words + uw) << 2)));
        const p = out + <usize>(((w << 3) - k0) * NR * 4);
        v128.store(p, deq4(v128.and(q, nibble), s, bi));
        v128.store(p, deq4(v128.and(i32x4.shr_u(q, 4), nibble), s, bi), 32);
        v128.store(p, deq4(v128.and(i32x4.shr_u(q, 8), nibble), s, bi), 64);
        v128.store(p, deq4(v128.and(i32x4.shr_u(q, 12), nibble), s, bi), 96);
        v128.store(p, deq4(v128.and(i32x4.shr_u(q, 16), nibble), s, bi), 128);
        v128.store(p, deq4(v128.and(i32x4.shr_u(q, 20), nibble), s, bi), 160);
        v128.store(p, deq4(v128.and(i32x4.shr_u(q, 24), nibble), s, bi), 192);
        v128.store(p, deq4(i32x4.shr_u(q, 28), s, bi), 224);
      }
    }
    if (valid < 4) {
      // Zero the lanes of rows that do not exist.
      for (let k: i32 = 0; k < kc; k++) {
        for (let j: i32 = max<i32>(valid, 0); j < 4; j++) {
          store<f32>(out + <usize>((k * NR + j) * 4), 0);
        }
      }
    }
  }
}

/** scale * q + bias for four int nibbles, multiply then add (the reference's rounding). */
// @ts-ignore: decorator
@inline function deq4(q: v128, scale: v128, bias: v128): v128 {
  return f32x4.add(f32x4.mul(f32x4.convert_i32x4_s(q), scale), bias);
}

// ---- the driver ------------------------------------------------------------------------------

/** Merges a scratch tile into out: only rows < mr and columns < nr exist. */
function mergeTile(
  tile: usize,
  out: usize,
  ldo: usize,
  mr: i32,
  nr: i32,
  alpha: f32,
  overwrite: bool,
): void {
  for (let r: i32 = 0; r < mr; r++) {
    const src = tile + <usize>(r * NR * 4);
    const dst = out + <usize>r * ldo;
    for (let j: i32 = 0; j < nr; j++) {
      const o = <usize>j << 2;
      const prior: f32 = overwrite ? 0 : load<f32>(dst + o);
      store<f32>(dst + o, prior + alpha * load<f32>(src + o));
    }
  }
}

/** No epilogue: the GEMM's result is what it stores. */
export const EPI_NONE: i32 = 0;
/** `epi` is bias[N]: every row of out gets it added (addBias over the finished output). */
export const EPI_BIAS: i32 = 1;
/** `epi` is res[M,N] (rows `ldo` apart): out += res afterwards (add(out, out, res)). */
export const EPI_ADD_RES: i32 = 2;
/** `epi` is res[M,N] (rows `ldo` apart): res += out afterwards (add(res, res, out)); out keeps the product. */
export const EPI_INTO_RES: i32 = 3;

/** dst[0..n-1] = a + b, f32 adds (the same operations as the element-wise add kernel). */
function addRow(dst: usize, a: usize, b: usize, n: i32): void {
  let j: i32 = 0;
  for (; j + 4 <= n; j += 4) {
    const o = <usize>j << 2;
    v128.store(dst + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; j < n; j++) {
    const o = <usize>j << 2;
    store<f32>(dst + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/**
 * The epilogue of rows 0..rows-1, columns j0..j0+n-1 of out (finished): bias or residual added,
 * f32 adds as the separate kernels do them (a + b and b + a round alike).
 */
function epilogue(
  out: usize,
  ldo: usize,
  rows: i32,
  j0: i32,
  n: i32,
  epi: usize,
  epiMode: i32,
): void {
  const cj = <usize>j0 << 2;
  for (let r: i32 = 0; r < rows; r++) {
    const o = out + <usize>r * ldo + cj;
    if (epiMode == EPI_BIAS) {
      addRow(o, o, epi + cj, n);
    } else {
      const e = epi + <usize>r * ldo + cj;
      if (epiMode == EPI_ADD_RES) addRow(o, o, e, n);
      else addRow(e, e, o, n);
    }
  }
}

/**
 * out[M,N] (+)= alpha * A · B with A and B read as `aKind` / `bKind` (see the constants above).
 * `acc` != 0 adds into out. K = 0 leaves alpha * (empty sum) = 0, i.e. out is zeroed unless acc.
 */
// @ts-ignore: decorator
@inline export function gemm(
  out: usize,
  a: usize,
  b: usize,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  acc: i32,
  aKind: i32,
  bKind: i32,
): void {
  gemmStrided(out, <usize>N << 2, a, b, M, N, K, alpha, acc, aKind, bKind);
}

/**
 * {@link gemm} with rows of out `ldo` bytes apart (>= N * 4): a column range of a wider output,
 * as the threaded kernels split it. Every element gets the same operations as in a call over the
 * whole width when the range starts at a multiple of NR. `epiMode` (EPI_*) names an epilogue over
 * `epi` that runs on each tile as soon as it is finished: the bits of the separate kernel after the
 * whole product, without a second pass over out.
 */
export function gemmStrided(
  out: usize,
  ldo: usize,
  a: usize,
  b: usize,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  acc: i32,
  aKind: i32,
  bKind: i32,
  epi: usize = 0,
  epiMode: i32 = EPI_NONE,
): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!acc) {
      for (let i: i32 = 0; i < M; i++) memory.fill(out + <usize>i * ldo, 0, <usize>N << 2);
    }
    if (epiMode != EPI_NONE) epilogue(out, ldo, M, 0, N, epi, epiMode);
    return;
  }
  const bBlock = scratchBase + B_BLOCK_OFFSET;
  const aSliver = scratchBase + A_SLIVER_OFFSET;
  const tile = scratchBase + TILE_OFFSET;
  // The small LoRA shapes (rank 8 as M or N) read operands in place where a packed copy would be
  // used once or twice: A when there are at most two panels (or A_COLS with at most 8 rows, whose
  // k values are contiguous), B_KN when there are at most two slivers of rows (or at most two
  // panels). The in-place tiles compute every element as the packed ones do.
  const fewPanels = N <= 2 * NR;
  const directA = (aKind == A_ROWS && fewPanels) || (aKind == A_COLS && (fewPanels || M <= NR));
  const directB = bKind == B_KN && (fewPanels || M <= NR);
  // Equal K blocks (multiples of 8, which the int4 x·Wᵀ packing needs) of at most KC.
  const kBlocks = (K + KC - 1) / KC;
  const kcStep = min<i32>(KC, (((K + kBlocks - 1) / kBlocks + 7) >> 3) << 3);
  for (let k0: i32 = 0; k0 < K; k0 += kcStep) {
    const kc = min<i32>(kcStep, K - k0);
    const overwrite = k0 == 0 && acc == 0;
    for (let n0: i32 = 0; n0 < N; n0 += NC) {
      const nc = min<i32>(NC, N - n0);
      const panels = (nc + NR - 1) / NR;
      const panelBytes = <usize>(kc * NR * 4);
      if (directB) {
        // Only a ragged last panel is packed (reading 8 columns in place would pass row ends).
        const last = panels - 1;
        if (nc - last * NR < NR) {
          packBPanel(bBlock + <usize>last * panelBytes, B_KN, b, N, K, n0 + last * NR, k0, kc);
        }
      } else if (bKind == B_KN) {
        packBlockKN(bBlock, b, N, n0, nc, k0, kc, panelBytes);
      } else {
        for (let p: i32 = 0; p < panels; p++) {
          packBPanel(bBlock + <usize>p * panelBytes, bKind, b, N, K, n0 + p * NR, k0, kc);
        }
      }
      const ldbDirect = <usize>N << 2;
      let i0: i32 = 0;
      while (i0 < M) {
        // Slivers of 6 rows; a remainder of 7 or 8 rows runs as 4 + 3 / 4 + 4 on the 4-row tile
        // instead of 6 + 1 / 6 + 2 (LoRA rank 8 gives M = 8).
        const left = M - i0;
        const mr = left >= 9 || left == 6 || left == 5 ? min<i32>(MR, left) : min<i32>(4, left);
        const fullRows = mr == MR || mr == 4;
        const inPlaceA = directA && fullRows;
        if (!inPlaceA) packA(aSliver, aKind, a, M, K, i0, mr, k0, kc);
        // A in place: rows (A_ROWS) or k-major columns (A_COLS); otherwise the packed sliver.
        let pa = aSliver;
        let lda = <usize>(MR * 4);
        if (inPlaceA && aKind == A_ROWS) {
          pa = a + ((<usize>i0 * <usize>K + <usize>k0) << 2);
          lda = <usize>K << 2;
        } else if (inPlaceA) {
          pa = a + ((<usize>k0 * <usize>M + <usize>i0) << 2);
          lda = <usize>M << 2;
        }
        const rowsA = inPlaceA && aKind == A_ROWS;
        const rowOut = out + <usize>i0 * ldo;
        const tall = mr > 4;
        for (let p: i32 = 0; p < panels; p++) {
          const j0 = n0 + p * NR;
          const nr = min<i32>(NR, N - j0);
          const c = rowOut + (<usize>j0 << 2);
          let pb = bBlock + <usize>p * panelBytes;
          let ldb = <usize>(NR * 4);
          if (directB && nr == NR) {
            pb = b + ((<usize>k0 * <usize>N + <usize>j0) << 2);
            ldb = ldbDirect;
          }
          if (!directA && !directB) {
            if (nr == NR && mr == MR) {
              kernel6x8(aSliver, pb, kc, c, ldo, alpha, overwrite);
            } else if (nr == NR && mr == 4) {
              kernel4x8(aSliver, pb, kc, c, ldo, alpha, overwrite);
            } else {
              if (tall) {
                kernel6x8(aSliver, pb, kc, tile, <usize>(NR * 4), 1.0, true);
              } else {
                kernel4x8(aSliver, pb, kc, tile, <usize>(NR * 4), 1.0, true);
              }
              mergeTile(tile, c, ldo, mr, nr, alpha, overwrite);
            }
          } else {
            // A full tile stores alpha * c itself; a ragged one goes through the scratch tile
            // and mergeTile, as on the packed path.
            const full = nr == NR && fullRows;
            const dst = full ? c : tile;
            const ldd = full ? ldo : <usize>(NR * 4);
            const al: f32 = full ? alpha : 1.0;
            const ow = full ? overwrite : true;
            if (rowsA) {
              if (tall) kernel6x8Rows(pa, lda, pb, ldb, kc, dst, ldd, al, ow);
              else kernel4x8Rows(pa, lda, pb, ldb, kc, dst, ldd, al, ow);
            } else if (tall) {
              kernel6x8Cols(pa, lda, pb, ldb, kc, dst, ldd, al, ow);
            } else {
              kernel4x8Cols(pa, lda, pb, ldb, kc, dst, ldd, al, ow);
            }
            if (!full) mergeTile(tile, c, ldo, mr, nr, alpha, overwrite);
          }
        }
        // The epilogue: once the last K block has stored the sliver's rows of this column block
        // (at most NC = 1024 columns, still in cache), row by row as contiguous spans.
        if (epiMode != EPI_NONE && k0 + kc >= K) {
          const e = epiMode == EPI_BIAS ? epi : epi + <usize>i0 * ldo;
          epilogue(rowOut, ldo, mr, n0, nc, e, epiMode);
        }
        i0 += mr;
      }
    }
  }
}
