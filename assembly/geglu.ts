// GeGLU with the tanh GELU (Gemma's `gelu_pytorch_tanh`): out = gelu_tanh(gate) * up and its
// backward (see src/kernels/abi.ts).
//
// gelu_tanh(z) = z/2 (1 + tanh(u)), u = c (z + a z³), c = √(2/π), a = 0.044715. Since
// (1 + tanh(u)) / 2 = σ(2u), this is z σ(2u): one exp and one divide, the same shape as SiLU, and
// no cancellation in 1 + tanh(u) for negative u. Derivative: σ(2u) + z σ(2u)(1 - σ(2u)) 2u',
// u' = c (1 + 3a z²).
import { expf, expv } from "./vecmath";

const C2: f32 = 1.5957691216057308; // 2 √(2/π)
const A: f32 = 0.044715;
const A3: f32 = 0.134145; // 3a

/** out[n] = gelu_tanh(gate[n]) * up[n]. */
export function gegluTanhForward(out: usize, gate: usize, up: usize, n: i32): void {
  const one = f32x4.splat(1.0);
  const c2 = f32x4.splat(C2);
  const a = f32x4.splat(A);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const z = v128.load(gate + o);
    // 2u = 2c z (1 + a z²); e^-2u = +Infinity for very negative z gives z / Inf = -0.
    const u2 = f32x4.mul(f32x4.mul(c2, z), f32x4.add(one, f32x4.mul(a, f32x4.mul(z, z))));
    const g = f32x4.div(z, f32x4.add(one, expv(f32x4.neg(u2))));
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
  const one = f32x4.splat(1.0);
  const c2 = f32x4.splat(C2);
  const a = f32x4.splat(A);
  const a3 = f32x4.splat(A3);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const z = v128.load(gate + o);
    const u = v128.load(up + o);
    const g = v128.load(dout + o);
    const zz = f32x4.mul(z, z);
    const u2 = f32x4.mul(f32x4.mul(c2, z), f32x4.add(one, f32x4.mul(a, zz)));
    const sig = f32x4.div(one, f32x4.add(one, expv(f32x4.neg(u2))));
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
