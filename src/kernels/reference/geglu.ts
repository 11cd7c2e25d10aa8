/**
 * Reference GeGLU with the tanh GELU (`gelu_pytorch_tanh`): `out = gelu_tanh(gate) * up`,
 * `gelu_tanh(z) = z/2 (1 + tanh(√(2/π) (z + 0.044715 z³)))`, written in that textbook form
 * (the wasm kernel uses the identity `(1 + tanh u) / 2 = σ(2u)`). Backward:
 * `gelu_tanh'(z) = (1 + tanh u)/2 + z/2 (1 - tanh² u) u'`, `u' = √(2/π) (1 + 3·0.044715 z²)`.
 */
import type { Kernels } from "../abi.ts";
import type { Floats } from "./floats.ts";
import type { MemViews } from "./views.ts";

const C = Math.sqrt(2 / Math.PI);
const A = 0.044715;

/** gelu_tanh(z) in f64. */
export function geluTanh(z: number): number {
  return 0.5 * z * (1 + Math.tanh(C * (z + A * z * z * z)));
}

/** d gelu_tanh / dz in f64. */
export function geluTanhGrad(z: number): number {
  const t = Math.tanh(C * (z + A * z * z * z));
  return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * C * (1 + 3 * A * z * z);
}

/** Array-level GeGLU-tanh forward. */
export function gegluTanhForwardArrays(out: Floats, gate: Floats, up: Floats, n: number): void {
  for (let i = 0; i < n; i++) out[i] = geluTanh(gate[i]) * up[i];
}

/** Array-level GeGLU-tanh backward (element-wise, so dgate/dup may alias gate/up/dout). */
export function gegluTanhBackwardArrays(
  dgate: Floats,
  dup: Floats,
  dout: Floats,
  gate: Floats,
  up: Floats,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const z = gate[i];
    const u = up[i];
    const g = dout[i];
    dgate[i] = g * u * geluTanhGrad(z);
    dup[i] = g * geluTanh(z);
  }
}

/** GeGLU-tanh kernels over linear memory. */
export function gegluReference(
  m: MemViews,
): Pick<Kernels, "gegluTanhForward" | "gegluTanhBackward"> {
  return {
    gegluTanhForward(out, gate, up, n) {
      gegluTanhForwardArrays(m.f32(out, n), m.f32(gate, n), m.f32(up, n), n);
    },
    gegluTanhBackward(dgate, dup, dout, gate, up, n) {
      gegluTanhBackwardArrays(
        m.f32(dgate, n),
        m.f32(dup, n),
        m.f32(dout, n),
        m.f32(gate, n),
        m.f32(up, n),
        n,
      );
    },
  };
}
