/**
 * Exports for llama.cpp, Ollama, LM Studio and transformers, written natively (no Python, no
 * converter scripts), every tensor streamed:
 *
 *   # a PEFT adapter as a GGUF LoRA adapter
 *   npx deno run -A tools/export.ts --adapter out/my-adapter --format gguf --out my.gguf \
 *       [--type f32|f16|q8_0] [--model DIR]
 *   # the base model as a GGUF model (tokenizer included)
 *   npx deno run -A tools/export.ts --model DIR --format gguf --out base.gguf \
 *       [--type f32|f16|q8_0|q4_0] [--tokenizer DIR]
 *   # base + adapter merged, as a GGUF model or a Hugging Face checkpoint directory
 *   npx deno run -A tools/export.ts --model DIR --adapter out/my-adapter --merge \
 *       --format gguf|safetensors --out FILE|DIR [--type ...]
 *
 * For an adapter alone, the base model's config.json gives the architecture and head counts (for
 * the Llama-family q/k row order); it is read from `--model`, else from the adapter's
 * `base_model_name_or_path` when that is a local directory. The bundled demo's adapters need
 * neither.
 *
 * Then: `llama-cli -m base.gguf --lora my.gguf`, or an Ollama Modelfile with `ADAPTER ./my.gguf`.
 *
 * @module
 */
import type { GgufTensorType } from "../src/io/gguf_writer.ts";
import { isInputError } from "../src/io/input_error.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { FileWriteError, writeFileAtomic } from "../src/deno/fs.ts";
import { unexpectedErrorText } from "../src/runtime/unexpected_error.ts";
import { UsageError } from "../src/cli/usage.ts";
import { parseToolFlags } from "../src/cli/tool_flags.ts";
import { DEMO_BASE_MODEL, DEMO_MODEL_CONFIG } from "../src/model/demo_model.ts";
import { adapterGgufChunks } from "../src/train/gguf_adapter.ts";
import { gemma3EmbedScaleMismatch } from "../src/train/gguf_gemma3.ts";
import { readModelConfigDeno } from "../src/deno/model.ts";
import { parseAdapterConfig } from "../src/io/peft_adapter.ts";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  readAdapterDir,
} from "../src/deno/peft_adapter.ts";
import { canonicalPath, checkAppendableFile } from "../src/deno/run_dir.ts";
import {
  exportGgufModel,
  exportMergedSafetensors,
  TOKENIZER_FILES,
} from "../src/deno/model_export.ts";

const HELP = `usage: npx deno run -A tools/export.ts --format gguf|safetensors --out PATH [options]

  adapter as a GGUF LoRA:  --adapter DIR --format gguf --out FILE [--type f32|f16|q8_0]
  base model as GGUF:      --model DIR --format gguf --out FILE [--type f32|f16|q8_0|q4_0]
  merged base + adapter:   --model DIR --adapter DIR --merge --format gguf --out FILE
                           --model DIR --adapter DIR --merge --format safetensors --out DIR

  --adapter DIR     a PEFT LoRA adapter (train.ts --out)
  --model DIR       the base model: a local Hugging Face checkpoint directory (config.json,
                    *.safetensors, tokenizer.json); for an adapter alone, only its config.json
                    is read (a URL works there), default the adapter's base_model_name_or_path
  --merge           write base + (lora_alpha/r)·B·A instead of the adapter
  --format F        gguf (llama.cpp, Ollama, LM Studio) or safetensors (transformers; --merge)
  --out PATH        the GGUF file, or the checkpoint directory for safetensors; written
                    atomically (a merged checkpoint's config.json is written last)
  --type T          tensor type. GGUF adapter: f32 (default) | f16 | q8_0 (tensors whose rows
                    are not a multiple of 32 values, such as lora_b at rank < 32, stay f16).
                    GGUF model: f16 (default) | f32 | q8_0 | q4_0 (vectors stay f32; q4_0
                    requantizes merged weights). safetensors: bf16 (default) | f16 | f32.
                    An MLX 4-bit base (mlx-community) is dequantized: its matrices are
                    written as this type, so the output is about 4x (f16, bf16) or 8x (f32)
                    the size of the input (the export prints both sizes)
  --tokenizer DIR   where tokenizer.json is, for a GGUF model (default: --model)
  -h, --help        print this help
`;

const ADAPTER_TYPES: Record<string, GgufTensorType> = { f32: "F32", f16: "F16", q8_0: "Q8_0" };
const MODEL_TYPES: Record<string, GgufTensorType> = { ...ADAPTER_TYPES, q4_0: "Q4_0" };
const SAFETENSORS_TYPES: Record<string, "BF16" | "F16" | "F32"> = {
  bf16: "BF16",
  f16: "F16",
  f32: "F32",
};

/** What to export. */
export type ExportOptions =
  | { kind: "adapter"; adapter: string; out: string; type: GgufTensorType; model: string | null }
  | {
    kind: "gguf-model";
    model: string;
    adapter: string | null;
    tokenizer: string | null;
    out: string;
    type: GgufTensorType;
  }
  | {
    kind: "safetensors";
    model: string;
    adapter: string;
    out: string;
    type: "BF16" | "F16" | "F32";
  };

