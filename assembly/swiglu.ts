// swiglu kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_swiglu: i32 = 0;
