// GeGLU with the tanh GELU (Gemma's `gelu_pytorch_tanh`): out = gelu_tanh(gate) * up and its
// backward (see src/kernels/abi.ts).
//
// gelu_tanh(z) = z/2 (1 + tanh(u)), u = c (z + a z³), c = √(2/π), a = 0.044715. Since
// (1 + tanh(u)) / 2 = σ(2u), this is z σ(2u): one exp and one divide, the same shape as SiLU, and
// no cancellation in 1 + tanh(u) for negative u. Derivative: σ(2u) + z σ(2u)(1 - σ(2u)) 2u',
// u' = c (1 + 3a z²).
import { expConst, expf, expvWith } from "./vecmath";

const C2: f32 = 1.5957691216057308; // 2 √(2/π)
const A: f32 = 0.044715;
const A3: f32 = 0.134145; // 3a

// C2, A, A3 splatted, loaded once per call (a v128.const is rebuilt at every use; see vecmath.ts).
const GELU_TABLE = memory.data<f32>([C2, C2, C2, C2, A, A, A, A, A3, A3, A3, A3], 16);

/** out[n] = gelu_tanh(gate[n]) * up[n]. */
export function gegluTanhForward(out: usize, gate: usize, up: usize, n: i32): void {
  // The exp constants, loaded once (see expvWith); k12 is 1.0.
  const k0 = expConst(0), k1 = expConst(1), k2 = expConst(2), k3 = expConst(3), k4 = expConst(4);
  const k5 = expConst(5), k6 = expConst(6), k7 = expConst(7), k8 = expConst(8), k9 = expConst(9);
  const k10 = expConst(10), k11 = expConst(11), k12 = expConst(12);
  const one = k12;
  const c2 = v128.load(GELU_TABLE);
  const a = v128.load(GELU_TABLE, 16);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const z = v128.load(gate + o);
    // 2u = 2c z (1 + a z²); e^-2u = +Infinity for very negative z gives z / Inf = -0.
    const u2 = f32x4.mul(f32x4.mul(c2, z), f32x4.add(one, f32x4.mul(a, f32x4.mul(z, z))));
    const g = f32x4.div(z, f32x4.add(one, expvWith(f32x4.neg(u2), k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12)));
    v128.store(out + o, f32x4.mul(g, v128.load(up + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const z = load<f32>(gate + o);
    const u2 = C2 * z * (1.0 + A * (z * z));
    store<f32>(out + o, z / (1.0 + expf(-u2)) * load<f32>(up + o));
  }
}

/** dgate = dout·up·gelu_tanh'(z), dup = dout·gelu_tanh(z); element-wise, so aliasing is safe. */
export function gegluTanhBackward(dgate: usize, dup: usize, dout: usize, gate: usize, up: usize, n: i32): void {
  // The exp constants, loaded once (see expvWith); k12 is 1.0.
  const k0 = expConst(0), k1 = expConst(1), k2 = expConst(2), k3 = expConst(3), k4 = expConst(4);
  const k5 = expConst(5), k6 = expConst(6), k7 = expConst(7), k8 = expConst(8), k9 = expConst(9);
  const k10 = expConst(10), k11 = expConst(11), k12 = expConst(12);
  const one = k12;
  const c2 = v128.load(GELU_TABLE);
  const a = v128.load(GELU_TABLE, 16);
  const a3 = v128.load(GELU_TABLE, 32);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const z = v128.load(gate + o);
    const u = v128.load(up + o);
    const g = v128.load(dout + o);
    const zz = f32x4.mul(z, z);
    const u2 = f32x4.mul(f32x4.mul(c2, z), f32x4.add(one, f32x4.mul(a, zz)));
    const sig = f32x4.div(one, f32x4.add(one, expvWith(f32x4.neg(u2), k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10, k11, k12)));
    const zs = f32x4.mul(z, sig);
    // σ + zσ(1 - σ)·2u', 2u' = 2c (1 + 3a z²)
    const du2 = f32x4.mul(c2, f32x4.add(one, f32x4.mul(a3, zz)));
    const dgelu = f32x4.add(sig, f32x4.mul(f32x4.sub(zs, f32x4.mul(zs, sig)), du2));
    v128.store(dgate + o, f32x4.mul(f32x4.mul(g, u), dgelu));
    v128.store(dup + o, f32x4.mul(g, zs));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const z = load<f32>(gate + o);
    const u = load<f32>(up + o);
    const g = load<f32>(dout + o);
    const zz = z * z;
    const u2 = C2 * z * (1.0 + A * zz);
    const sig: f32 = 1.0 / (1.0 + expf(-u2));
    const zs = z * sig;
    const du2 = C2 * (1.0 + A3 * zz);
    store<f32>(dgate + o, g * u * (sig + (zs - zs * sig) * du2));
    store<f32>(dup + o, g * zs);
  }
}
