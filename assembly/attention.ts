// Causal grouped-query attention for one sequence, forward and backward (see
// src/kernels/abi.ts and src/kernels/reference/attention.ts for the maths), optionally over a
// sliding window: with `window` > 0, query t sees keys j with t - window < j <= t. A windowed
// row's work starts at its first visible key rounded down to a multiple of 4 (the 4-wide score
// loads stay aligned), the keys below that start masked; `window` 0 runs the full causal rows
// exactly as before.
//
// Layout of the work: per kv head, K (and V in the backward) are transposed once into scratch as
// Kᵀ [hd, Tp] (Tp = T rounded up to 16, zero padded). A score row s_j = q·k_j for j <= t is then
// a sum over i of q[i] * Kᵀ[i, j..j+15]: one splat and four 4-wide loads feed four independent
// multiply-adds, no horizontal sums. The probability-weighted sums over V (forward) and K (dq)
// run along hd with 8 vector accumulators per pass of 32 columns. The query heads of a group
// reuse the same transposed K/V. The backward rebuilds each probability row from the saved lse,
// so no [T, T] matrix is ever stored; dk/dv accumulate row updates over the group's query heads.
//
// Scratch use: (2 hd + 8) Tp floats in the backward ((hd + 1) Tp in the forward), i.e. 2.1 MiB
// for T = 2048 at hd = 128; the call traps if that exceeds the 4 MiB scratch. Where the scratch
// has room after that, the backward also stages a kv head's dk/dv there (see below).
//
// Head ranges: the work of a call splits over heads with no shared output, and the whole-call
// exports are the range entry points over every head, so a call split across threads runs
// exactly the instruction sequence of the whole call, head by head (bit-identical; checked by
// src/kernels/parallel_test.ts). The range entry points are exported by the threads build only
// (assembly/threads.ts; src/kernels/parallel.ts calls them from the workers):
//   attentionForwardHeads:   query heads h0 .. h1-1 (each head is independent in the forward)
//   attentionBackwardGroups: kv heads g0 .. g1-1 with all their query heads (dk/dv sum over the
//                            query heads of a group in a fixed order, so a group is never split)
import { SCRATCH_BYTES, scratchBase } from "./setup";
import { addF64, expv, hmax, hsum, hsumF64, madd } from "./vecmath";

/** dst[i * Tp + j] = src row j, columns col0 .. col0+hd-1 (row stride `stride` floats); zero pad. */
function transposeHead(dst: usize, src: usize, T: i32, Tp: i32, stride: i32, col0: i32, hd: i32): void {
  const tpBytes = <usize>Tp << 2;
  for (let j = 0; j < T; j++) {
    const row = src + ((<usize>j * <usize>stride + <usize>col0) << 2);
    let d = dst + (<usize>j << 2);
    for (let i = 0; i < hd; i++) {
      store<f32>(d, load<f32>(row + (<usize>i << 2)));
      d += tpBytes;
    }
  }
  if (Tp > T) {
    for (let i = 0; i < hd; i++) memory.fill(dst + <usize>i * tpBytes + (<usize>T << 2), 0, <usize>(Tp - T) << 2);
  }
}

/** s[j] = scale * Σ_i x[i] Kᵀ[i, j] for j < nb (nb a multiple of 4, at most Tp). */
function rowScores(s: usize, kt: usize, Tp: i32, x: usize, hd: i32, nb: i32, scale: f32): void {
  const tpBytes = <usize>Tp << 2;
  const sv = f32x4.splat(scale);
  let j = 0;
  for (; j + 16 <= nb; j += 16) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let p = kt + (<usize>j << 2);
    for (let i = 0; i < hd; i++) {
      const xi = v128.load32_splat(x + (<usize>i << 2));
      a0 = madd(xi, v128.load(p), a0);
      a1 = madd(xi, v128.load(p, 16), a1);
      a2 = madd(xi, v128.load(p, 32), a2);
      a3 = madd(xi, v128.load(p, 48), a3);
      p += tpBytes;
    }
    const o = s + (<usize>j << 2);
    v128.store(o, f32x4.mul(a0, sv));
    v128.store(o, f32x4.mul(a1, sv), 16);
    v128.store(o, f32x4.mul(a2, sv), 32);
    v128.store(o, f32x4.mul(a3, sv), 48);
  }
  for (; j < nb; j += 4) {
    let a0 = f32x4.splat(0);
    let p = kt + (<usize>j << 2);
    for (let i = 0; i < hd; i++) {
      a0 = madd(v128.load32_splat(x + (<usize>i << 2)), v128.load(p), a0);
      p += tpBytes;
    }
    v128.store(s + (<usize>j << 2), f32x4.mul(a0, sv));
  }
}

