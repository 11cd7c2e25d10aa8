// Entry point of the multi-threaded kernel builds (wasm/kernels.{simd,relaxed}-threads.wasm):
// every kernel of index.ts over an imported SHARED memory, plus the head-range attention entry
// points workers use (parallel.ts). src/kernels/parallel.ts splits calls across workers.
export * from "./index";
export * from "./parallel";
