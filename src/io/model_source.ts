/**
 * Opening a checkpoint as a {@link WeightStore}: `config.json` -> `ModelConfig`, the safetensors
 * headers (single file or sharded) validated, every tensor the model needs checked by name, shape
 * and dtype before any data is read, then the weights loaded resident or streamed.
 *
 * Portable (web APIs only): sources are {@link CheckpointFiles}, an http(s) URL, or maps of
 * `Blob`s / bytes. `src/deno/model_source.ts` adds local directory paths and a cache directory.
 *
 * @example
 * ```ts
 * import { openModel } from "./model_source.ts";
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { randomCheckpointFiles, TINY_QWEN2 } from "../../examples/shared/random_checkpoint.ts";
 * const { kernels, arena } = loadKernelsSync();
 * // A tiny random checkpoint in memory; a URL such as "https://host/repo/resolve/main/" works too.
 * const store = await openModel({
 *   source: randomCheckpointFiles(TINY_QWEN2, 1),
 *   quant: "int4",
 *   kernels,
 *   arena,
 * });
 * console.log(store.config.architecture, store.config.numLayers); // qwen2 2
 * ```
 */
import type { Kernels } from "../kernels/abi.ts";
import type { ModelConfig } from "../model/config.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import { sha256Hex, sourceIdentity } from "./cache_identity.ts";
import type { CacheStore } from "./cache_store.ts";
import {
  blobFiles,
  type CheckpointFiles,
  memoryFiles,
  readJson,
  urlFiles,
} from "./model_source_files.ts";
import {
  ConfigError,
  type MlxQuantization,
  parseModelConfig,
  parseQuantization,
} from "./config.ts";
import { DEFAULT_SCRATCH_BYTES, TensorLoader } from "./tensor_loader.ts";
import { openTensorSet, type TensorSet } from "./tensor_set.ts";
import { DEFAULT_GROUP_SIZE, type ModelPlan, planModel } from "./weight_plan.ts";
import { CACHE_VERSION, ResidentWeightStore, StreamedWeightStore } from "./weight_store.ts";

/** A checkpoint whose config and tensor headers have been read and validated. */
export interface Checkpoint {
  files: CheckpointFiles;
  /** The parsed `config.json` as it is (e.g. for tokenizer ids or labels). */
  rawConfig: Record<string, unknown>;
  config: ModelConfig;
  /** MLX 4-bit settings, when the checkpoint is an mlx-community quantized one. */
  quantization: MlxQuantization | null;
  tensors: TensorSet;
}

/** What a checkpoint can be given as in the portable API. */
export type CheckpointSourceLike =
  | CheckpointFiles
  | URL
  | string
  | Record<string, Uint8Array | Blob>
  | Map<string, Uint8Array | Blob>;

