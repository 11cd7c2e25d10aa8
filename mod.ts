/**
 * slimtune: fine-tune LoRA adapters of real LLMs (Qwen2.5, Llama 3.x, SmolLM2) with 4-bit base
 * weights and a small, planned memory budget, in any JavaScript runtime with WebAssembly SIMD.
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

// Kernels and memory
export type { Kernels, Ptr } from "./src/kernels/abi.ts";
export {
  kernelModuleBytes,
  type KernelVariant,
  type LoadedKernels,
  loadKernels,
  type LoadKernelsOptions,
  loadKernelsSync,
  supportsRelaxedSimd,
} from "./src/kernels/wasm.ts";
export { Arena, ArenaLimitError } from "./src/runtime/arena.ts";
export { type ThreadScope, threadsUnavailableReason } from "./src/runtime/thread_support.ts";
export {
  formatMemoryReport,
  JsBytesLedger,
  type MemoryReport,
  memoryReport,
} from "./src/runtime/memory.ts";
export { Rng } from "./src/runtime/rng.ts";

// Checkpoints and weights
export type { ByteSource } from "./src/io/byte_source.ts";
export { BlobSource, MemorySource } from "./src/io/byte_source.ts";
export { HttpSource, HttpSourceError } from "./src/io/http_source.ts";
export { parseSafetensorsHeader, SafetensorsError, SafetensorsFile } from "./src/io/safetensors.ts";
export { safetensorsChunks, serializeSafetensors } from "./src/io/safetensors_writer.ts";
export {
  ggufChunks,
  type GgufTensor,
  type GgufTensorType,
  type GgufValue,
} from "./src/io/gguf_writer.ts";
export { ConfigError, parseModelConfig } from "./src/io/config.ts";
export {
  blobFiles,
  type CheckpointFiles,
  memoryFiles,
  urlFiles,
} from "./src/io/checkpoint_files.ts";
export { openCheckpoint, openModel, type OpenModelOptions } from "./src/io/checkpoint.ts";
export { ResidentWeightStore, StreamedWeightStore } from "./src/io/weight_store.ts";
export { type CacheStore, MemoryCacheStore } from "./src/io/cache_store.ts";
export type { ModelConfig } from "./src/model/config.ts";
export type { BlockWeights, LinearName, LinearWeight, WeightStore } from "./src/model/weights.ts";
export { LINEAR_NAMES } from "./src/model/weights.ts";
export { createRandomWeightStore, tinyConfig } from "./src/model/random_weights.ts";
export { type MemoryPlan, planMemory } from "./src/model/memory_plan.ts";

// Data (what runTraining's batch source is built from)
export {
  BatchSource,
  type BatchSourceOptions,
  buildRows,
  evalBatches,
  loadExamples,
  type TokenBatch,
} from "./src/data/dataset.ts";
export type { TokenizedExample } from "./src/data/example.ts";
export { createTokenizer, type TextTokenizer } from "./src/data/tokenizer.ts";

// Training
export {
  type Batch,
  createTrainingSession,
  type LoraConfig,
  type MethodName,
  type SessionOptions,
  type StepResult,
  type TrainingSession,
} from "./src/methods/session.ts";
export { createOptimizer, type Optimizer, type OptimizerConfig } from "./src/optim/optimizer.ts";
export { learningRate, type ScheduleKind } from "./src/optim/schedule.ts";
export { decodeAdapter, encodeAdapter, parseAdapterConfig } from "./src/train/peft_adapter.ts";
export { adapterGgufChunks } from "./src/train/gguf_adapter.ts";
export { runTraining, type TrainerOptions, type TrainResult } from "./src/train/trainer.ts";
