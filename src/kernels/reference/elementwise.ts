/** Reference element-wise kernels and the f64 sum of squares. */
import type { Kernels } from "../abi.ts";
import type { MemViews } from "./views.ts";

/** Element-wise kernels over linear memory. */
export function elementwiseReference(
  m: MemViews,
): Pick<Kernels, "add" | "axpy" | "scale" | "addBias" | "sumSquares"> {
  return {
    add(out, a, b, n) {
      const o = m.f32(out, n), av = m.f32(a, n), bv = m.f32(b, n);
      for (let i = 0; i < n; i++) o[i] = av[i] + bv[i];
    },
    axpy(y, x, alpha, n) {
      const yv = m.f32(y, n), xv = m.f32(x, n);
      // Math.fround: alpha crosses the ABI as f32, as in the wasm build.
      const a = Math.fround(alpha);
      for (let i = 0; i < n; i++) yv[i] += a * xv[i];
    },
    scale(x, alpha, n) {
      const xv = m.f32(x, n);
      const a = Math.fround(alpha);
      for (let i = 0; i < n; i++) xv[i] *= a;
    },
    addBias(out, bias, T, N) {
      const o = m.f32(out, T * N), b = m.f32(bias, N);
      for (let t = 0; t < T; t++) for (let i = 0; i < N; i++) o[t * N + i] += b[i];
    },
    sumSquares(x, n) {
      const xv = m.f32(x, n);
      let s = 0;
      for (let i = 0; i < n; i++) s += xv[i] * xv[i];
      return s;
    },
  };
}