const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);
const isDir = (p: string) => Deno.stat(p).then((s) => s.isDirectory, () => false);

/** Refuses an output file that is one of the inputs' own files, or a directory. */
async function checkOutFile(out: string, inputs: [string, string][]): Promise<void> {
  const target = await canonicalPath(out);
  for (const [what, dir] of inputs) {
    const own = [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, "config.json", ...TOKENIZER_FILES];
    for (const name of own) {
      if (target === await canonicalPath(`${dir}/${name}`)) {
        throw new UsageError("--out", `${out} is the ${what}'s ${name}; name a new file`);
      }
    }
    if (
      /\.safetensors$|\.json$/.test(target) &&
      (await canonicalPath(dir)) === target.slice(0, target.lastIndexOf("/"))
    ) {
      throw new UsageError("--out", `${out} is one of the ${what}'s files; name a new file`);
    }
  }
  if (await isDir(out)) throw new UsageError("--out", `${out} is a directory (expected a file)`);
  await checkAppendableFile(out, "--out");
}

/** Parses the flags. Throws {@link UsageError}; null means --help. */
export async function parseExportArgs(argv: string[]): Promise<ExportOptions | null> {
  const flags = parseToolFlags(argv, {
    strings: ["adapter", "format", "out", "type", "model", "tokenizer"],
    booleans: ["merge"],
  });
  if (flags.help) return null;
  const str = flags.string;
  const adapter = str("adapter");
  const model = str("model");
  const tokenizer = str("tokenizer");
  const merge = flags.boolean("merge");
  if (!adapter && !model) {
    throw new UsageError("--adapter", "required (or --model DIR alone to export the base model)");
  }
  if (merge && !adapter) throw new UsageError("--merge", "needs --adapter DIR");
  const format = str("format");
  if (!format) throw new UsageError("--format", "required");
  const out = str("out");
  if (!out) throw new UsageError("--out", "required");
  if (format !== "gguf" && format !== "safetensors") {
    throw new UsageError("--format", `must be gguf or safetensors, got "${format}"`);
  }
  if (format === "safetensors" && !merge) {
    throw new UsageError(
      "--format",
      "safetensors is for --merge (an adapter is already safetensors, and so is the base)",
    );
  }
  if (adapter && !(await isFile(`${adapter}/${ADAPTER_CONFIG_FILE}`))) {
    throw new UsageError("--adapter", `${adapter}: no ${ADAPTER_CONFIG_FILE} (not a PEFT adapter)`);
  }
  const pickType = <T>(table: Record<string, T>, fallback: string): T => {
    const name = str("type") ?? fallback;
    const t = table[name];
    if (!t) {
      throw new UsageError(
        "--type",
        `must be one of ${Object.keys(table).join("|")}, got "${name}"`,
      );
    }
    return t;
  };
  if (tokenizer && (format !== "gguf" || (adapter && !merge))) {
    throw new UsageError(
      "--tokenizer",
      "is for a GGUF model (--model DIR, with or without --merge)",
    );
  }
  if (adapter && !merge) {
    const type = pickType(ADAPTER_TYPES, "f32");
    await checkOutFile(out, [["adapter", adapter]]);
    return { kind: "adapter", adapter, out, type, model };
  }
  const base = model ?? await localBaseOf(adapter!);
  const needDir = async (dir: string, flag: string) => {
    if (!(await isFile(`${dir}/config.json`))) {
      throw new UsageError(flag, `${dir}: no config.json (expected a local checkpoint directory)`);
    }
  };
  await needDir(base, "--model");
  if (format === "gguf") {
    const type = pickType(MODEL_TYPES, "f16");
    await checkOutFile(out, adapter ? [["adapter", adapter], ["model", base]] : [["model", base]]);
    return { kind: "gguf-model", model: base, adapter, tokenizer, out, type };
  }
  const type = pickType(SAFETENSORS_TYPES, "bf16");
  const target = await canonicalPath(out);
  for (const dir of [base, adapter!]) {
    if (target === await canonicalPath(dir)) {
      throw new UsageError("--out", `${out} is the input ${dir}; name a new directory`);
    }
  }
  if (await isFile(out)) throw new UsageError("--out", `${out} is a file (expected a directory)`);
  return { kind: "safetensors", model: base, adapter: adapter!, out, type };
}

/** The adapter's base_model_name_or_path when it is a local checkpoint directory. */
async function localBaseOf(adapter: string): Promise<string> {
  const file = `${adapter}/${ADAPTER_CONFIG_FILE}`;
  const base = parseAdapterConfig(await Deno.readTextFile(file), file).baseModel;
  if (!(await isFile(`${base}/config.json`))) {
    throw new UsageError(
      "--model",
      `required: the adapter's base model "${base}" is not a local directory with config.json`,
    );
  }
  return base;
}