/**
 * dst[0..hd) (+)= alpha * Σ_{j<n} w[j] * rows[j][0..hd), rows strided by `stride` floats.
 * `acc` = 0 overwrites dst.
 */
function weightedRowSum(dst: usize, w: usize, rows: usize, stride: i32, n: i32, hd: i32, alpha: f32, acc: bool): void {
  const strideBytes = <usize>stride << 2;
  const av = f32x4.splat(alpha);
  let c = 0;
  for (; c + 32 <= hd; c += 32) {
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
    let p = rows + (<usize>c << 2);
    for (let j = 0; j < n; j++) {
      const wj = v128.load32_splat(w + (<usize>j << 2));
      a0 = madd(wj, v128.load(p), a0);
      a1 = madd(wj, v128.load(p, 16), a1);
      a2 = madd(wj, v128.load(p, 32), a2);
      a3 = madd(wj, v128.load(p, 48), a3);
      a4 = madd(wj, v128.load(p, 64), a4);
      a5 = madd(wj, v128.load(p, 80), a5);
      a6 = madd(wj, v128.load(p, 96), a6);
      a7 = madd(wj, v128.load(p, 112), a7);
      p += strideBytes;
    }
    const o = dst + (<usize>c << 2);
    if (acc) {
      v128.store(o, madd(a0, av, v128.load(o)));
      v128.store(o, madd(a1, av, v128.load(o, 16)), 16);
      v128.store(o, madd(a2, av, v128.load(o, 32)), 32);
      v128.store(o, madd(a3, av, v128.load(o, 48)), 48);
      v128.store(o, madd(a4, av, v128.load(o, 64)), 64);
      v128.store(o, madd(a5, av, v128.load(o, 80)), 80);
      v128.store(o, madd(a6, av, v128.load(o, 96)), 96);
      v128.store(o, madd(a7, av, v128.load(o, 112)), 112);
    } else {
      v128.store(o, f32x4.mul(a0, av));
      v128.store(o, f32x4.mul(a1, av), 16);
      v128.store(o, f32x4.mul(a2, av), 32);
      v128.store(o, f32x4.mul(a3, av), 48);
      v128.store(o, f32x4.mul(a4, av), 64);
      v128.store(o, f32x4.mul(a5, av), 80);
      v128.store(o, f32x4.mul(a6, av), 96);
      v128.store(o, f32x4.mul(a7, av), 112);
    }
  }
  for (; c + 4 <= hd; c += 4) {
    let a0 = f32x4.splat(0);
    let p = rows + (<usize>c << 2);
    for (let j = 0; j < n; j++) {
      a0 = madd(v128.load32_splat(w + (<usize>j << 2)), v128.load(p), a0);
      p += strideBytes;
    }
    const o = dst + (<usize>c << 2);
    v128.store(o, acc ? madd(a0, av, v128.load(o)) : f32x4.mul(a0, av));
  }
  for (; c < hd; c++) {
    let a: f32 = 0;
    let p = rows + (<usize>c << 2);
    for (let j = 0; j < n; j++) {
      a += load<f32>(w + (<usize>j << 2)) * load<f32>(p);
      p += strideBytes;
    }
    const o = dst + (<usize>c << 2);
    store<f32>(o, acc ? load<f32>(o) + a * alpha : a * alpha);
  }
}

/** Σ a[i] b[i] over hd floats. */
function dotRow(a: usize, b: usize, hd: i32): f32 {
  let acc0 = f32x4.splat(0), acc1 = f32x4.splat(0);
  let i = 0;
  for (; i + 8 <= hd; i += 8) {
    const o = <usize>i << 2;
    acc0 = madd(v128.load(a + o), v128.load(b + o), acc0);
    acc1 = madd(v128.load(a + o, 16), v128.load(b + o, 16), acc1);
  }
  for (; i + 4 <= hd; i += 4) acc0 = madd(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2)), acc0);
  let s = hsum(f32x4.add(acc0, acc1));
  for (; i < hd; i++) s += load<f32>(a + (<usize>i << 2)) * load<f32>(b + (<usize>i << 2));
  return s;
}

