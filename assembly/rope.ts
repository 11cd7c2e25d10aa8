// Rotary position embedding, "rotate_half" form, in place (see src/kernels/abi.ts).
import { madd } from "./vecmath";

/**
 * For each token t, head h and i < hd/2: (x1, x2) = (x[i], x[i+hd/2]) ->
 * (x1 c - x2 s, x2 c + x1 s) with c = cos[t,i], s = ±sin[t,i] (minus when `inverse`).
 */
export function ropeApply(x: usize, cos: usize, sin: usize, T: i32, H: i32, hd: i32, inverse: i32): void {
  const half = hd >> 1;
  const halfBytes = <usize>half << 2;
  const sign: f32 = inverse ? -1.0 : 1.0;
  const signv = f32x4.splat(sign);
  for (let t = 0; t < T; t++) {
    const ct = cos + <usize>t * halfBytes;
    const st = sin + <usize>t * halfBytes;
    for (let h = 0; h < H; h++) {
      const x1p = x + ((<usize>t * <usize>H + <usize>h) * <usize>hd << 2);
      const x2p = x1p + halfBytes;
      let i = 0;
      for (; i + 4 <= half; i += 4) {
        const o = <usize>i << 2;
        const c = v128.load(ct + o);
        const s = f32x4.mul(v128.load(st + o), signv);
        const x1 = v128.load(x1p + o);
        const x2 = v128.load(x2p + o);
        v128.store(x1p + o, madd(x1, c, f32x4.neg(f32x4.mul(x2, s))));
        v128.store(x2p + o, madd(x2, c, f32x4.mul(x1, s)));
      }
      for (; i < half; i++) {
        const o = <usize>i << 2;
        const c = load<f32>(ct + o);
        const s = load<f32>(st + o) * sign;
        const x1 = load<f32>(x1p + o);
        const x2 = load<f32>(x2p + o);
        store<f32>(x1p + o, x1 * c - x2 * s);
        store<f32>(x2p + o, x2 * c + x1 * s);
      }
    }
  }
}
