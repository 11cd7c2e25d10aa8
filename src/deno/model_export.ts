/**
 * Whole-model exports from a local Hugging Face checkpoint directory, streamed one tensor at a
 * time (each read, merged with the adapter if one is given, converted, written, dropped):
 *
 * - {@link exportGgufModel}: a GGUF model for llama.cpp / Ollama / LM Studio, with the tokenizer
 *   in its metadata; with an adapter, the merged model;
 * - {@link exportMergedSafetensors}: the merged model as a Hugging Face checkpoint directory
 *   (`model.safetensors`, `config.json`, the tokenizer files) that transformers loads.
 *
 * An MLX 4-bit base (mlx-community) is dequantized on the way, one matrix at a time, to exactly
 * the f32 weights slimtune trains against; the output has no `.scales`/`.biases` and no
 * `quantization` block, and is as large as a float checkpoint of its type
 * ({@link ExportResult.dequantized} counts the matrices, `inputBytes` is what they came from).
 *
 * Every file is written atomically (a temporary file renamed over the target), and in a merged
 * checkpoint `config.json` is written last: a directory with a config.json has its weights.
 */
import { readCheckpointConfig } from "../io/model_source.ts";
import { dirFiles } from "./model_source_files.ts";
import { encodeFromF32, type FloatDtype, isFloatDtype } from "../io/dtype.ts";
import { ggufChunksAsync, type GgufTensorType } from "../io/gguf_writer.ts";
import { type LazyTensor, safetensorsChunks } from "../io/safetensors_writer.ts";
import { openTensorSet, type TensorSet } from "../io/tensor_set.ts";
import { type ModelTensorSource, rowChunks, tensorSetSource } from "../io/tensor_source.ts";
import { planMatrix } from "../io/weight_plan.ts";
import type { MlxQuantization } from "../io/config.ts";
import type { ModelConfig } from "../model/config.ts";
import { linearShape } from "../model/lora.ts";
import { ggufVocab } from "../io/gguf_vocab.ts";
import { writeFileAtomic } from "./fs.ts";
import { ggufModelMetadata, ggufModelTensors } from "../train/gguf_model.ts";
import {
  isMerged,
  linearOfWeight,
  type MergeAdapter,
  mergedTensor,
} from "../train/merge_adapter.ts";
import { readAdapterDir } from "./peft_adapter.ts";

/** Tokenizer files copied into a merged checkpoint when the base has them. */
export const TOKENIZER_FILES = [
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
  "vocab.json",
  "merges.txt",
  "added_tokens.json",
  "generation_config.json",
];

async function readTextOrNull(path: string): Promise<string | null> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/** What was written. */
export interface ExportResult {
  config: ModelConfig;
  tensors: number;
  bytes: number;
  merged: MergeAdapter | null;
  /** Matrices stored MLX 4-bit in the input and written dequantized (0 for a float base). */
  dequantized: number;
  /** Bytes of every tensor of the input checkpoint, as stored (MLX triples packed). */
  inputBytes: number;
}

/** Counts the bytes of a chunk stream as it passes. */
async function* counted(
  chunks: AsyncIterable<Uint8Array>,
  count: (n: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const c of chunks) {
    count(c.length);
    yield c;
  }
}

/** The model's config and MLX quantization, and the adapter read and validated against it. */
async function openBase(
  model: string,
  adapter: string | null,
): Promise<
  { config: ModelConfig; quantization: MlxQuantization | null; merged: MergeAdapter | null }
> {
  const { config, quantization } = await readCheckpointConfig(dirFiles(model));
  const merged = adapter ? await readAdapterDir(adapter, config) : null;
  return { config, quantization, merged };
}

/** The `[out, in]` the config gives a checkpoint matrix, or null for a tensor it does not shape. */
function configShape(config: ModelConfig, name: string): [number, number] | null {
  if (name === "model.embed_tokens.weight" || name === "lm_head.weight") {
    return [config.vocabSize, config.hiddenSize];
  }
  const which = linearOfWeight(name);
  return which ? linearShape(config, which.linear) : null;
}

/**
 * The checkpoint's tensors as the exporters read them. Every MLX 4-bit matrix is checked against
 * the shape the config gives it before anything is written (one line naming the tensor).
 */
function exportSource(
  set: TensorSet,
  config: ModelConfig,
  quantization: MlxQuantization | null,
): ModelTensorSource {
  const source = tensorSetSource(set, quantization?.groupSize ?? null);
  for (const name of source.names()) {
    const shape = source.dequantized(name) ? configShape(config, name) : null;
    if (shape) planMatrix(set, name.replace(/\.weight$/, ""), shape[0], shape[1], "none", 0);
  }
  return source;
}

/** The counts an {@link ExportResult} reports about the input. */
function inputCounts(set: TensorSet, source: ModelTensorSource) {
  let inputBytes = 0;
  for (const name of set.names()) inputBytes += set.get(name).info.byteLength;
  return { dequantized: source.names().filter((n) => source.dequantized(n)).length, inputBytes };
}

