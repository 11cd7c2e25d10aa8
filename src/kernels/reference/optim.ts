/** Reference optimizer steps: SGD with weight decay and AdamW (decoupled decay, bias correction). */
import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

/** Optimizer kernels over linear memory. */
export function optimReference(m: MemViews): Pick<Kernels, "sgdStep" | "adamwStep"> {
  return {
    sgdStep(p, g, n, lr, wd) {
      const pv = m.f32(p, n), gv = m.f32(g, n);
      for (let i = 0; i < n; i++) pv[i] -= lr * (gv[i] + wd * pv[i]);
    },
    adamwStep(p, g, mp, vp, n, lr, b1, b2, eps, wd, bc1, bc2) {
      const pv = m.f32(p, n), gv = m.f32(g, n), mv = m.f32(mp, n), vv = m.f32(vp, n);
      for (let i = 0; i < n; i++) {
        const gi = gv[i];
        mv[i] = b1 * mv[i] + (1 - b1) * gi;
        vv[i] = b2 * vv[i] + (1 - b2) * gi * gi;
        const mHat = mv[i] / bc1;
        const vHat = vv[i] / bc2;
        pv[i] -= lr * (wd * pv[i] + mHat / (Math.sqrt(vHat) + eps));
      }
    },
  };
}
