/**
 * Deno convenience over `model_source.ts`: `source` may also be a local directory path, and a
 * streamed store's cache goes to `cacheDir` (default: the checkpoint directory itself).
 *
 * @example
 * ```ts
 * import { openModelDir } from "./model_source.ts";
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * const { kernels, arena } = loadKernelsSync();
 * const store = await openModelDir({
 *   source: "./Qwen2.5-0.5B",
 *   quant: "int4",
 *   weights: "streamed",
 *   kernels,
 *   arena,
 * });
 * ```
 */
import type { WeightStore } from "../model/weights.ts";
import {
  checkpointFiles,
  type CheckpointSourceLike,
  openModel,
  type OpenModelOptions,
} from "../io/model_source.ts";
import { dirCache } from "./cache_store.ts";
import { dirFiles } from "./model_source_files.ts";

/** {@link OpenModelOptions} plus local paths. */
export interface OpenModelDenoOptions extends OpenModelOptions {
  /** A directory path, or anything the portable API accepts. */
  source: CheckpointSourceLike;
  /** Directory for the streamed cache file (default: next to the checkpoint). */
  cacheDir?: string;
}

/**
 * Opens a checkpoint from a local directory (or URL / files) as a {@link WeightStore}: the
 * portable {@link openModel} over the directory's files and cache.
 */
export function openModelDir(options: OpenModelDenoOptions): Promise<WeightStore> {
  const { source } = options;
  const isPath = typeof source === "string" && !/^https?:\/\//i.test(source);
  const files = isPath ? dirFiles(source) : checkpointFiles(source);
  let cache = options.cache;
  if (!cache && options.cacheDir) cache = dirCache(options.cacheDir);
  if (!cache && isPath && options.weights === "streamed") cache = dirCache(source);
  return openModel({ ...options, source: files, cache });
}
