/**
 * Reference RMSNorm (HF `Qwen2RMSNorm` / `LlamaRMSNorm`): `out = x * rstd * w` with
 * `rstd = 1 / sqrt(mean(x²) + eps)` per row.
 *
 * Backward, derived by hand: with `r = rstd`, `y_j = x_j r w_j` and `∂r/∂x_j = -r³ x_j / D`,
 *   `dx_j = r (dout_j w_j - x_j r² c / D)`, `c = Σ_i dout_i w_i x_i`,
 *   `dw_j += Σ_t dout_tj x_tj r_t`.
 * Row sums are accumulated in f64 (JS numbers).
 */
import type { Kernels } from "../abi.ts";
import type { Floats } from "./floats.ts";
import type { MemViews } from "./views.ts";

/** Array-level RMSNorm forward: out[T,D], rstd[T] from x[T,D], w[D]. */
export function rmsnormForwardArrays(
  out: Floats,
  rstd: Floats,
  x: Floats,
  w: Floats,
  T: number,
  D: number,
  eps: number,
): void {
  for (let t = 0; t < T; t++) {
    const o = t * D;
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[o + i] * x[o + i];
    const r = 1 / Math.sqrt(ss / D + eps);
    rstd[t] = r;
    // Read rstd back so f32 callers use the stored (rounded) value, as the backward will.
    const rs = rstd[t];
    for (let i = 0; i < D; i++) out[o + i] = x[o + i] * rs * w[i];
  }
}

/** Array-level RMSNorm backward: dx (+)= input gradient; dw += weight gradient when given. */
export function rmsnormBackwardArrays(
  dx: Floats,
  dw: Floats | null,
  dout: Floats,
  x: Floats,
  w: Floats,
  rstd: Floats,
  T: number,
  D: number,
  acc: number,
): void {
  for (let t = 0; t < T; t++) {
    const o = t * D;
    const r = rstd[t];
    let c = 0;
    for (let i = 0; i < D; i++) c += dout[o + i] * w[i] * x[o + i];
    const k = r * r * c / D;
    for (let i = 0; i < D; i++) {
      const g = r * (dout[o + i] * w[i] - x[o + i] * k);
      dx[o + i] = acc ? dx[o + i] + g : g;
    }
    if (dw) { for (let i = 0; i < D; i++) dw[i] += dout[o + i] * x[o + i] * r; }
  }
}

/** RMSNorm kernels over linear memory. */
export function normReference(m: MemViews): Pick<Kernels, "rmsnormForward" | "rmsnormBackward"> {
  return {
    rmsnormForward(out, rstd, x, w, T, D, eps) {
      rmsnormForwardArrays(
        m.f32(out, T * D),
        m.f32(rstd, T),
        m.f32(x, T * D),
        m.f32(w, D),
        T,
        D,
        eps,
      );
    },
    rmsnormBackward(dx, dw, dout, x, w, rstd, T, D, acc) {
      rmsnormBackwardArrays(
        m.f32(dx, T * D),
        dw ? m.f32(dw, D) : null,
        m.f32(dout, T * D),
        m.f32(x, T * D),
        m.f32(w, D),
        m.f32(rstd, T),
        T,
        D,
        acc,
      );
    },
  };
}
