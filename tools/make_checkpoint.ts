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
 * Presets: qwen2.5-0.5b, qwen2.5-1.5b, qwen2.5-3b, qwen3-0.6b, llama-3.2-1b, smollm2-135m,
 * gemma3-270m, gemma3-1b, tiny-qwen2, tiny-qwen3, tiny-llama, tiny-gemma3.
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
import { writeFileAtomic } from "../src/runtime/deno_fs.ts";
import { Rng } from "../src/runtime/rng.ts";

type Json = Record<string, unknown>;

const QWEN_COMMON = {
  architectures: ["Qwen2ForCausalLM"],
  model_type: "qwen2",
  hidden_act: "silu",
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  initializer_range: 0.02,
  max_position_embeddings: 32768,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  use_sliding_window: false,
  tie_word_embeddings: true,
  vocab_size: 151936,
};

const QWEN3_COMMON = {
  architectures: ["Qwen3ForCausalLM"],
  model_type: "qwen3",
  hidden_act: "silu",
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  initializer_range: 0.02,
  max_position_embeddings: 40960,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  use_sliding_window: false,
  tie_word_embeddings: true,
  vocab_size: 151936,
};

const GEMMA3_COMMON = {
  architectures: ["Gemma3ForCausalLM"],
  model_type: "gemma3_text",
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: null,
  final_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: 1,
  pad_token_id: 0,
  head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh",
  initializer_range: 0.02,
  max_position_embeddings: 32768,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000.0,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 512,
  tie_word_embeddings: true,
  use_bidirectional_attention: false,
  vocab_size: 262144,
};

/** Gemma 3's layer types: five sliding layers, then a full one. */
function gemmaLayerTypes(layers: number, pattern = 6): string[] {
  return Array.from(
    { length: layers },
    (_, i) => (i + 1) % pattern ? "sliding_attention" : "full_attention",
  );
}

const LLAMA_COMMON = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_act: "silu",
  attention_bias: false,
  mlp_bias: false,
  initializer_range: 0.02,
};

/** HF config.json contents of every preset (shapes from the published configs). */
export const PRESETS: Record<string, Json> = {
  "qwen2.5-0.5b": {
    ...QWEN_COMMON,
    hidden_size: 896,
    intermediate_size: 4864,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    max_window_layers: 24,
  },
  "qwen2.5-1.5b": {
    ...QWEN_COMMON,
    hidden_size: 1536,
    intermediate_size: 8960,
    num_hidden_layers: 28,
    num_attention_heads: 12,
    num_key_value_heads: 2,
    max_window_layers: 28,
  },
  "qwen2.5-3b": {
    ...QWEN_COMMON,
    hidden_size: 2048,
    intermediate_size: 11008,
    num_hidden_layers: 36,
    num_attention_heads: 16,
    num_key_value_heads: 2,
    max_window_layers: 36,
  },
  "qwen3-0.6b": {
    ...QWEN3_COMMON,
    hidden_size: 1024,
    intermediate_size: 3072,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    max_window_layers: 28,
  },
  "gemma3-270m": {
    ...GEMMA3_COMMON,
    hidden_size: 640,
    intermediate_size: 2048,
    num_hidden_layers: 18,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    layer_types: gemmaLayerTypes(18),
  },
  "gemma3-1b": {
    ...GEMMA3_COMMON,
    hidden_size: 1152,
    intermediate_size: 6912,
    num_hidden_layers: 26,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    sliding_window_pattern: 6,
    layer_types: gemmaLayerTypes(26),
  },
  "llama-3.2-1b": {
    ...LLAMA_COMMON,
    hidden_size: 2048,
    intermediate_size: 8192,
    num_hidden_layers: 16,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 64,
    vocab_size: 128256,
    max_position_embeddings: 131072,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    rope_scaling: {
      factor: 32.0,
      high_freq_factor: 4.0,
      low_freq_factor: 1.0,
      original_max_position_embeddings: 8192,
      rope_type: "llama3",
    },
    tie_word_embeddings: true,
    bos_token_id: 128000,
    eos_token_id: 128001,
  },
  "smollm2-135m": {
    ...LLAMA_COMMON,
    hidden_size: 576,
    intermediate_size: 1536,
    num_hidden_layers: 30,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    vocab_size: 49152,
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    rope_scaling: null,
    tie_word_embeddings: true,
    bos_token_id: 0,
    eos_token_id: 0,
  },
  "tiny-qwen2": {
    ...QWEN_COMMON,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 512,
    max_position_embeddings: 1024,
    max_window_layers: 2,
    sliding_window: 1024,
    bos_token_id: 1,
    eos_token_id: 2,
  },
  // head_dim 32 != hidden / heads = 16, as in the released Qwen3 models (q_proj [128, 64], so the
  // default int4 group size of 64 divides o_proj's input); untied LM head.
  "tiny-qwen3": {
    ...QWEN3_COMMON,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 32,
    vocab_size: 512,
    max_position_embeddings: 1024,
    max_window_layers: 2,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  },
  // head_dim 32 != hidden / heads = 16 (q_proj [128, 64]), GQA 4:1, sliding and full layers
  // mixed (sliding, full, sliding), a window of 4 keys (shorter than test sequences) and
  // query_pre_attn_scalar 24 != head_dim; tied, as every Gemma 3.
  "tiny-gemma3": {
    ...GEMMA3_COMMON,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    head_dim: 32,
    query_pre_attn_scalar: 24,
    sliding_window: 4,
    layer_types: gemmaLayerTypes(3, 2),
    vocab_size: 512,
    max_position_embeddings: 1024,
  },
  "tiny-llama": {
    ...LLAMA_COMMON,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 512,
    max_position_embeddings: 1024,
    rms_norm_eps: 1e-5,
    rope_theta: 500000.0,
    rope_scaling: {
      factor: 8.0,
      high_freq_factor: 4.0,
      low_freq_factor: 1.0,
      original_max_position_embeddings: 256,
      rope_type: "llama3",
    },
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
  },
};

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
