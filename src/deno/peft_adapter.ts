/**
 * Writes and reads PEFT adapter directories with Deno file APIs. Each file is written atomically
 * (temporary file + rename), so an interrupted save never leaves a half-written adapter.
 *
 * @example
 * ```ts
 * import { readAdapterDir, writeAdapterDir } from "./peft_adapter.ts";
 * // await writeAdapterDir("out/adapter", session.loraTensors(), info);
 * // const { info, tensors } = await readAdapterDir("out/adapter", modelConfig);
 * ```
 */
import { openFileSource } from "./file_source.ts";
import type { ModelConfig } from "../model/config.ts";
import type { LoraTensors } from "../model/lora.ts";
import { writeFileAtomic } from "./fs.ts";
import {
  ADAPTER_FILES,
  type AdapterInfo,
  decodeAdapter,
  writeAdapterFiles,
} from "../io/peft_adapter.ts";

/** File names inside an adapter directory. */
export const ADAPTER_CONFIG_FILE = ADAPTER_FILES.config;
export const ADAPTER_WEIGHTS_FILE = ADAPTER_FILES.weights;

/**
 * Writes `adapter_model.safetensors` then `adapter_config.json` into `dir` (created if needed),
 * each atomically ({@link writeAdapterFiles} over Deno files, as the run pipeline's final save).
 * The weights are streamed one tensor at a time, so `tensors` may be views
 * (`session.loraTensorViews()`) and no whole-adapter copy is held.
 */
export async function writeAdapterDir(
  dir: string,
  tensors: LoraTensors,
  info: AdapterInfo,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await writeAdapterFiles(writeFileAtomic, dir, tensors, info);
}

/** Reads and validates the adapter in `dir` against the model shape. */
export async function readAdapterDir(
  dir: string,
  model: ModelConfig,
): Promise<{ info: AdapterInfo; tensors: LoraTensors }> {
  const configPath = `${dir}/${ADAPTER_CONFIG_FILE}`;
  let configJson: string;
  try {
    configJson = await Deno.readTextFile(configPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${configPath}: not found`);
    throw e;
  }
  const weightsPath = `${dir}/${ADAPTER_WEIGHTS_FILE}`;
  let source;
  try {
    source = await openFileSource(weightsPath);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`${weightsPath}: not found`);
    throw e;
  }
  try {
    return await decodeAdapter(configJson, configPath, source, model);
  } finally {
    await source.close();
  }
}
