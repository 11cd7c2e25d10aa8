// embedding kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_embedding: i32 = 0;
