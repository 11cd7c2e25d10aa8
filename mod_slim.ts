/**
 * slimtune without the embedded kernel builds: everything `mod.ts` exports, but `loadKernels`
 * only loads a compiled `WebAssembly.Module` the caller injects (`module`), or the TypeScript
 * `reference` kernels. For runtimes that provide the module anyway (Cloudflare Workers' wasm
 * imports, a `deno serve` entry's source-phase import), so that their bundle carries none of the
 * four base64 builds `mod.ts` embeds (about 40% of a bundle).
 *
 * @example
 * ```ts
 * import { loadKernels } from "./mod_slim.ts";
 * const bytes = await Deno.readFile(new URL("./wasm/kernels.simd.wasm", import.meta.url));
 * const { variant } = await loadKernels({ module: new WebAssembly.Module(bytes) });
 * console.log(variant); // "simd"
 * ```
 * @module
 */
// Kernels and memory
export type { Kernels } from "./src/kernels/abi.ts";
export type { Ptr } from "./src/runtime/ptr.ts";
export {
  type KernelVariant,
  type LoadedKernels,
  type LoadKernelsOptions,
  supportsRelaxedSimd,
} from "./src/kernels/load.ts";
export { loadKernels, loadKernelsSync } from "./src/kernels/injected.ts";
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
  type GgufAsyncTensor,
  ggufChunks,
  ggufChunksAsync,
  type GgufTensor,
  type GgufTensorType,
  type GgufValue,
} from "./src/io/gguf_writer.ts";
export { ConfigError, parseModelConfig } from "./src/io/config.ts";
export { presetModelConfig } from "./src/io/presets.ts";
export {
  blobFiles,
  type CheckpointFiles,
  memoryFiles,
  urlFiles,
} from "./src/io/model_source_files.ts";
export { openCheckpoint, openModel, type OpenModelOptions } from "./src/io/model_source.ts";
export { ResidentWeightStore, StreamedWeightStore } from "./src/io/weight_store.ts";
export { type CacheStore, MemoryCacheStore } from "./src/io/cache_store.ts";
export type { ModelConfig } from "./src/model/config.ts";
export type { BlockWeights, LinearName, LinearWeight, WeightStore } from "./src/model/weights.ts";
export { LINEAR_NAMES } from "./src/model/weights.ts";
export { createRandomWeightStore, tinyConfig } from "./src/model/random_weights.ts";
export {
  type ClipStash,
  keptTapesWithin,
  type MemoryPlan,
  type MemoryPlanOptions,
  planMemory,
} from "./src/methods/memory_plan.ts";

// Data (what runTraining's batch source is built from)
export {
  BatchSource,
  type BatchSourceOptions,
  buildRows,
  evalBatches,
  type LoadedRows,
  loadExamples,
  loadRows,
  type LoadRowsOptions,
  type PackedRows,
  type PackingMode,
  readExampleLines,
  type ReadExamplesOptions,
  RowPacker,
  type TokenizerLoader,
  type TokenizerRequest,
} from "./src/data/dataset.ts";
export { DataError, type TokenizedExample } from "./src/data/example.ts";
export { needsTokenizer, type RecordKind } from "./src/data/record_kind.ts";
export { DEFAULT_MAX_LINE_BYTES, jsonlLines, type JsonlOptions } from "./src/data/jsonl.ts";
export { TokenRows } from "./src/data/token_rows.ts";
export {
  createTokenizer,
  readTokenizer,
  type TextTokenizer,
  type TokenizerFiles,
} from "./src/data/tokenizer.ts";

// Training
export {
  type Batch,
  type CheckpointsOption,
  type CheckpointSpill,
  createTrainingSession,
  type LoraConfig,
  type MethodName,
  type SessionOptions,
  type StepResult,
  type TrainingSession,
} from "./src/methods/session.ts";
export { createOptimizer } from "./src/optim/factory.ts";
export {
  type Optimizer,
  type OptimizerConfig,
  type OptimizerKind,
  type StateTensor,
} from "./src/optim/optimizer.ts";
export { learningRate, type ScheduleKind } from "./src/optim/schedule.ts";
export {
  decodeAdapter,
  encodeAdapter,
  parseAdapterConfig,
  writeAdapterFiles,
} from "./src/io/peft_adapter.ts";
export { adapterGgufChunks } from "./src/train/gguf_adapter.ts";
export { ggufModelMetadata, ggufModelTensors } from "./src/train/gguf_model.ts";
export { type GgufVocab, ggufVocab } from "./src/io/gguf_vocab.ts";
export { type ModelTensorSource, tensorSetSource } from "./src/io/tensor_source.ts";
export { type MergeAdapter, mergedTensor, mergeLoraInto } from "./src/train/merge_adapter.ts";
export { runTraining, type TrainerOptions, type TrainResult } from "./src/train/trainer.ts";
export {
  ADAPTER_FILES,
  memoryRunHost,
  type RunData,
  type RunDataReady,
  type RunFileData,
  runFineTune,
  type RunHost,
  RunInputError,
  type RunResult,
  type RunSpec,
} from "./src/train/run.ts";
export {
  collectBytes,
  decodeRunState,
  encodeRunState,
  MemoryRunStateStore,
  type RunStateStore,
} from "./src/train/run_state_store.ts";
export type { HistoryPoint, TrainingState } from "./src/train/run_state.ts";
