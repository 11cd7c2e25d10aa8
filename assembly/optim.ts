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
 */
export function adamwStep(
  p: usize, g: usize, m: usize, v: usize, n: i32,
  lr: f32, b1: f32, b2: f32, eps: f32, wd: f32, bc1: f32, bc2: f32,
): void {
  const b1v = f32x4.splat(b1), c1v = f32x4.splat(1.0 - b1);
  const b2v = f32x4.splat(b2), c2v = f32x4.splat(1.0 - b2);
  const bc1v = f32x4.splat(bc1), bc2v = f32x4.splat(bc2);
  const epsv = f32x4.splat(eps), wdv = f32x4.splat(wd), nlr = f32x4.splat(-lr);
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
    const mi = b1 * load<f32>(m + o) + (1.0 - b1) * gi;
    const vi = b2 * load<f32>(v + o) + (1.0 - b2) * gi * gi;
    store<f32>(m + o, mi);
    store<f32>(v + o, vi);
    const pi = load<f32>(p + o);
    store<f32>(p + o, pi - lr * (wd * pi + (mi / bc1) / (Mathf.sqrt(vi / bc2) + eps)));
  }
}
