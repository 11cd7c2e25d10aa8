/**
 * Reference f32 GEMM in the three orientations the trainer needs. Sums are accumulated in f64 and
 * rounded to f32 once, so this is the most accurate answer the ABI can hold: the wasm kernels are
 * tested against it with a tolerance relative to Σ|a||b|.
 */
import type { Kernels } from "../abi.ts";
import type { Ptr } from "../../runtime/ptr.ts";
import type { MemViews } from "./views.ts";

/** Strides (in elements) of an operand: element (i, k) lives at `i * row + k * col`. */
interface Strides {
  row: number;
  col: number;
}

/**
 * out[i, j] = (acc ? out[i, j] : 0) + alpha * Σ_k a(i, k) · b(k, j) over f32 arrays, where a and b
 * are read through `sa` / `sb` so one loop serves every orientation.
 */
export function matmulStrided(
  out: Float32Array,
  a: Float32Array,
  sa: Strides,
  b: Float32Array,
  sb: Strides,
  M: number,
  N: number,
  K: number,
  alpha: number,
  acc: number,
): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += a[i * sa.row + k * sa.col] * b[k * sb.row + j * sb.col];
      const prior = acc ? out[i * N + j] : 0;
      out[i * N + j] = prior + alpha * sum;
    }
  }
}

/** Reference implementations of `matmulABt`, `matmulAB` and `matmulAtB` over `m`'s memory. */
export function gemmReference(m: MemViews): Pick<Kernels, "matmulABt" | "matmulAB" | "matmulAtB"> {
  return {
    matmulABt(out: Ptr, a: Ptr, b: Ptr, M, N, K, alpha, acc) {
      // a [M,K] row-major; b [N,K]: element (k, j) of the right operand is b[j*K + k].
      matmulStrided(
        m.f32(out, M * N),
        m.f32(a, M * K),
        { row: K, col: 1 },
        m.f32(b, N * K),
        { row: 1, col: K },
        M,
        N,
        K,
        alpha,
        acc,
      );
    },
    matmulAB(out: Ptr, a: Ptr, b: Ptr, M, N, K, alpha, acc) {
      matmulStrided(
        m.f32(out, M * N),
        m.f32(a, M * K),
        { row: K, col: 1 },
        m.f32(b, K * N),
        { row: N, col: 1 },
        M,
        N,
        K,
        alpha,
        acc,
      );
    },
    matmulAtB(out: Ptr, a: Ptr, b: Ptr, M, N, K, alpha, acc) {
      // a [K,M]: element (i, k) of the left operand is a[k*M + i].
      matmulStrided(
        m.f32(out, M * N),
        m.f32(a, K * M),
        { row: 1, col: M },
        m.f32(b, K * N),
        { row: N, col: 1 },
        M,
        N,
        K,
        alpha,
        acc,
      );
    },
  };
}
