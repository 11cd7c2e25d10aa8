// gemm kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_gemm: i32 = 0;
