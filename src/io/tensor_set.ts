/**
 * All tensors of a checkpoint, whether in one `model.safetensors` or sharded through
 * `model.safetensors.index.json` (`weight_map`: tensor name -> shard file). Every shard's header is
 * validated when the set is opened; no tensor data is read.
 *
 * @example
 * ```ts
 * import { memoryFiles } from "./model_source_files.ts";
 * import { openTensorSet } from "./tensor_set.ts";
 * import { serializeSafetensors } from "./safetensors_writer.ts";
 * const bytes = serializeSafetensors([{ name: "w", dtype: "U8", shape: [1], data: new Uint8Array(1) }]);
 * const set = await openTensorSet(memoryFiles("m", { "model.safetensors": bytes }));
 * set.get("w").info.shape; // [1]
 * ```
 */
import type { CheckpointFiles } from "./model_source_files.ts";
import { readJson } from "./model_source_files.ts";
import { SafetensorsError, SafetensorsFile, type TensorInfo } from "./safetensors.ts";

/** File name of a single-file checkpoint. */
export const SINGLE_FILE = "model.safetensors";
/** File name of a sharded checkpoint's index. */
export const INDEX_FILE = "model.safetensors.index.json";

/** A tensor and the file that holds it. */
export interface TensorRef {
  file: SafetensorsFile;
  info: TensorInfo;
}

/** The tensors of a checkpoint by name. */
export class TensorSet {
  constructor(
    /** What to name in "missing tensor" errors: the single file, or the index file. */
    readonly name: string,
    readonly files: SafetensorsFile[],
    private readonly refs: Map<string, TensorRef>,
  ) {}

  has(name: string): boolean {
    return this.refs.has(name);
  }

  /** The tensor `name`; throws `<file>: missing tensor <name>`. */
  get(name: string): TensorRef {
    const ref = this.refs.get(name);
    if (!ref) throw new SafetensorsError(this.name, `missing tensor ${name}`);
    return ref;
  }

  names(): string[] {
    return [...this.refs.keys()];
  }

  async close(): Promise<void> {
    for (const f of this.files) await f.close();
  }
}

/** Opens `model.safetensors.index.json` + shards if present, else `model.safetensors`. */
export async function openTensorSet(files: CheckpointFiles): Promise<TensorSet> {
  const index = await readJson(files, INDEX_FILE);
  if (index === null) {
    const src = await files.open(SINGLE_FILE);
    if (!src) {
      throw new SafetensorsError(
        files.name,
        `no ${SINGLE_FILE} or ${INDEX_FILE} in the checkpoint`,
      );
    }
    const file = await SafetensorsFile.open(src);
    const refs = new Map<string, TensorRef>();
    for (const [name, info] of file.header.tensors) refs.set(name, { file, info });
    return new TensorSet(src.name, [file], refs);
  }

  const indexName = `${files.name}/${INDEX_FILE}`;
  const fail = (what: string): never => {
    throw new SafetensorsError(indexName, what);
  };
  if (typeof index !== "object" || Array.isArray(index)) fail("not a JSON object");
  const map = (index as Record<string, unknown>).weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    fail('missing "weight_map" object');
  }
  const shardNames = new Set<string>();
  for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
    if (typeof shard !== "string") fail(`weight_map entry for ${tensor} is not a file name`);
    shardNames.add(shard as string);
  }
  const opened = new Map<string, SafetensorsFile>();
  try {
    for (const shard of shardNames) {
      const src = await files.open(shard);
      if (!src) fail(`shard ${shard} listed in weight_map is missing`);
      opened.set(shard, await SafetensorsFile.open(src!));
    }
  } catch (e) {
    for (const f of opened.values()) await f.close();
    throw e;
  }
  const refs = new Map<string, TensorRef>();
  for (const [tensor, shard] of Object.entries(map as Record<string, string>)) {
    const file = opened.get(shard)!;
    if (!file.has(tensor)) {
      for (const f of opened.values()) await f.close();
      throw new SafetensorsError(
        file.name,
        `missing tensor ${tensor} (listed in ${INDEX_FILE})`,
      );
    }
    refs.set(tensor, { file, info: file.info(tensor) });
  }
  return new TensorSet(indexName, [...opened.values()], refs);
}
