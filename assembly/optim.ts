// Optimizer steps over flat f32 parameter, gradient and state arrays (see src/kernels/abi.ts).
import { madd } from "./vecmath";

/** p -= lr * (g + wd * p). */
export function sgdStep(p: usize, g: usize, n: i32, lr: f32, wd: f32): void {
  const nlr = f32x4.splat(-lr);
  const wdv = f32x4.splat(wd);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const pv = v128.load(p + o);
    v128.store(p + o, madd(nlr, madd(wdv, pv, v128.load(g + o)), pv));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const pv = load<f32>(p + o);
    store<f32>(p + o, pv - lr * (load<f32>(g + o) + wd * pv));
  }
}

/**
 * AdamW: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g²;
 * p -= lr (wd p + (m / bc1) / (sqrt(v / bc2) + eps)).
 * Hyper-parameters arrive as f64 so that 1 - b1 and 1 - b2 are formed before rounding to f32
 * (1 - f32(0.999) is 1.3e-5 away from 0.001); the update itself runs in f32.
 */
export function adamwStep(
  p: usize, g: usize, m: usize, v: usize, n: i32,
  lr: f64, b1: f64, b2: f64, eps: f64, wd: f64, bc1: f64, bc2: f64,
): void {
  const b1f = <f32>b1, c1f = <f32>(1.0 - b1);
  const b2f = <f32>b2, c2f = <f32>(1.0 - b2);
  const bc1f = <f32>bc1, bc2f = <f32>bc2, epsf = <f32>eps, wdf = <f32>wd, lrf = <f32>lr;
  const b1v = f32x4.splat(b1f), c1v = f32x4.splat(c1f);
  const b2v = f32x4.splat(b2f), c2v = f32x4.splat(c2f);
  const bc1v = f32x4.splat(bc1f), bc2v = f32x4.splat(bc2f);
  const epsv = f32x4.splat(epsf), wdv = f32x4.splat(wdf), nlr = f32x4.splat(-lrf);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const gv = v128.load(g + o);
    const mv = madd(b1v, v128.load(m + o), f32x4.mul(c1v, gv));
    const vv = madd(b2v, v128.load(v + o), f32x4.mul(c2v, f32x4.mul(gv, gv)));
    v128.store(m + o, mv);
    v128.store(v + o, vv);
    const pv = v128.load(p + o);
    const upd = f32x4.div(f32x4.div(mv, bc1v), f32x4.add(f32x4.sqrt(f32x4.div(vv, bc2v)), epsv));
    v128.store(p + o, madd(nlr, madd(wdv, pv, upd), pv));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const mi = b1f * load<f32>(m + o) + c1f * gi;
    const vi = b2f * load<f32>(v + o) + c2f * (gi * gi);
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const pi = load<f32>(p + o);
    store<f32>(p + o, pi - lrf * (wdf * pi + (mi / bc1f) / (Mathf.sqrt(vi / bc2f) + epsf)));
  }
}