/** Options of {@link exportGgufModel}. */
export interface GgufModelExport {
  /** The base checkpoint directory. */
  model: string;
  /** Where tokenizer.json (and tokenizer_config.json, chat_template.jinja) are; default `model`. */
  tokenizer?: string | null;
  /** A PEFT adapter directory to merge in, or null for the base alone. */
  adapter?: string | null;
  out: string;
  type: GgufTensorType;
  /** `general.name`; default the model directory's name. */
  name?: string;
}

/** Writes the model (merged with the adapter, if given) as one GGUF file. */
export async function exportGgufModel(o: GgufModelExport): Promise<ExportResult> {
  const { config, quantization, merged } = await openBase(o.model, o.adapter ?? null);
  const tokDir = (o.tokenizer ?? o.model).replace(/\/+$/, "");
  let tokenizerJson: Deno.FsFile;
  try {
    tokenizerJson = await Deno.open(`${tokDir}/tokenizer.json`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new Error(
      `${tokDir}/tokenizer.json: not found (a GGUF model carries its tokenizer; pass --tokenizer DIR)`,
    );
  }
  using _json = tokenizerJson;
  const vocab = await ggufVocab({
    tokenizerJson,
    tokenizerConfig: await readTextOrNull(`${tokDir}/tokenizer_config.json`),
    chatTemplate: await readTextOrNull(`${tokDir}/chat_template.jinja`),
    vocabSize: config.vocabSize,
    bosTokenId: config.bosTokenId,
    eosTokenId: config.eosTokenId,
    name: tokDir,
  });
  const name = o.name ?? (o.model.replace(/\/+$/, "").split("/").pop() || "model");
  const set = await openTensorSet(dirFiles(o.model));
  try {
    const source = exportSource(set, config, quantization);
    const tensors = ggufModelTensors(config, source, o.type, merged);
    const metadata = ggufModelMetadata(
      config,
      vocab,
      o.type,
      merged ? `${name} + LoRA ${o.adapter}` : name,
      `${o.model.replace(/\/+$/, "")}/config.json`,
    );
    let bytes = 0;
    await writeFileAtomic(
      o.out,
      counted(ggufChunksAsync(metadata, tensors), (n) => bytes += n),
    );
    return { config, tensors: tensors.length, bytes, merged, ...inputCounts(set, source) };
  } finally {
    await set.close();
  }
}

/** A tensor the adapter leaves as it is, re-encoded one row chunk at a time. */
async function* encodedRows(
  source: ModelTensorSource,
  name: string,
  dtype: FloatDtype,
): AsyncGenerator<Uint8Array> {
  for await (const rows of rowChunks(source, name)) yield encodeFromF32(rows, dtype);
}

/** Options of {@link exportMergedSafetensors}. */
export interface MergedSafetensorsExport {
  model: string;
  adapter: string;
  /** The output directory (created if needed); never the model's or the adapter's. */
  out: string;
  dtype: Extract<FloatDtype, "BF16" | "F16" | "F32">;
}

const TORCH_DTYPES = { BF16: "bfloat16", F16: "float16", F32: "float32" } as const;

/** Writes base + adapter as a Hugging Face checkpoint directory. */
export async function exportMergedSafetensors(o: MergedSafetensorsExport): Promise<ExportResult> {
  const { config, quantization, merged } = await openBase(o.model, o.adapter);
  const modelDir = o.model.replace(/\/+$/, "");
  const set = await openTensorSet(dirFiles(modelDir));
  let bytes = 0;
  let count = 0;
  let counts: { dequantized: number; inputBytes: number };
  try {
    const source = exportSource(set, config, quantization);
    counts = inputCounts(set, source);
    const tensors: LazyTensor[] = source.names().map((name) => {
      const { file, info } = set.get(name);
      if (!source.dequantized(name) && !isFloatDtype(info.dtype)) {
        throw new Error(
          `${file.name}: tensor ${name} is ${info.dtype}; only float and MLX 4-bit checkpoints merge`,
        );
      }
      const shape = source.shape(name);
      return {
        name,
        dtype: o.dtype,
        shape,
        data: () =>
          isMerged(name, merged)
            ? source.read(name).then((v) =>
              encodeFromF32(mergedTensor(name, v, shape, merged, config), o.dtype)
            )
            : encodedRows(source, name, o.dtype),
      };
    });
    count = tensors.length;
    await Deno.mkdir(o.out, { recursive: true });
    await writeFileAtomic(
      `${o.out}/model.safetensors`,
      counted(safetensorsChunks(tensors, { format: "pt" }), (n) => bytes += n),
    );
  } finally {
    await set.close();
  }
  for (const f of TOKENIZER_FILES) {
    const bytesOf = await Deno.readFile(`${modelDir}/${f}`).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return null;
      throw e;
    });
    if (bytesOf) await writeFileAtomic(`${o.out}/${f}`, bytesOf);
  }
  const raw = JSON.parse(await Deno.readTextFile(`${modelDir}/config.json`));
  raw.torch_dtype = TORCH_DTYPES[o.dtype];
  delete raw.quantization;
  delete raw.quantization_config;
  await writeFileAtomic(
    `${o.out}/config.json`,
    new TextEncoder().encode(JSON.stringify(raw, null, 2) + "\n"),
  );
  return { config, tensors: count, bytes, merged, ...counts };
}
