// elementwise kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_elementwise: i32 = 0;
