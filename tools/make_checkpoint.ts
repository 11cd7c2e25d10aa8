/**
 * Writes a Hugging Face-style checkpoint (config.json + model.safetensors, or shards with
 * model.safetensors.index.json) with the shapes of a real model and SEEDED RANDOM weights
 * (normal, std 0.02; norm weights 1, or 0 for Gemma 3, whose norms multiply by 1 + w). The config says so: `"slimtune_random_weights": true`.
 * Tensors are generated and written one row chunk at a time, so a 3B BF16 file needs only a few
 * megabytes of memory.
 *
 * Usage:
 *   npx deno run -A tools/make_checkpoint.ts --preset qwen2.5-0.5b --out DIR
 *     [--dtype bf16|f16|f32] [--seed S] [--layers N] [--shard-mb MB]
 *
 * Presets (`src/io/presets.ts`): qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen3-0.6b, qwen3-1.7b,
 * qwen3-4b, llama-3.2-1b, smollm2-135m, gemma3-270m, gemma3-1b, slimtune-demo, tiny-qwen2,
 * tiny-qwen3, tiny-llama, tiny-gemma3.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { encodeFromF32 } from "../src/io/dtype.ts";
import {
  type LazyTensor,
  safetensorsChunks,
  tensorByteLength,
} from "../src/io/safetensors_writer.ts";
import { writeFileAtomic } from "../src/deno/fs.ts";
import { Rng } from "../src/runtime/rng.ts";
import { PRESETS } from "../src/io/presets.ts";

type Json = Record<string, unknown>;

export { PRESETS };

/** Options of {@link makeCheckpoint} / {@link checkpointTensors}. */
export interface MakeCheckpointOptions {
  preset: string;
  /** Output directory (created if missing); only for {@link makeCheckpoint}. */
  out?: string;
  dtype?: "bf16" | "f16" | "f32";
  seed?: number;
  /** Overrides `num_hidden_layers`. */
  layers?: number;
  /** Shard when the data exceeds this many MiB (default: shard above 2 GB). */
  shardMb?: number;
  /** Extra/overriding config.json keys (tests: e.g. `{ tie_word_embeddings: false }`). */
  configOverrides?: Json;
}

const DTYPES = { bf16: "BF16", f16: "F16", f32: "F32" } as const;

/** The config.json a preset produces with `options` applied. */
export function checkpointConfig(options: MakeCheckpointOptions): Json {
  const preset = PRESETS[options.preset];
  if (!preset) {
    throw new Error(
      `unknown preset "${options.preset}" (known: ${Object.keys(PRESETS).join(", ")})`,
    );
  }
  const dtype = options.dtype ?? "bf16";
  if (!(dtype in DTYPES)) throw new Error(`unknown dtype "${dtype}" (bf16, f16 or f32)`);
  const config: Json = {
    ...preset,
    torch_dtype: { bf16: "bfloat16", f16: "float16", f32: "float32" }[dtype],
    ...options.configOverrides,
    slimtune_random_weights: true,
    slimtune_seed: options.seed ?? 0,
  };
  if (options.layers !== undefined) {
    if (!Number.isInteger(options.layers) || options.layers < 1) {
      throw new Error(`--layers must be a positive integer, got ${options.layers}`);
    }
    config.num_hidden_layers = options.layers;
    if ("max_window_layers" in config) config.max_window_layers = options.layers;
    if (Array.isArray(config.layer_types)) {
      // The first N layers' types; more layers than the preset repeat its pattern.
      const types = config.layer_types as string[];
      config.layer_types = Array.from(
        { length: options.layers },
        (_, i) => types[i % types.length],
      );
    }
  }
  return config;
}

/** FNV-1a of a string: a per-tensor seed, so a tensor's values do not depend on file order. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The f32 values of a generated tensor's rows `[r0, r0 + n)` (cols per row). */
function* rowChunks(
  name: string,
  rows: number,
  cols: number,
  seed: number,
  fill: number | null,
  chunkElems = 1 << 20,
): Generator<Float32Array> {
  const rng = new Rng((seed ^ fnv1a(name)) >>> 0);
  const per = Math.max(1, Math.floor(chunkElems / Math.max(1, cols)));
  for (let r = 0; r < rows; r += per) {
    const v = new Float32Array(Math.min(per, rows - r) * cols);
    if (fill !== null) v.fill(fill);
    else rng.fillNormal(v, 0.02);
    yield v;
  }
}

