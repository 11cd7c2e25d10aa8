// SwiGLU: out = silu(gate) * up and its backward (see src/kernels/abi.ts).
import { expConst, expf, expvWith } from "./vecmath";

/** out[n] = silu(gate[n]) * up[n]. */
export function swigluForward(out: usize, gate: usize, up: usize, n: i32): void {
  // The exp constants, loaded once (see expvWith); k12 is 1.0.
  const k0 = expConst(0), k1 = expConst(1), k2 = expConst(2), k3 = expConst(3), k4 = expConst(4);
  const k5 = expConst(5), k6 = expConst(6), k7 = expConst(7), k8 = expConst(8), k9 = expConst(9);
  const k10 = expConst(10), k11 = expConst(11), k12 = expConst(12);
  const one = k12;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const z = v128.load(gate + o);
    // z / (1 + e^-z): e^-z = +Infinity for very negative z gives z / Inf = -0, the right limit.
    const silu = f32x4.div(z, f32x4.add(one, expvWith(f32x4.neg(z), k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12)));
    v128.store(out + o, f32x4.mul(silu, v128.load(up + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const z = load<f32>(gate + o);
    store<f32>(out + o, z / (1.0 + expf(-z)) * load<f32>(up + o));
  }
}

/** dgate = dout·up·σ(z)(1 + z(1 - σ(z))), dup = dout·z·σ(z); element-wise, so aliasing is safe. */
export function swigluBackward(dgate: usize, dup: usize, dout: usize, gate: usize, up: usize, n: i32): void {
  // The exp constants, loaded once (see expvWith); k12 is 1.0.
  const k0 = expConst(0), k1 = expConst(1), k2 = expConst(2), k3 = expConst(3), k4 = expConst(4);
  const k5 = expConst(5), k6 = expConst(6), k7 = expConst(7), k8 = expConst(8), k9 = expConst(9);
  const k10 = expConst(10), k11 = expConst(11), k12 = expConst(12);
  const one = k12;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const z = v128.load(gate + o);
    const u = v128.load(up + o);
    const g = v128.load(dout + o);
    const sig = f32x4.div(one, f32x4.add(one, expvWith(f32x4.neg(z), k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12)));
    const zs = f32x4.mul(z, sig);
    // σ(1 + z(1 - σ)) = σ + zσ - zσ²
    const dsilu = f32x4.add(sig, f32x4.sub(zs, f32x4.mul(zs, sig)));
    v128.store(dgate + o, f32x4.mul(f32x4.mul(g, u), dsilu));
    v128.store(dup + o, f32x4.mul(g, zs));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const z = load<f32>(gate + o);
    const u = load<f32>(up + o);
    const g = load<f32>(dout + o);
    const sig: f32 = 1.0 / (1.0 + expf(-z));
    const zs = z * sig;
    store<f32>(dgate + o, g * u * (sig + (zs - zs * sig)));
    store<f32>(dup + o, g * zs);
  }
}
