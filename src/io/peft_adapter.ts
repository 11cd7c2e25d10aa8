/**
 * LoRA adapters in the Hugging Face PEFT format: `adapter_config.json` + `adapter_model.safetensors`
 * (F32 tensors named like `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`), the
 * layout PEFT, vLLM and llama.cpp's LoRA converter read. Portable: bytes in, bytes out (see
 * `src/deno/peft_adapter.ts` for the directory reader/writer).
 *
 * @example
 * ```ts
 * import { encodeAdapter, decodeAdapter } from "./peft_adapter.ts";
 * import { MemorySource } from "./byte_source.ts";
 * import { tinyConfig } from "../model/random_weights.ts";
 * const model = tinyConfig("qwen2", 1);
 * const tensors = new Map([
 *   ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
 *     { shape: [2, 64] as [number, number], data: new Float32Array(128) }],
 *   ["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
 *     { shape: [64, 2] as [number, number], data: new Float32Array(128) }],
 * ]);
 * const files = encodeAdapter(tensors, { r: 2, alpha: 4, targets: ["q"], baseModel: "demo" });
 * const back = await decodeAdapter(
 *   files.configJson, "adapter_config.json",
 *   new MemorySource("adapter_model.safetensors", files.safetensors), model,
 * );
 * ```
 */
import type { ByteSource } from "./byte_source.ts";
import { decodeToF32, isFloatDtype } from "./dtype.ts";
import { SafetensorsFile } from "./safetensors.ts";
import {
  type LazyTensor,
  safetensorsChunks,
  serializeSafetensors,
  tensorBytes,
  type TensorData,
} from "./safetensors_writer.ts";
import type { ModelConfig } from "../model/config.ts";
import {
  type F32Matrix,
  linearShape,
  type LoraTensors,
  peftModule,
  peftName,
} from "../model/lora.ts";
import { LINEAR_NAMES, type LinearName } from "../model/weights.ts";

/** What `adapter_config.json` says that slimtune uses. */
export interface AdapterInfo {
  r: number;
  alpha: number;
  targets: LinearName[];
  baseModel: string;
}

/** PEFT's module name of each slimtune linear name. */
export const PEFT_TARGET_MODULES: Record<LinearName, string> = {
  q: "q_proj",
  k: "k_proj",
  v: "v_proj",
  o: "o_proj",
  gate: "gate_proj",
  up: "up_proj",
  down: "down_proj",
};

/** The `adapter_config.json` object PEFT writes for a LoRA adapter of a causal LM. */
export function adapterConfigObject(info: AdapterInfo): Record<string, unknown> {
  return {
    peft_type: "LORA",
    task_type: "CAUSAL_LM",
    base_model_name_or_path: info.baseModel,
    r: info.r,
    lora_alpha: info.alpha,
    target_modules: LINEAR_NAMES.filter((n) => info.targets.includes(n)).map((n) =>
      PEFT_TARGET_MODULES[n]
    ),
    lora_dropout: 0,
    bias: "none",
    use_rslora: false,
    use_dora: false,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    modules_to_save: null,
    layers_to_transform: null,
    rank_pattern: {},
    alpha_pattern: {},
    revision: null,
  };
}

/** Both files of an adapter, as bytes / text. */
export interface AdapterFiles {
  configJson: string;
  safetensors: Uint8Array;
}

/** The adapter's tensors sorted by name like PEFT, each checked against its shape. */
function sortedAdapterTensors(
  tensors: LoraTensors,
): [string, F32Matrix][] {
  return [...tensors.keys()].sort().map((name) => {
    const t = tensors.get(name)!;
    if (t.data.length !== t.shape[0] * t.shape[1]) {
      throw new RangeError(`${name}: ${t.data.length} values for shape [${t.shape}]`);
    }
    return [name, t];
  });
}

function adapterConfigJson(info: AdapterInfo): string {
  return JSON.stringify(adapterConfigObject(info), null, 2) + "\n";
}

