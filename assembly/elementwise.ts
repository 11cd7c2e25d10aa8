// Element-wise kernels and the f64 sum of squares (see src/kernels/abi.ts).
import { addSquaresF64, expf, expv, hsumF64, madd } from "./vecmath";

/** out[n] = a[n] + b[n] (out may alias a or b). */
export function add(out: usize, a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}

/** y[n] += alpha * x[n]. */
export function axpy(y: usize, x: usize, alpha: f32, n: i32): void {
  const av = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(y + o, madd(av, v128.load(x + o), v128.load(y + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(y + o, load<f32>(y + o) + alpha * load<f32>(x + o));
  }
}

/** x[n] *= alpha. */
export function scale(x: usize, alpha: f32, n: i32): void {
  const av = f32x4.splat(alpha);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(x + o, f32x4.mul(v128.load(x + o), av));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(x + o, load<f32>(x + o) * alpha);
  }
}

/** out[T,N] += bias[N] broadcast over rows. */
export function addBias(out: usize, bias: usize, T: i32, N: i32): void {
  for (let t = 0; t < T; t++) add(out + ((<usize>t * <usize>N) << 2), out + ((<usize>t * <usize>N) << 2), bias, N);
}

/** Sum of squares of x[n], accumulated in f64 (products of f32 values are exact in f64). */
export function sumSquares(x: usize, n: i32): f64 {
  let acc0 = f64x2.splat(0);
  let acc1 = f64x2.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const o = <usize>i << 2;
    acc0 = addSquaresF64(acc0, v128.load(x + o));
    acc1 = addSquaresF64(acc1, v128.load(x + o, 16));
  }
  for (; i + 4 <= n; i += 4) acc0 = addSquaresF64(acc0, v128.load(x + (<usize>i << 2)));
  let s = hsumF64(f64x2.add(acc0, acc1));
  for (; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    s += v * v;
  }
  return s;
}

/** out[n] = exp(x[n]) with the kernels' vectorized exp (not in the ABI: tests and diagnostics). */
export function expArray(out: usize, x: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, expv(v128.load(x + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, expf(load<f32>(x + o)));
  }
}
