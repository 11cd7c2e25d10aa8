/**
 * slimtune: fine-tune LoRA adapters of real LLMs (Qwen2.5, Qwen3, Llama 3.x, SmolLM2, Gemma 3)
 * with 4-bit base weights and a small, planned memory budget, in any JavaScript runtime with
 * WebAssembly SIMD.
 *
 * Everything exported here is portable (web-standard APIs only): files and network come in
 * through byte sources, and the kernels can be given as an already compiled WebAssembly.Module.
 *
 * @example
 * ```ts
 * import { createRandomWeightStore, createTrainingSession, loadKernels, tinyConfig } from "./mod.ts";
 *
 * const { kernels, arena } = await loadKernels();
 * const store = createRandomWeightStore({ config: tinyConfig("qwen2", 2), kernels, arena, quant: "int4", seed: 1 });
 * const session = await createTrainingSession({
 *   store, kernels, arena, method: "mesp", seed: 0, maxGradNorm: 0,
 *   lora: { rank: 4, alpha: 8, targets: ["q", "k", "v", "o", "gate", "up", "down"] },
 *   optimizer: { kind: "adamw", lr: 1e-3, weightDecay: 0 },
 * });
 * const ids = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 300);
 * const { loss } = await session.step([{ inputIds: ids, labels: ids, batchSize: 1, seqLen: 16 }], 1e-3);
 * console.log(loss);
 * ```
 * @module
 */

// Everything, with the kernel loader that embeds the four wasm builds (mod_slim.ts has none).
export * from "./mod_slim.ts";
export { kernelModuleBytes, loadKernels, loadKernelsSync } from "./src/kernels/wasm.ts";