// @ts-ignore: decorator
@inline function roundUp(n: i32, m: i32): i32 {
  return (n + m - 1) / m * m;
}

/** First key query t sees (0 without a window). */
// @ts-ignore: decorator
@inline function firstKey(t: i32, window: i32): i32 {
  return window > 0 && t >= window ? t - window + 1 : 0;
}

/** out = softmax(q kᵀ scale + causal (window) mask) v per query head; lse[Hq, T] saved. */
export function attentionForward(
  out: usize, lse: usize, q: usize, k: usize, v: usize, T: i32, Hq: i32, Hkv: i32, hd: i32, scale: f32,
  window: i32,
): void {
  attentionForwardHeads(out, lse, q, k, v, T, Hq, Hkv, hd, scale, window, 0, Hq);
}

/** attentionForward for query heads h0 .. h1-1 only (out columns and lse rows of those heads). */
export function attentionForwardHeads(
  out: usize, lse: usize, q: usize, k: usize, v: usize, T: i32, Hq: i32, Hkv: i32, hd: i32, scale: f32,
  window: i32, h0: i32, h1: i32,
): void {
  if (Hkv <= 0 || Hq % Hkv != 0 || h0 < 0 || h1 > Hq || window < 0) unreachable();
  const group = Hq / Hkv;
  const Tp = roundUp(T, 16);
  if ((<i64>hd + 1) * <i64>Tp * 4 > <i64>SCRATCH_BYTES) unreachable();
  const kt = scratchBase;
  const s = kt + ((<usize>hd * <usize>Tp) << 2);
  const qStride = Hq * hd;
  const kvStride = Hkv * hd;
  const ninf = f32x4.splat(-Infinity);
  let loaded = -1;
  for (let h = h0; h < h1; h++) {
    const g = h / group;
    if (g != loaded) {
      transposeHead(kt, k, T, Tp, kvStride, g * hd, hd);
      loaded = g;
    }
    const vHead = v + (<usize>(g * hd) << 2);
    for (let t = 0; t < T; t++) {
      const n = t + 1;
      const nb = roundUp(n, 4);
      const j0 = firstKey(t, window);
      const ja = j0 & ~3;
      const sa = s + (<usize>ja << 2);
      const qrow = q + ((<usize>t * <usize>qStride + <usize>(h * hd)) << 2);
      rowScores(sa, kt + (<usize>ja << 2), Tp, qrow, hd, nb - ja, scale);
      for (let j = ja; j < j0; j++) store<f32>(s + (<usize>j << 2), -Infinity);
      for (let j = n; j < nb; j++) store<f32>(s + (<usize>j << 2), -Infinity);
      let mv = ninf;
      for (let j = ja; j < nb; j += 4) mv = f32x4.max(mv, v128.load(s + (<usize>j << 2)));
      const m = hmax(mv);
      const msplat = f32x4.splat(m);
      let sum = f64x2.splat(0);
      for (let j = ja; j < nb; j += 4) {
        const p = s + (<usize>j << 2);
        const e = expv(f32x4.sub(v128.load(p), msplat));
        v128.store(p, e);
        sum = addF64(sum, e);
      }
      const total = hsumF64(sum);
      store<f32>(lse + ((<usize>h * <usize>T + <usize>t) << 2), <f32>(<f64>m + Math.log(total)));
      const orow = out + ((<usize>t * <usize>qStride + <usize>(h * hd)) << 2);
      const vRows = vHead + ((<usize>ja * <usize>kvStride) << 2);
      weightedRowSum(orow, sa, vRows, kvStride, n - ja, hd, <f32>(1.0 / total), false);
    }
  }
}

/**
 * dst[j][0..hd) += Σ_r c_r[j] * src_r[0..hd) for j < n, over `rows` (1..4) coefficient rows
 * c_r = coef + r * Tp and source rows src_r = src + r * srcStep; dst rows strided by `stride`.
 * One read-modify-write of dst per j for up to four rank-1 updates.
 */
