// f32 GEMM kernels (see src/kernels/abi.ts for the contract): thin entry points over the shared
// packed 6x8 register-tile engine in gemm_core.ts.

import { A_COLS, A_ROWS, B_KN, B_NK, gemm } from "./gemm_core";

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
