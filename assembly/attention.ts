// attention kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_attention: i32 = 0;
