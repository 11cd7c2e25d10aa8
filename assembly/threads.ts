// Entry point of the multi-threaded kernel builds (wasm/kernels.{simd,relaxed}-threads.wasm):
// every kernel of index.ts over an imported SHARED memory, plus the head-range attention entry
// points workers use (attention.ts). src/kernels/parallel.ts splits calls across workers.
export * from "./index";
export { attentionBackwardGroups, attentionForwardHeads } from "./attention";
