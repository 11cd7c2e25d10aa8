// int4 kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_int4: i32 = 0;