/** Serializes `tensors` (every tensor as F32, sorted by name like PEFT) with their config. */
export function encodeAdapter(tensors: LoraTensors, info: AdapterInfo): AdapterFiles {
  const list: TensorData[] = sortedAdapterTensors(tensors).map(([name, t]) => ({
    name,
    dtype: "F32",
    shape: t.shape,
    data: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
  }));
  return {
    configJson: adapterConfigJson(info),
    safetensors: serializeSafetensors(list, { format: "pt" }),
  };
}

/** The adapter as a config text and a stream of `adapter_model.safetensors` chunks. */
export interface AdapterChunks {
  configJson: string;
  safetensors: AsyncIterable<Uint8Array>;
}

/**
 * {@link encodeAdapter} as a stream: the same bytes, each tensor read only when the consumer pulls
 * it, so `tensors` may be views of linear memory and no whole-adapter buffer is ever built. A
 * tensor in ordinary memory is handed over as a byte view of itself, with no copy: copies would
 * each be freed only at a later collection, so a save would hold the whole adapter again (7 MB
 * for Gemma 3 270M at rank 8) just when the run ends. A tensor in shared (threads) memory is
 * copied, one at a time, since writers may not read from shared memory.
 */
export function encodeAdapterChunks(tensors: LoraTensors, info: AdapterInfo): AdapterChunks {
  const list: LazyTensor[] = sortedAdapterTensors(tensors).map(([name, t]) => ({
    name,
    dtype: "F32",
    shape: t.shape,
    data: () => tensorBytes(t.data),
  }));
  return {
    configJson: adapterConfigJson(info),
    safetensors: safetensorsChunks(list, { format: "pt" }),
  };
}

/** File names of an adapter directory. */
export const ADAPTER_FILES = {
  config: "adapter_config.json",
  weights: "adapter_model.safetensors",
} as const;

/** A file's bytes: one buffer, or chunks produced as the writer pulls them. */
export type FileBytes = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes the adapter as `out/adapter_model.safetensors` then `out/adapter_config.json` through
 * `writeFile` (which writes one file whole: a temporary file and a rename, a KV put, memory), the
 * weights streamed one tensor at a time so `tensors` may be views of a session's memory and no
 * whole-adapter copy is held. `out` "" writes the bare names. Returns the paths written.
 */
export async function writeAdapterFiles(
  writeFile: (path: string, data: FileBytes) => Promise<void>,
  out: string,
  tensors: LoraTensors,
  info: AdapterInfo,
): Promise<string[]> {
  const path = (name: string) => out === "" ? name : `${out}/${name}`;
  const files = encodeAdapterChunks(tensors, info);
  await writeFile(path(ADAPTER_FILES.weights), files.safetensors);
  await writeFile(path(ADAPTER_FILES.config), new TextEncoder().encode(files.configJson));
  return [path(ADAPTER_FILES.weights), path(ADAPTER_FILES.config)];
}

/** Reads a PEFT target module entry ("q_proj", or a path ending in it) as a linear name. */
function linearOfModule(module: string): LinearName | null {
  for (const n of LINEAR_NAMES) {
    const m = PEFT_TARGET_MODULES[n];
    if (module === m || module.endsWith(`.${m}`)) return n;
  }
  return null;
}

/**
 * Validates `adapter_config.json` text for what slimtune can load: a LoRA adapter without
 * rsLoRA/DoRA/fan_in_fan_out/biases/per-module ranks, targeting only the seven block linears.
 */