/** The tensors of a checkpoint for `config`, each produced lazily in row chunks. */
export function checkpointTensors(config: Json, options: MakeCheckpointOptions): LazyTensor[] {
  const dtype = DTYPES[options.dtype ?? "bf16"];
  const seed = options.seed ?? 0;
  const n = (k: string) => config[k] as number;
  const h = n("hidden_size"), inter = n("intermediate_size"), vocab = n("vocab_size");
  const heads = n("num_attention_heads");
  const kv = (config.num_key_value_heads as number | undefined) ?? heads;
  const hd = (config.head_dim as number | undefined) ?? h / heads;
  const qwen = config.model_type === "qwen2" || config.attention_bias === true;
  const gemma = config.model_type === "gemma3_text";
  const qkNorm = config.model_type === "qwen3" || gemma;
  const tensors: LazyTensor[] = [];
  // Norm weights: 1, or 0 where the norm multiplies by 1 + w (Gemma).
  const norm = gemma ? 0 : 1;
  const add = (name: string, shape: number[], fill: number | null = null) => {
    const rows = shape.length === 2 ? shape[0] : 1;
    const cols = shape.length === 2 ? shape[1] : shape[0];
    tensors.push({
      name,
      dtype,
      shape,
      data: function* () {
        for (const v of rowChunks(name, rows, cols, seed, fill)) yield encodeFromF32(v, dtype);
      },
    });
  };
  add("model.embed_tokens.weight", [vocab, h]);
  for (let i = 0; i < n("num_hidden_layers"); i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [h], norm);
    add(`${p}.self_attn.q_proj.weight`, [heads * hd, h]);
    add(`${p}.self_attn.k_proj.weight`, [kv * hd, h]);
    add(`${p}.self_attn.v_proj.weight`, [kv * hd, h]);
    if (qwen) {
      add(`${p}.self_attn.q_proj.bias`, [heads * hd]);
      add(`${p}.self_attn.k_proj.bias`, [kv * hd]);
      add(`${p}.self_attn.v_proj.bias`, [kv * hd]);
    }
    if (qkNorm) {
      add(`${p}.self_attn.q_norm.weight`, [hd], norm);
      add(`${p}.self_attn.k_norm.weight`, [hd], norm);
    }
    add(`${p}.self_attn.o_proj.weight`, [h, heads * hd]);
    add(`${p}.post_attention_layernorm.weight`, [h], norm);
    if (gemma) {
      add(`${p}.pre_feedforward_layernorm.weight`, [h], norm);
      add(`${p}.post_feedforward_layernorm.weight`, [h], norm);
    }
    add(`${p}.mlp.gate_proj.weight`, [inter, h]);
    add(`${p}.mlp.up_proj.weight`, [inter, h]);
    add(`${p}.mlp.down_proj.weight`, [h, inter]);
  }
  add("model.norm.weight", [h], norm);
  if (config.tie_word_embeddings !== true) add("lm_head.weight", [vocab, h]);
  return tensors;
}

/** Splits tensors into shards of at most `limit` bytes (a larger tensor gets its own shard). */
function shard(tensors: LazyTensor[], limit: number): LazyTensor[][] {
  const shards: LazyTensor[][] = [];
  let cur: LazyTensor[] = [];
  let size = 0;
  for (const t of tensors) {
    const b = tensorByteLength(t);
    if (cur.length > 0 && size + b > limit) {
      shards.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(t);
    size += b;
  }
  if (cur.length > 0) shards.push(cur);
  return shards;
}

/** What {@link makeCheckpoint} wrote. */
export interface MadeCheckpoint {
  dir: string;
  config: Json;
  /** File names written, config.json first. */
  files: string[];
  /** Bytes of tensor data. */
  dataBytes: number;
}

/** Writes a random-weight checkpoint to `options.out`, streaming tensor by tensor. */
export async function makeCheckpoint(options: MakeCheckpointOptions): Promise<MadeCheckpoint> {
  if (!options.out) throw new Error("makeCheckpoint: `out` directory is required");
  const dir = options.out.replace(/\/+$/, "");
  const config = checkpointConfig(options);
  const tensors = checkpointTensors(config, options);
  const dataBytes = tensors.reduce((s, t) => s + tensorByteLength(t), 0);
  const limit = options.shardMb !== undefined ? options.shardMb * 1024 * 1024 : 2e9;
  await Deno.mkdir(dir, { recursive: true });
  const files = ["config.json"];
  await writeFileAtomic(
    `${dir}/config.json`,
    new TextEncoder().encode(JSON.stringify(config, null, 2) + "\n"),
  );
  const metadata = { format: "pt", slimtune_random_weights: "true" };
  if (dataBytes <= limit) {
    await writeFileAtomic(`${dir}/model.safetensors`, safetensorsChunks(tensors, metadata));
    files.push("model.safetensors");
    return { dir, config, files, dataBytes };
  }
  const shards = shard(tensors, limit);
  const pad = (i: number) => String(i).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < shards.length; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    await writeFileAtomic(`${dir}/${name}`, safetensorsChunks(shards[i], metadata));
    for (const t of shards[i]) weightMap[t.name] = name;
    files.push(name);
  }
  const index = { metadata: { total_size: dataBytes }, weight_map: weightMap };
  await writeFileAtomic(
    `${dir}/model.safetensors.index.json`,
    new TextEncoder().encode(JSON.stringify(index, null, 2) + "\n"),
  );
  files.push("model.safetensors.index.json");
  return { dir, config, files, dataBytes };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      preset: { type: "string" },
      out: { type: "string" },
      dtype: { type: "string", default: "bf16" },
      seed: { type: "string", default: "0" },
      layers: { type: "string" },
      "shard-mb": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help || !values.preset || !values.out) {
    console.log(
      "usage: make_checkpoint.ts --preset NAME --out DIR [--dtype bf16|f16|f32] [--seed S] " +
        `[--layers N] [--shard-mb MB]\npresets: ${Object.keys(PRESETS).join(", ")}`,
    );
    Deno.exit(values.help ? 0 : 2);
  }
  const num = (flag: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (!Number.isFinite(x)) {
      console.error(`--${flag}: not a number: ${v}`);
      Deno.exit(2);
    }
    return x;
  };
  const t0 = performance.now();
  const made = await makeCheckpoint({
    preset: values.preset,
    out: values.out,
    dtype: values.dtype as "bf16" | "f16" | "f32",
    seed: num("seed", values.seed),
    layers: num("layers", values.layers),
    shardMb: num("shard-mb", values["shard-mb"]),
  });
  console.log(
    `wrote ${made.files.join(", ")} to ${made.dir}: ${(made.dataBytes / 2 ** 20).toFixed(1)} MiB ` +
      `of random weights in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
}
