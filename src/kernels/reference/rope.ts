/**
 * Reference rotary position embedding, HF "rotate_half" (non-interleaved) form: within each head
 * the pair `(x[i], x[i + hd/2])` is rotated by the angle whose cos/sin are `cos[t,i]`, `sin[t,i]`.
 * The inverse rotation (by -angle) is the exact backward of the forward one.
 */
import type { Kernels } from "../abi.ts";
import type { Floats } from "./floats.ts";
import type { MemViews } from "./views.ts";

/** Array-level RoPE, in place on x[T, H*hd]; cos/sin are [T, hd/2]. */
export function ropeApplyArrays(
  x: Floats,
  cos: Floats,
  sin: Floats,
  T: number,
  H: number,
  hd: number,
  inverse: number,
): void {
  const half = hd >> 1;
  const sign = inverse ? -1 : 1;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const o = (t * H + h) * hd;
      for (let i = 0; i < half; i++) {
        const c = cos[t * half + i];
        const s = sign * sin[t * half + i];
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

/** RoPE kernel over linear memory. */
export function ropeReference(m: MemViews): Pick<Kernels, "ropeApply"> {
  return {
    ropeApply(x, cos, sin, T, H, hd, inverse) {
      if (hd % 2 !== 0) throw new RangeError(`ropeApply: head_dim ${hd} must be even`);
      const half = hd >> 1;
      ropeApplyArrays(
        m.f32(x, T * H * hd),
        m.f32(cos, T * half),
        m.f32(sin, T * half),
        T,
        H,
        hd,
        inverse,
      );
    },
  };
}