function blockRowUpdates(
  dst: usize, stride: i32, coef: usize, Tp: i32, src: usize, srcStep: usize, rows: i32, n: i32, hd: i32, alpha: f32,
): void {
  const strideBytes = <usize>stride << 2;
  const tpBytes = <usize>Tp << 2;
  // Missing rows of a short block point at row 0 with zero weight: no branches in the loop.
  const s0 = src;
  const s1 = rows > 1 ? src + srcStep : src;
  const s2 = rows > 2 ? src + 2 * srcStep : src;
  const s3 = rows > 3 ? src + 3 * srcStep : src;
  let d = dst;
  for (let j = 0; j < n; j++) {
    const cj = coef + (<usize>j << 2);
    const c0: f32 = alpha * load<f32>(cj);
    const c1: f32 = rows > 1 ? alpha * load<f32>(cj + tpBytes) : 0;
    const c2: f32 = rows > 2 ? alpha * load<f32>(cj + 2 * tpBytes) : 0;
    const c3: f32 = rows > 3 ? alpha * load<f32>(cj + 3 * tpBytes) : 0;
    const v0 = f32x4.splat(c0), v1 = f32x4.splat(c1), v2 = f32x4.splat(c2), v3 = f32x4.splat(c3);
    let i = 0;
    for (; i + 4 <= hd; i += 4) {
      const o = <usize>i << 2;
      let a = v128.load(d + o);
      a = madd(v0, v128.load(s0 + o), a);
      a = madd(v1, v128.load(s1 + o), a);
      a = madd(v2, v128.load(s2 + o), a);
      a = madd(v3, v128.load(s3 + o), a);
      v128.store(d + o, a);
    }
    for (; i < hd; i++) {
      const o = <usize>i << 2;
      store<f32>(d + o, load<f32>(d + o) + c0 * load<f32>(s0 + o) + c1 * load<f32>(s1 + o) +
        c2 * load<f32>(s2 + o) + c3 * load<f32>(s3 + o));
    }
    d += strideBytes;
  }
}

/** Query rows processed together in the backward (their dk/dv updates share one pass). */
const BLOCK_ROWS: i32 = 4;

/**
 * Gradients of attentionForward: dq (overwritten), dk/dv (overwritten, summed over the query
 * heads of each kv head). P is rebuilt from lse, dS = P (dout·v - dout·out). Query rows go in
 * blocks of four so that each dk/dv row is read and written once per block, not once per row.
 */
export function attentionBackward(
  dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize, out: usize, lse: usize,
  T: i32, Hq: i32, Hkv: i32, hd: i32, scale: f32, window: i32,
): void {
  attentionBackwardGroups(dq, dk, dv, dout, q, k, v, out, lse, T, Hq, Hkv, hd, scale, window, 0, Hkv);
}

/**
 * attentionBackward for kv heads g0 .. g1-1: dq columns of their query heads, dk/dv columns of
 * those kv heads (zeroed here first, then summed over the group's query heads in order).
 *
 * dk/dv rows hold every kv head's columns, so two threads updating different heads of the same
 * rows over and over slowed each other by ~1.4x (cache lines pulled back and forth, though no
 * line is written by both). Where the scratch has room, a kv head's dk/dv are accumulated in
 * scratch as contiguous [T, hd] blocks and copied into their columns once at the end: the same
 * additions in the same order, only another destination address (so staged or not, and on one
 * thread or several, the results are the same bits; one thread runs as fast or slightly faster).
 */