/** Resolves a portable source: files object, http(s) URL, or a map of file name -> bytes/Blob. */
export function checkpointFiles(
  source: CheckpointSourceLike,
  label = "checkpoint",
): CheckpointFiles {
  if (source instanceof URL) return urlFiles(source);
  if (typeof source === "string") {
    if (/^https?:\/\//i.test(source)) return urlFiles(source);
    throw new TypeError(
      `checkpoint source "${source}" is not an http(s) URL; local paths need openModelDir from ` +
        `src/deno/model_source.ts`,
    );
  }
  if ("open" in source && typeof (source as CheckpointFiles).open === "function") {
    return source as CheckpointFiles;
  }
  const entries = source instanceof Map ? [...source] : Object.entries(source);
  if (entries.every(([, v]) => v instanceof Uint8Array)) {
    return memoryFiles(label, new Map(entries as [string, Uint8Array][]));
  }
  if (entries.every(([, v]) => v instanceof Blob)) {
    return blobFiles(label, new Map(entries as [string, Blob][]));
  }
  throw new TypeError("checkpoint file map must hold only Uint8Arrays or only Blobs");
}

/** Reads and parses only `config.json` (cheap: the CLI checks flags against it before loading). */
export async function readCheckpointConfig(
  files: CheckpointFiles,
): Promise<{ raw: unknown; config: ModelConfig; quantization: MlxQuantization | null }> {
  const configName = `${files.name}/config.json`;
  const raw = await readJson(files, "config.json");
  if (raw === null) {
    throw new ConfigError(configName, "missing (every checkpoint needs config.json)");
  }
  return {
    raw,
    config: parseModelConfig(raw, configName),
    quantization: parseQuantization(raw, configName),
  };
}

/** Reads `config.json` and opens (and validates) every safetensors header. */
export async function openCheckpoint(files: CheckpointFiles): Promise<Checkpoint> {
  const { raw, config, quantization } = await readCheckpointConfig(files);
  const tensors = await openTensorSet(files);
  return { files, rawConfig: raw as Record<string, unknown>, config, quantization, tensors };
}

/** Options of {@link openModel}. */
export interface OpenModelOptions {
  source: CheckpointSourceLike;
  /** `int4`: base weights 4-bit (float checkpoints quantized while loading); `none`: f32. */
  quant: "int4" | "none";
  /** `resident` (default): all weights in the arena; `streamed`: one block at a time from a cache. */
  weights?: "resident" | "streamed";
  /** Where a streamed store keeps its cache file (required for `streamed`). */
  cache?: CacheStore;
  kernels: Kernels;
  arena: Arena;
  /** int4 group size when quantizing float checkpoints (default 64). */
  groupSize?: number;
  /** Rows of the streamed LM-head chunk slot (default 4096). */
  headChunkRows?: number;
  /** Bound of the f32 scratch used while converting (default 4 MiB). */
  scratchBytes?: number;
}

/**
 * A stable hash of everything that decides the cache file's content: format version, config,
 * quant settings, each source tensor's name, dtype, shape and size, and the identity of every
 * safetensors file's bytes ({@link sourceIdentity}: its source's own identity, e.g. size + mtime +
 * inode or an HTTP ETag, else a hash of samples of its bytes). The headers alone are not enough:
 * a different fine-tune of the same base, or a corrected re-download, has identical headers and
 * would otherwise be served the old cache's weights. An unchanged file keeps its identity, so the
 * cache is reused across runs; a file rewritten with the same bytes may get a new one (new
 * mtime), which costs a rebuild but is never stale.
 */
export async function weightCacheKey(
  checkpoint: Checkpoint,
  quant: "int4" | "none",
  groupSize: number,
  plan: ModelPlan,
): Promise<string> {
  const tensors = checkpoint.tensors.names().sort().map((n) => {
    const { info } = checkpoint.tensors.get(n);
    return [n, info.dtype, info.shape, info.byteLength];
  });
  // Files by their name inside the checkpoint, not their full path: a local directory reached
  // through another path (relative vs absolute, a trailing slash) or moved keeps its key, since
  // a local file's identity is its inode, not its path.
  const prefix = `${checkpoint.files.name}/`;
  const files: [string, string][] = [];
  for (const f of checkpoint.tensors.files) {
    const name = f.name.startsWith(prefix) ? f.name.slice(prefix.length) : f.name;
    files.push([name, await sourceIdentity(f.source)]);
  }
  files.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const text = JSON.stringify({
    version: CACHE_VERSION,
    config: checkpoint.config,
    quant,
    groupSize,
    maxBlockBytes: plan.maxBlockBytes,
    tensors,
    files,
  });
  return await sha256Hex(new TextEncoder().encode(text));
}

/** Opens a checkpoint and loads its base weights into a {@link WeightStore}. */
export async function openModel(options: OpenModelOptions): Promise<WeightStore> {
  const checkpoint = await openCheckpoint(checkpointFiles(options.source));
  try {
    return await storeFromCheckpoint(checkpoint, options);
  } catch (e) {
    await checkpoint.tensors.close();
    throw e;
  }
}

/** Builds the store for an already opened checkpoint. */
async function storeFromCheckpoint(
  checkpoint: Checkpoint,
  options: Omit<OpenModelOptions, "source">,
): Promise<WeightStore> {
  const groupSize = options.groupSize ?? DEFAULT_GROUP_SIZE;
  const plan = planModel(checkpoint.config, checkpoint.tensors, options.quant, groupSize);
  const loader = new TensorLoader(
    checkpoint.tensors,
    options.kernels,
    options.arena,
    options.scratchBytes ?? DEFAULT_SCRATCH_BYTES,
  );
  const mode = options.weights ?? "resident";
  if (mode === "resident") {
    return await ResidentWeightStore.build(checkpoint.config, options.quant, plan, loader);
  }
  if (mode !== "streamed") throw new TypeError(`unknown weights mode "${mode}"`);
  if (!options.cache) {
    throw new TypeError(
      `${checkpoint.files.name}: streamed weights need a cache store (cacheDir under Deno)`,
    );
  }
  const key = await weightCacheKey(checkpoint, options.quant, groupSize, plan);
  const store = await StreamedWeightStore.build(checkpoint.config, options.quant, plan, loader, {
    cache: options.cache,
    key,
    headChunkRows: options.headChunkRows ?? 4096,
  });
  // A checkpoint replaced while its cache was being written would leave a cache of mixed
  // weights under the old key. The key is taken again: if the files changed, this store is not
  // served (the next open keys the new files and builds a fresh cache).
  if (await weightCacheKey(checkpoint, options.quant, groupSize, plan) !== key) {
    await store.close();
    throw new Error(
      `${checkpoint.files.name}: the checkpoint changed while its weight cache was being built; ` +
        `open it again`,
    );
  }
  return store;
}
