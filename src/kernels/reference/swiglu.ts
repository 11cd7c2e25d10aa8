/**
 * Reference SwiGLU: `out = silu(gate) * up`, `silu(z) = z σ(z)`.
 * Backward: `silu'(z) = σ(z) (1 + z (1 - σ(z)))`.
 */
import type { Kernels } from "../abi.ts";
import type { Floats } from "./floats.ts";
import type { MemViews } from "./views.ts";

/** Array-level SwiGLU forward. */
export function swigluForwardArrays(out: Floats, gate: Floats, up: Floats, n: number): void {
  for (let i = 0; i < n; i++) {
    const z = gate[i];
    out[i] = z / (1 + Math.exp(-z)) * up[i];
  }
}

/** Array-level SwiGLU backward (element-wise, so dgate/dup may alias gate/up/dout). */
export function swigluBackwardArrays(
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
    const sig = 1 / (1 + Math.exp(-z));
    dgate[i] = g * u * sig * (1 + z * (1 - sig));
    dup[i] = g * z * sig;
  }
}

/** SwiGLU kernels over linear memory. */
export function swigluReference(m: MemViews): Pick<Kernels, "swigluForward" | "swigluBackward"> {
  return {
    swigluForward(out, gate, up, n) {
      swigluForwardArrays(m.f32(out, n), m.f32(gate, n), m.f32(up, n), n);
    },
    swigluBackward(dgate, dup, dout, gate, up, n) {
      swigluBackwardArrays(
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
