// f32 GEMM kernels (see src/kernels/abi.ts for the contract): thin entry points over the shared
// packed 6x8 register-tile engine in gemm_core.ts.

import {
  A_COLS,
  A_ROWS,
  B_KN,
  B_NK,
  EPI_ADD_RES,
  EPI_BIAS,
  EPI_INTO_RES,
  gemm,
  gemmStrided,
} from "./gemm_core";

/** out[M,N] (+)= alpha * a[M,K] · b[N,K]ᵀ. */
export function matmulABt(
  out: usize,
  a: usize,
  b: usize,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  acc: i32,
): void {
  gemm(out, a, b, M, N, K, alpha, acc, A_ROWS, B_NK);
}

/**
 * out[M,N] = a[M,K] · b[N,K]ᵀ + bias[N]: matmulABt then addBias, the bias added to each tile as
 * it is finished instead of in a second pass over out.
 */
export function matmulABtBias(
  out: usize,
  a: usize,
  b: usize,
  bias: usize,
  M: i32,
  N: i32,
  K: i32,
): void {
  gemmStrided(out, <usize>N << 2, a, b, M, N, K, 1, 0, A_ROWS, B_NK, bias, EPI_BIAS);
}

/**
 * matmulABt, then the residual: `into` 0 adds res[M,N] into out (add(out, out, res)), `into` 1
 * adds out into res (add(res, res, out)) and out keeps the product. Each tile gets its add as soon
 * as it is finished instead of in a second pass over out.
 */
export function matmulABtResidual(
  out: usize,
  res: usize,
  a: usize,
  b: usize,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  acc: i32,
  into: i32,
): void {
  const mode = into ? EPI_INTO_RES : EPI_ADD_RES;
  gemmStrided(out, <usize>N << 2, a, b, M, N, K, alpha, acc, A_ROWS, B_NK, res, mode);
}

/** out[M,N] (+)= alpha * a[M,K] · b[K,N]. */
export function matmulAB(
  out: usize,
  a: usize,
  b: usize,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  acc: i32,
): void {
  gemm(out, a, b, M, N, K, alpha, acc, A_ROWS, B_KN);
}

/** out[M,N] (+)= alpha * a[K,M]ᵀ · b[K,N]. */
export function matmulAtB(
  out: usize,
  a: usize,
  b: usize,
  M: i32,
  N: i32,
  K: i32,
  alpha: f32,
  acc: i32,
): void {
  gemm(out, a, b, M, N, K, alpha, acc, A_COLS, B_KN);
}
