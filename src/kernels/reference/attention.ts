/**
 * Reference causal grouped-query attention for one sequence (see `attentionForward` in abi.ts),
 * optionally over a sliding window: with `window` > 0 query t sees keys j with
 * `t - window < j <= t` (j0 below), else every j <= t.
 *
 * Forward, per query head h and row t: `s_j = scale q_t·k_j` for j ≤ t, `lse_t = log Σ_j e^{s_j}`
 * (computed with max-subtraction), `out_t = Σ_j p_j v_j` with `p_j = e^{s_j - lse_t}`.
 * Backward rebuilds `p_j` from the saved lse (no [T, T] matrix is kept), then with
 * `Δ_t = dout_t·out_t`: `ds_j = p_j (dout_t·v_j - Δ_t)`, `dq_t += scale Σ_j ds_j k_j`,
 * `dk_j += scale ds_j q_t`, `dv_j += p_j dout_t` (dk/dv summed over the query heads of a kv head).
 * Internal sums are f64 (JS numbers).
 */
import type { Kernels } from "../abi.ts";
import type { Floats } from "./floats.ts";
import type { MemViews } from "./views.ts";

function dot(a: Floats, ao: number, b: Floats, bo: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
}

/** First key query t sees: 0 without a window. */
export function firstKey(t: number, window: number): number {
  if (!Number.isInteger(window) || window < 0) {
    throw new RangeError(`attention: window must be a non-negative integer, got ${window}`);
  }
  return window > 0 ? Math.max(0, t - window + 1) : 0;
}

function checkHeads(Hq: number, Hkv: number): number {
  if (Hkv <= 0 || Hq % Hkv !== 0) {
    throw new RangeError(`attention: Hq (${Hq}) must be a positive multiple of Hkv (${Hkv})`);
  }
  return Hq / Hkv;
}

/** Array-level attention forward: out[T, Hq*hd], lse[Hq, T]. */
export function attentionForwardArrays(
  out: Floats,
  lse: Floats,
  q: Floats,
  k: Floats,
  v: Floats,
  T: number,
  Hq: number,
  Hkv: number,
  hd: number,
  scale: number,
  window = 0,
): void {
  const group = checkHeads(Hq, Hkv);
  const qStride = Hq * hd;
  const kvStride = Hkv * hd;
  const s = new Float64Array(T);
  const acc = new Float64Array(hd);
  for (let h = 0; h < Hq; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = t * qStride + h * hd;
      const j0 = firstKey(t, window);
      let max = -Infinity;
      for (let j = j0; j <= t; j++) {
        s[j] = scale * dot(q, qo, k, j * kvStride + kvh * hd, hd);
        if (s[j] > max) max = s[j];
      }
      let sum = 0;
      for (let j = j0; j <= t; j++) sum += Math.exp(s[j] - max);
      const l = max + Math.log(sum);
      lse[h * T + t] = l;
      acc.fill(0);
      for (let j = j0; j <= t; j++) {
        const p = Math.exp(s[j] - l);
        const vo = j * kvStride + kvh * hd;
        for (let i = 0; i < hd; i++) acc[i] += p * v[vo + i];
      }
      for (let i = 0; i < hd; i++) out[qo + i] = acc[i];
    }
  }
}

/** Array-level attention backward: dq, dk, dv overwritten. */
export function attentionBackwardArrays(
  dq: Floats,
  dk: Floats,
  dv: Floats,
  dout: Floats,
  q: Floats,
  k: Floats,
  v: Floats,
  out: Floats,
  lse: Floats,
  T: number,
  Hq: number,
  Hkv: number,
  hd: number,
  scale: number,
  window = 0,
): void {
  const group = checkHeads(Hq, Hkv);
  const qStride = Hq * hd;
  const kvStride = Hkv * hd;
  dq.fill(0, 0, T * qStride);
  dk.fill(0, 0, T * kvStride);
  dv.fill(0, 0, T * kvStride);
  for (let h = 0; h < Hq; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = t * qStride + h * hd;
      const l = lse[h * T + t];
      const delta = dot(dout, qo, out, qo, hd);
      for (let j = firstKey(t, window); j <= t; j++) {
        const ko = j * kvStride + kvh * hd;
        const p = Math.exp(scale * dot(q, qo, k, ko, hd) - l);
        const ds = p * (dot(dout, qo, v, ko, hd) - delta);
        for (let i = 0; i < hd; i++) {
          dq[qo + i] += scale * ds * k[ko + i];
          dk[ko + i] += scale * ds * q[qo + i];
          dv[ko + i] += p * dout[qo + i];
        }
      }
    }
  }
}

/** Attention kernels over linear memory. */
export function attentionReference(
  m: MemViews,
): Pick<Kernels, "attentionForward" | "attentionBackward"> {
  return {
    attentionForward(out, lse, q, k, v, T, Hq, Hkv, hd, scale, window) {
      const nq = T * Hq * hd;
      const nkv = T * Hkv * hd;
      attentionForwardArrays(
        m.f32(out, nq),
        m.f32(lse, Hq * T),
        m.f32(q, nq),
        m.f32(k, nkv),
        m.f32(v, nkv),
        T,
        Hq,
        Hkv,
        hd,
        scale,
        window,
      );
    },
    attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, T, Hq, Hkv, hd, scale, window) {
      const nq = T * Hq * hd;
      const nkv = T * Hkv * hd;
      attentionBackwardArrays(
        m.f32(dq, nq),
        m.f32(dk, nkv),
        m.f32(dv, nkv),
        m.f32(dout, nq),
        m.f32(q, nq),
        m.f32(k, nkv),
        m.f32(v, nkv),
        m.f32(out, nq),
        m.f32(lse, Hq * T),
        T,
        Hq,
        Hkv,
        hd,
        scale,
        window,
      );
    },
  };
}
