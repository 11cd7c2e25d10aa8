// cross_entropy kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_cross_entropy: i32 = 0;
