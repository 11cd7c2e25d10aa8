// norm kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_norm: i32 = 0;
