// optim kernels: to be written (see src/kernels/abi.ts).
export const __placeholder_optim: i32 = 0;
