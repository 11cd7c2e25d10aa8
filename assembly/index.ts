// Entry point of the kernel module: re-exports every kernel family (see src/kernels/abi.ts for
// the contract each export follows). One source builds two modules: simd128 and relaxed-simd.
export { heapBase, init, scratchBytes } from "./setup";
export * from "./gemm";
export {
  int4Dequantize,
  int4GatherRows,
  int4MatmulGW,
  int4MatmulXWt,
  int4MatmulXWtBias,
  int4Quantize,
} from "./int4";
export * from "./norm";
export * from "./rope";
export * from "./swiglu";
export * from "./geglu";
export { attentionBackward, attentionForward } from "./attention";
export * from "./embedding";
export * from "./cross_entropy";
export * from "./elementwise";
export * from "./optim";