export function attentionBackwardGroups(
  dq: usize, dk: usize, dv: usize, dout: usize, q: usize, k: usize, v: usize, out: usize, lse: usize,
  T: i32, Hq: i32, Hkv: i32, hd: i32, scale: f32, window: i32, g0: i32, g1: i32,
): void {
  if (Hkv <= 0 || Hq % Hkv != 0 || g0 < 0 || g1 > Hkv || window < 0) unreachable();
  const group = Hq / Hkv;
  const Tp = roundUp(T, 16);
  if ((<i64>hd * 2 + 2 * <i64>BLOCK_ROWS) * <i64>Tp * 4 > <i64>SCRATCH_BYTES) unreachable();
  const tpBytes = <usize>Tp << 2;
  const kt = scratchBase;
  const vt = kt + <usize>hd * tpBytes;
  const pr = vt + <usize>hd * tpBytes;
  const ds = pr + <usize>BLOCK_ROWS * tpBytes;
  const qStride = Hq * hd;
  const kvStride = Hkv * hd;
  const qRowBytes = <usize>qStride << 2;
  if (g1 <= g0) return;
  const headBytes = (<usize>T * <usize>hd) << 2;
  const stageK = ds + <usize>BLOCK_ROWS * tpBytes;
  const stageV = stageK + headBytes;
  const staged = stageV + headBytes <= scratchBase + <usize>SCRATCH_BYTES;
  const hdBytes = <usize>hd << 2;
  if (!staged) {
    const zeroBytes = <usize>((g1 - g0) * hd) << 2;
    for (let t = 0; t < T; t++) {
      const off = (<usize>t * <usize>kvStride + <usize>(g0 * hd)) << 2;
      memory.fill(dk + off, 0, zeroBytes);
      memory.fill(dv + off, 0, zeroBytes);
    }
  }
  for (let g = g0; g < g1; g++) {
    transposeHead(kt, k, T, Tp, kvStride, g * hd, hd);
    transposeHead(vt, v, T, Tp, kvStride, g * hd, hd);
    const colBytes = <usize>(g * hd) << 2;
    // Where this head's dk/dv accumulate: scratch blocks [T, hd], or their columns in place.
    const dkDst = staged ? stageK : dk + colBytes;
    const dvDst = staged ? stageV : dv + colBytes;
    const dstStride = staged ? hd : kvStride;
    if (staged) {
      memory.fill(stageK, 0, headBytes);
      memory.fill(stageV, 0, headBytes);
    }
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let t0 = 0; t0 < T; t0 += BLOCK_ROWS) {
        const rows = min(BLOCK_ROWS, T - t0);
        const nLast = t0 + rows; // keys needed by the block's last row
        const nbLast = roundUp(nLast, 4);
        // Keys from ja on: the block's first row sees the earliest key (0 without a window).
        const ja = firstKey(t0, window) & ~3;
        const jaBytes = <usize>ja << 2;
        for (let r = 0; r < rows; r++) {
          const t = t0 + r;
          const n = t + 1;
          const j0 = firstKey(t, window);
          const rowOff = (<usize>t * <usize>qStride + <usize>(h * hd)) << 2;
          const qrow = q + rowOff;
          const grow = dout + rowOff;
          const prow = pr + <usize>r * tpBytes;
          const dsrow = ds + <usize>r * tpBytes;
          const delta = dotRow(grow, out + rowOff, hd);
          const l = f32x4.splat(load<f32>(lse + ((<usize>h * <usize>T + <usize>t) << 2)));
          rowScores(prow + jaBytes, kt + jaBytes, Tp, qrow, hd, nbLast - ja, scale);
          rowScores(dsrow + jaBytes, vt + jaBytes, Tp, grow, hd, nbLast - ja, 1.0);
          const dl = f32x4.splat(delta);
          for (let j = ja; j < nbLast; j += 4) {
            const o = <usize>j << 2;
            const p = expv(f32x4.sub(v128.load(prow + o), l));
            v128.store(prow + o, p);
            v128.store(dsrow + o, f32x4.mul(p, f32x4.sub(v128.load(dsrow + o), dl)));
          }
          // Keys before the window and after t are masked: zero weight in the dk/dv updates.
          for (let j = ja; j < j0; j++) {
            store<f32>(prow + (<usize>j << 2), 0);
            store<f32>(dsrow + (<usize>j << 2), 0);
          }
          for (let j = n; j < nLast; j++) {
            store<f32>(prow + (<usize>j << 2), 0);
            store<f32>(dsrow + (<usize>j << 2), 0);
          }
          const kRows = k + colBytes + ((<usize>ja * <usize>kvStride) << 2);
          weightedRowSum(dq + rowOff, dsrow + jaBytes, kRows, kvStride, n - ja, hd, scale, false);
        }
        const blockOff = (<usize>t0 * <usize>qStride + <usize>(h * hd)) << 2;
        const dstOff = (<usize>ja * <usize>dstStride) << 2;
        blockRowUpdates(
          dkDst + dstOff, dstStride, ds + jaBytes, Tp, q + blockOff, qRowBytes, rows, nLast - ja, hd, scale,
        );
        blockRowUpdates(
          dvDst + dstOff, dstStride, pr + jaBytes, Tp, dout + blockOff, qRowBytes, rows, nLast - ja, hd, 1.0,
        );
      }
    }
    if (staged) {
      for (let t = 0; t < T; t++) {
        const off = (<usize>t * <usize>kvStride << 2) + colBytes;
        const src = <usize>t * hdBytes;
        memory.copy(dk + off, stageK + src, hdBytes);
        memory.copy(dv + off, stageV + src, hdBytes);
      }
    }
  }
}
