// rope kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_rope: i32 = 0;