export function parseAdapterConfig(text: string, file: string): AdapterInfo {
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  const fail = (what: string): never => {
    throw new Error(`${file}: ${what}`);
  };
  if (!c || typeof c !== "object" || Array.isArray(c)) fail("expected a JSON object");
  if (c.peft_type !== undefined && c.peft_type !== "LORA") {
    fail(`peft_type is ${JSON.stringify(c.peft_type)}, only "LORA" is supported`);
  }
  const r = c.r;
  if (typeof r !== "number" || !Number.isInteger(r) || r < 1) {
    fail(`"r" must be a positive integer`);
  }
  const alpha = c.lora_alpha ?? r;
  if (typeof alpha !== "number" || !(alpha > 0)) fail(`"lora_alpha" must be a positive number`);
  if (c.use_rslora === true) fail("use_rslora adapters are not supported");
  if (c.use_dora === true) fail("DoRA adapters (use_dora) are not supported");
  if (c.fan_in_fan_out === true) fail("fan_in_fan_out adapters are not supported");
  if (c.bias !== undefined && c.bias !== "none") fail(`bias ${JSON.stringify(c.bias)} != "none"`);
  for (const k of ["rank_pattern", "alpha_pattern"]) {
    const v = c[k];
    if (v && typeof v === "object" && Object.keys(v).length) fail(`${k} is not supported`);
  }
  if (c.layers_to_transform !== undefined && c.layers_to_transform !== null) {
    fail("layers_to_transform is not supported (adapters must cover every layer)");
  }
  if (Array.isArray(c.modules_to_save) && c.modules_to_save.length) {
    fail("modules_to_save is not supported");
  }
  const modules = typeof c.target_modules === "string" ? [c.target_modules] : c.target_modules;
  if (!Array.isArray(modules) || modules.length === 0) fail(`"target_modules" must be a list`);
  const targets = new Set<LinearName>();
  for (const m of modules as unknown[]) {
    const n = typeof m === "string" ? linearOfModule(m) : null;
    if (!n) {
      fail(
        `target module ${JSON.stringify(m)} is not one of ${Object.values(PEFT_TARGET_MODULES)}`,
      );
    }
    targets.add(n!);
  }
  return {
    r: r as number,
    alpha: alpha as number,
    targets: LINEAR_NAMES.filter((n) => targets.has(n)),
    baseModel: typeof c.base_model_name_or_path === "string" ? c.base_model_name_or_path : "",
  };
}

/**
 * Reads an adapter for a model of shape `model`: validates the config, then that the safetensors
 * file holds exactly the expected A/B tensors with the right shapes (F32, F16 or BF16).
 */
export async function decodeAdapter(
  configJson: string,
  configName: string,
  weights: ByteSource,
  model: ModelConfig,
): Promise<{ info: AdapterInfo; tensors: LoraTensors }> {
  const info = parseAdapterConfig(configJson, configName);
  const file = await SafetensorsFile.open(weights);
  const expected = new Map<string, [number, number]>();
  for (let i = 0; i < model.numLayers; i++) {
    for (const n of info.targets) {
      const [out, inF] = linearShape(model, n);
      expected.set(peftName(i, n, "A"), [info.r, inF]);
      expected.set(peftName(i, n, "B"), [out, info.r]);
    }
  }
  const tensors: LoraTensors = new Map();
  for (const name of file.names()) {
    // PEFT names tensors without the adapter name; some tools keep ".default".
    const key = name.replace(/\.lora_([AB])\.default\.weight$/, ".lora_$1.weight");
    const shape = expected.get(key);
    if (!shape) {
      throw new Error(
        `${file.name}: unexpected tensor ${name} (the model has ${model.numLayers} layers; ` +
          `config targets ${info.targets.map((n) => peftModule(n)).join(", ")})`,
      );
    }
    const t = file.info(name);
    if (!isFloatDtype(t.dtype)) throw new Error(`${file.name}: ${name} has dtype ${t.dtype}`);
    if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1]) {
      throw new Error(`${file.name}: ${name} has shape [${t.shape}], expected [${shape}]`);
    }
    const data = new Float32Array(shape[0] * shape[1]);
    decodeToF32(await file.read(name), t.dtype, data);
    tensors.set(key, { shape, data });
  }
  for (const name of expected.keys()) {
    if (!tensors.has(name)) throw new Error(`${file.name}: missing tensor ${name}`);
  }
  return { info, tensors };
}
