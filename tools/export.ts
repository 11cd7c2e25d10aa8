/**
 * Exports a slimtune (PEFT) adapter for llama.cpp, Ollama and LM Studio as a GGUF LoRA file,
 * written natively (no Python, no converter scripts):
 *
 *   npx deno run -A tools/export.ts --adapter out/my-adapter --format gguf --out my.gguf \
 *       [--type f32|f16|q8_0] [--model DIR]
 *
 * The base model's config.json gives the architecture and head counts (for the Llama-family q/k
 * row order); it is read from `--model`, else from the adapter's `base_model_name_or_path` when
 * that is a local directory. The bundled demo's adapters need neither.
 *
 * Then: `llama-cli -m base.gguf --lora my.gguf`, or an Ollama Modelfile with `ADAPTER ./my.gguf`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { GgufTensorType } from "../src/io/gguf_writer.ts";
import { isInputError } from "../src/io/input_error.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { FileWriteError, writeFileAtomic } from "../src/runtime/deno_fs.ts";
import { unexpectedErrorText } from "../src/runtime/unexpected_error.ts";
import { UsageError, usageErrorFromParseArgs } from "../src/train/args.ts";
import { DEMO_BASE_MODEL, DEMO_MODEL_CONFIG } from "../src/train/demo.ts";
import { adapterGgufChunks } from "../src/train/gguf_adapter.ts";
import { readModelConfigDeno } from "../src/train/model_deno.ts";
import { parseAdapterConfig } from "../src/train/peft_adapter.ts";
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  readAdapterDir,
} from "../src/train/peft_adapter_deno.ts";
import { canonicalPath, checkAppendableFile } from "../src/train/run_dir_deno.ts";

const HELP =
  `usage: npx deno run -A tools/export.ts --adapter DIR --format gguf --out FILE [options]

Writes a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors) as a GGUF LoRA
adapter that llama.cpp, Ollama and LM Studio load.

  --adapter DIR    the adapter (train.ts --out)
  --format gguf    the output format
  --out FILE       the GGUF file, written atomically
  --type T         tensor type: f32 | f16 | q8_0 (default f32; with q8_0, tensors whose rows are
                   not a multiple of 32 values, such as lora_b at rank < 32, are written as f16)
  --model DIR|URL  the base model (its config.json); default: the adapter's base model
  -h, --help       print this help
`;

const TYPES: Record<string, GgufTensorType> = { f32: "F32", f16: "F16", q8_0: "Q8_0" };

/** What to export. */
export interface ExportOptions {
  adapter: string;
  out: string;
  type: GgufTensorType;
  model: string | null;
}

/** Parses the flags. Throws {@link UsageError}; null means --help. */
export async function parseExportArgs(argv: string[]): Promise<ExportOptions | null> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        adapter: { type: "string" },
        format: { type: "string" },
        out: { type: "string" },
        type: { type: "string" },
        model: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw usageErrorFromParseArgs(e, "see --help");
  }
  if (values.help) return null;
  const need = (flag: string): string => {
    const v = values[flag];
    if (typeof v !== "string" || v === "") throw new UsageError(`--${flag}`, "required");
    return v;
  };
  const adapter = need("adapter");
  const format = need("format");
  const out = need("out");
  if (format !== "gguf") throw new UsageError("--format", `must be gguf, got "${format}"`);
  const typeName = (values.type as string | undefined) ?? "f32";
  const type = TYPES[typeName];
  if (!type) throw new UsageError("--type", `must be one of f32|f16|q8_0, got "${typeName}"`);
  const isFile = (p: string) => Deno.stat(p).then((s) => s.isFile, () => false);
  if (!(await isFile(`${adapter}/${ADAPTER_CONFIG_FILE}`))) {
    throw new UsageError("--adapter", `${adapter}: no ${ADAPTER_CONFIG_FILE} (not a PEFT adapter)`);
  }
  // The output replaces its file: never one of the adapter's own files.
  const target = await canonicalPath(out);
  for (const name of [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]) {
    if (target === await canonicalPath(`${adapter}/${name}`)) {
      throw new UsageError("--out", `${out} is the adapter's ${name}; name a new file`);
    }
  }
  if (await Deno.stat(out).then((s) => s.isDirectory, () => false)) {
    throw new UsageError("--out", `${out} is a directory (expected a file)`);
  }
  await checkAppendableFile(out, "--out");
  return { adapter, out, type, model: (values.model as string | undefined) ?? null };
}

/** The base model's configuration: `--model`, the adapter's base model, or the demo's. */
async function baseConfig(o: ExportOptions): Promise<ModelConfig> {
  if (o.model) return await readModelConfigDeno(o.model);
  const file = `${o.adapter}/${ADAPTER_CONFIG_FILE}`;
  const base = parseAdapterConfig(await Deno.readTextFile(file), file).baseModel;
  if (base === DEMO_BASE_MODEL) return DEMO_MODEL_CONFIG;
  const local = await Deno.stat(`${base}/config.json`).then((s) => s.isFile, () => false);
  if (!local && !/^https?:\/\//i.test(base)) {
    throw new UsageError(
      "--model",
      `required: the adapter's base model "${base}" is not a local directory with config.json`,
    );
  }
  return await readModelConfigDeno(base);
}

/** Writes the GGUF file; returns what was written. */
export async function exportAdapter(o: ExportOptions): Promise<{ tensors: number; bytes: number }> {
  const config = await baseConfig(o);
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
    const r = await exportAdapter(options);
    io.out(`${options.out}: GGUF LoRA adapter, ${r.tensors} tensors, ${r.bytes} bytes\n`);
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
