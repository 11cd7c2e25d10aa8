// RMSNorm forward and backward (see src/kernels/abi.ts and src/kernels/reference/norm.ts for the
// derivation). Row sums (sum of squares, and c = Σ dout·w·x in the backward) accumulate in f64:
// the products of f32 values are exact in f64, so the only error is the f64 summation.
import { addLowProductsF64, addLowSquaresF64, addProductsF64, addSquaresF64, hsumF64, madd } from "./vecmath";

/** out[T,D] = x * rstd * w, rstd[t] = 1/sqrt(mean(x[t]^2) + eps). */
export function rmsnormForward(out: usize, rstd: usize, x: usize, w: usize, T: i32, D: i32, eps: f64): void {
  const rowBytes = <usize>D << 2;
  for (let t = 0; t < T; t++) {
    const xr = x + <usize>t * rowBytes;
    const or = out + <usize>t * rowBytes;
    // Four f64 accumulators, so that the adds of one row do not wait on each other.
    let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
    let i = 0;
    for (; i + 8 <= D; i += 8) {
      const o = <usize>i << 2;
      const v0 = v128.load(xr + o), v1 = v128.load(xr + o, 16);
      a0 = addLowSquaresF64(a0, v0);
      a1 = addLowSquaresF64(a1, v128.shuffle<f32>(v0, v0, 2, 3, 0, 1));
      a2 = addLowSquaresF64(a2, v1);
      a3 = addLowSquaresF64(a3, v128.shuffle<f32>(v1, v1, 2, 3, 0, 1));
    }
    for (; i + 4 <= D; i += 4) a0 = addSquaresF64(a0, v128.load(xr + (<usize>i << 2)));
    let ss = hsumF64(f64x2.add(f64x2.add(a0, a1), f64x2.add(a2, a3)));
    for (; i < D; i++) {
      const v = <f64>load<f32>(xr + (<usize>i << 2));
      ss += v * v;
    }
    const r = <f32>(1.0 / Math.sqrt(ss / <f64>D + eps));
    store<f32>(rstd + (<usize>t << 2), r);
    const rv = f32x4.splat(r);
    i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      v128.store(or + o, f32x4.mul(f32x4.mul(v128.load(xr + o), rv), v128.load(w + o)));
    }
    for (; i < D; i++) {
      const o = <usize>i << 2;
      store<f32>(or + o, load<f32>(xr + o) * r * load<f32>(w + o));
    }
  }
}

/**
 * dx (+)= r (dout·w - x r² c / D) with c = Σ dout·w·x; dw += Σ_t dout·x·r when dw != 0.
 */
export function rmsnormBackward(
  dx: usize, dw: usize, dout: usize, x: usize, w: usize, rstd: usize, T: i32, D: i32, acc: i32,
): void {
  const rowBytes = <usize>D << 2;
  for (let t = 0; t < T; t++) {
    const xr = x + <usize>t * rowBytes;
    const gr = dout + <usize>t * rowBytes;
    const dr = dx + <usize>t * rowBytes;
    const r = load<f32>(rstd + (<usize>t << 2));
    // Four f64 accumulators, as in the forward.
    let c0 = f64x2.splat(0), c1 = f64x2.splat(0), c2 = f64x2.splat(0), c3 = f64x2.splat(0);
    let i = 0;
    for (; i + 8 <= D; i += 8) {
      const o = <usize>i << 2;
      const p0 = f32x4.mul(v128.load(gr + o), v128.load(w + o));
      const p1 = f32x4.mul(v128.load(gr + o, 16), v128.load(w + o, 16));
      const x0 = v128.load(xr + o), x1 = v128.load(xr + o, 16);
      c0 = addLowProductsF64(c0, p0, x0);
      c1 = addLowProductsF64(c1, v128.shuffle<f32>(p0, p0, 2, 3, 0, 1), v128.shuffle<f32>(x0, x0, 2, 3, 0, 1));
      c2 = addLowProductsF64(c2, p1, x1);
      c3 = addLowProductsF64(c3, v128.shuffle<f32>(p1, p1, 2, 3, 0, 1), v128.shuffle<f32>(x1, x1, 2, 3, 0, 1));
    }
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      c0 = addProductsF64(c0, f32x4.mul(v128.load(gr + o), v128.load(w + o)), v128.load(xr + o));
    }
    let c = hsumF64(f64x2.add(f64x2.add(c0, c1), f64x2.add(c2, c3)));
    for (; i < D; i++) {
      const o = <usize>i << 2;
      c += <f64>(load<f32>(gr + o) * load<f32>(w + o)) * <f64>load<f32>(xr + o);
    }
    const k = <f32>(<f64>r * <f64>r * c / <f64>D);
    const rv = f32x4.splat(r);
    const nkv = f32x4.splat(-k);
    i = 0;
    for (; i + 4 <= D; i += 4) {
      const o = <usize>i << 2;
      const gw = f32x4.mul(v128.load(gr + o), v128.load(w + o));
      let g = f32x4.mul(rv, madd(v128.load(xr + o), nkv, gw));
      if (acc) g = f32x4.add(g, v128.load(dr + o));
      v128.store(dr + o, g);
    }
    for (; i < D; i++) {
      const o = <usize>i << 2;
      let g = r * (load<f32>(gr + o) * load<f32>(w + o) - load<f32>(xr + o) * k);
      if (acc) g += load<f32>(dr + o);
      store<f32>(dr + o, g);
    }
    if (dw != 0) {
      i = 0;
      for (; i + 4 <= D; i += 4) {
        const o = <usize>i << 2;
        v128.store(dw + o, madd(f32x4.mul(v128.load(gr + o), v128.load(xr + o)), rv, v128.load(dw + o)));
      }
      for (; i < D; i++) {
        const o = <usize>i << 2;
        store<f32>(dw + o, load<f32>(dw + o) + load<f32>(gr + o) * load<f32>(xr + o) * r);
      }
    }
  }
}