/** The base model's configuration: `--model`, the adapter's base model, or the demo's. */
async function baseConfig(adapter: string, model: string | null): Promise<ModelConfig> {
  if (model) return await readModelConfigDeno(model);
  const file = `${adapter}/${ADAPTER_CONFIG_FILE}`;
  const base = parseAdapterConfig(await Deno.readTextFile(file), file).baseModel;
  if (base === DEMO_BASE_MODEL) return DEMO_MODEL_CONFIG;
  const local = await isFile(`${base}/config.json`);
  if (!local && !/^https?:\/\//i.test(base)) {
    throw new UsageError(
      "--model",
      `required: the adapter's base model "${base}" is not a local directory with config.json`,
    );
  }
  return await readModelConfigDeno(base);
}

/** Writes the GGUF LoRA adapter; returns what was written. */
export async function exportAdapter(
  o: { adapter: string; out: string; type: GgufTensorType; model: string | null },
): Promise<{ tensors: number; bytes: number }> {
  const config = await baseConfig(o.adapter, o.model);
  const { info, tensors } = await readAdapterDir(o.adapter, config);
  let bytes = 0;
  const chunks = adapterGgufChunks(tensors, info, config, o.type);
  await writeFileAtomic(
    o.out,
    (function* () {
      for (const c of chunks) {
        bytes += c.length;
        yield c;
      }
    })(),
  );
  return { tensors: tensors.size, bytes };
}

/** The note of an export from an MLX 4-bit base: dequantized, and what that did to the size. */
function dequantizedNote(
  r: { dequantized: number; inputBytes: number; bytes: number },
  type: string,
): string {
  if (r.dequantized === 0) return "";
  return `note: the base is MLX 4-bit; its ${r.dequantized} quantized matrices are written ` +
    `dequantized as ${type.toLowerCase()}, so the output's ${r.bytes} bytes are ` +
    `${(r.bytes / r.inputBytes).toFixed(1)}x the input's ${r.inputBytes} bytes of tensors` +
    (type === "Q8_0" || type === "Q4_0"
      ? ` (${type.toLowerCase()} requantizes them: llama.cpp's blocks are not MLX's groups, so ` +
        "the weights are not exactly the MLX ones)\n"
      : "\n");
}

/** Runs one export; returns the lines to print. */
export async function runExport(o: ExportOptions): Promise<string> {
  if (o.kind === "adapter") {
    const r = await exportAdapter(o);
    return `${o.out}: GGUF LoRA adapter, ${r.tensors} tensors, ${r.bytes} bytes\n`;
  }
  if (o.kind === "gguf-model") {
    const r = await exportGgufModel(o);
    const c = r.config;
    let text = `${o.out}: GGUF model (${c.architecture}, ${c.numLayers} layers, ` +
      `${o.type.toLowerCase()}${r.merged ? `, LoRA r=${r.merged.info.r} merged` : ""}), ` +
      `${r.tensors} tensors, ${r.bytes} bytes\n` + dequantizedNote(r, o.type);
    if (r.merged && o.type === "Q4_0") {
      text += "note: q4_0 requantizes the merged weights: W + (lora_alpha/r)·B·A is rounded to " +
        "4 bits as a whole, so part of the adapter's change is lost in the rounding; for the " +
        "adapter as trained use --type q8_0 or f16, or keep it separate (--lora)\n";
    }
    const scales = c.architecture === "gemma3" ? gemma3EmbedScaleMismatch(c) : null;
    if (scales) {
      text += `note: llama.cpp multiplies Gemma's embedding by sqrtf(hidden) = ${scales[1]}, ` +
        `where slimtune and transformers use ${scales[0]} (√hidden rounded to the checkpoint's ` +
        "torch_dtype), so its outputs differ slightly from slimtune's\n";
    }
    return text;
  }
  const r = await exportMergedSafetensors({
    model: o.model,
    adapter: o.adapter,
    out: o.out,
    dtype: o.type,
  });
  return `${o.out}: merged checkpoint (${r.config.architecture}, ${o.type.toLowerCase()}, LoRA ` +
    `r=${r.merged!.info.r} merged), ${r.tensors} tensors, ${r.bytes} bytes of model.safetensors\n` +
    dequantizedNote(r, o.type);
}

/** The command. Returns the exit status: 0, 1 (bad input) or 2 (usage). */
export async function main(
  argv: string[],
  io = {
    out: (t: string) => void Deno.stdout.writeSync(new TextEncoder().encode(t)),
    err: (t: string) => void Deno.stderr.writeSync(new TextEncoder().encode(t)),
  },
): Promise<number> {
  try {
    const options = await parseExportArgs(argv);
    if (options === null) {
      io.out(HELP);
      return 0;
    }
    io.out(await runExport(options));
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n`);
      return 2;
    }
    if (isInputError(e) || e instanceof FileWriteError) {
      io.err(`error: ${(e as Error).message}\n`);
      return 1;
    }
    io.err(unexpectedErrorText(e, "slimtune export"));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
