/**
 * Hugging Face `config.json` -> {@link ModelConfig}, for `Qwen2ForCausalLM` (Qwen2 / Qwen2.5),
 * `Qwen3ForCausalLM` (dense Qwen3) and `LlamaForCausalLM` (Llama 3.x, SmolLM2), with the defaults
 * transformers applies when a key is absent. Also reads the MLX `quantization` block of mlx-community 4-bit checkpoints.
 *
 * @example
 * ```ts
 * import { parseModelConfig } from "./config.ts";
 * const config = parseModelConfig({
 *   architectures: ["LlamaForCausalLM"], hidden_size: 64, intermediate_size: 128,
 *   num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 512,
 * });
 * config.headDim; // 16
 * ```
 */
import type { ModelConfig, RopeScalingLlama3 } from "../model/config.ts";

/** A problem with a config file; the message starts with the file name. */
export class ConfigError extends Error {
  constructor(readonly file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = "ConfigError";
  }
}

/** The MLX `quantization` block: affine 4-bit, groups of `groupSize` along the input axis. */
export interface MlxQuantization {
  groupSize: number;
  bits: 4;
}

const ARCHITECTURES: Record<string, ModelConfig["architecture"]> = {
  Qwen2ForCausalLM: "qwen2",
  Qwen3ForCausalLM: "qwen3",
  LlamaForCausalLM: "llama",
};
const MODEL_TYPES: Record<string, ModelConfig["architecture"]> = {
  qwen2: "qwen2",
  qwen3: "qwen3",
  llama: "llama",
};

type Json = Record<string, unknown>;

function asObject(file: string, json: unknown): Json {
  if (typeof json === "string") {
    try {
      json = JSON.parse(json);
    } catch (e) {
      throw new ConfigError(file, `not valid JSON: ${(e as Error).message}`);
    }
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(file, "not a JSON object");
  }
  return json as Json;
}

/**
 * Parses a `config.json` (text or already parsed). `file` names it in errors.
 * Throws {@link ConfigError} for unsupported architectures and missing or malformed fields.
 */
export function parseModelConfig(json: unknown, file = "config.json"): ModelConfig {
  const c = asObject(file, json);
  const fail = (what: string): never => {
    throw new ConfigError(file, what);
  };

  const archs = Array.isArray(c.architectures) ? c.architectures as unknown[] : [];
  let architecture: ModelConfig["architecture"] | undefined;
  if (archs.length > 0) {
    architecture = ARCHITECTURES[String(archs[0])];
    if (!architecture) {
      fail(
        `unsupported architecture ${JSON.stringify(archs[0])} ` +
          `(supported: ${Object.keys(ARCHITECTURES).join(", ")})`,
      );
    }
  } else if (typeof c.model_type === "string") {
    architecture = MODEL_TYPES[c.model_type];
    if (!architecture) {
      fail(
        `unsupported model_type "${c.model_type}" ` +
          `(supported: ${Object.keys(MODEL_TYPES).join(", ")})`,
      );
    }
  } else {
    fail('neither "architectures" nor "model_type" says which model this is');
  }

  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (v === undefined) return fail(`missing field "${key}"`);
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
      return fail(`field "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const num = (key: string, v: unknown, fallback: number): number => {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      return fail(`field "${key}" must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };

  const hiddenAct = c.hidden_act ?? "silu";
  if (hiddenAct !== "silu") fail(`unsupported hidden_act ${JSON.stringify(hiddenAct)} (only silu)`);
  if (c.use_sliding_window === true) fail("use_sliding_window: true is not supported");
  if (
    Array.isArray(c.layer_types) && c.layer_types.some((t) => t !== "full_attention")
  ) {
    fail(
      `layer_types ${JSON.stringify(c.layer_types.find((t) => t !== "full_attention"))} ` +
        `is not supported (only full_attention)`,
    );
  }
  if (c.rope_interleaved === true) {
    fail("rope_interleaved: true is not supported (rotate_half only)");
  }

  const hiddenSize = int("hidden_size");
  const numHeads = int("num_attention_heads");
  const numKvHeads = int("num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    fail(`num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`);
  }
  let headDim: number;
  if (c.head_dim !== undefined && c.head_dim !== null) {
    headDim = int("head_dim");
  } else if (architecture === "qwen3") {
    // transformers' Qwen3Config defaults head_dim to 128, whatever hidden / heads is.
    headDim = 128;
  } else {
    if (hiddenSize % numHeads !== 0) {
      fail(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
    }
    headDim = hiddenSize / numHeads;
  }
  if (headDim % 2 !== 0) fail(`head_dim ${headDim} must be even for RoPE`);

  // transformers v5 moved rope settings into `rope_parameters`; v4 has rope_theta / rope_scaling.
  const ropeParams = c.rope_parameters === undefined || c.rope_parameters === null
    ? null
    : asObject(file, c.rope_parameters);
  const ropeTheta = num(
    "rope_theta",
    c.rope_theta ?? ropeParams?.rope_theta,
    10000,
  );
  const scalingJson = c.rope_scaling ?? ropeParams;
  const ropeScaling = parseRopeScaling(
    file,
    scalingJson === undefined || scalingJson === null ? null : asObject(file, scalingJson),
  );

  if (
    c.attention_bias !== undefined && c.attention_bias !== null &&
    typeof c.attention_bias !== "boolean"
  ) {
    fail(`field "attention_bias" must be a boolean, got ${JSON.stringify(c.attention_bias)}`);
  }
  const qkvBias = architecture === "qwen2" ? true : c.attention_bias === true;
  if (architecture !== "qwen2" && c.mlp_bias === true) fail("mlp_bias: true is not supported");

  const tokenId = (key: string): number | null => {
    const v = c[key];
    if (v === undefined || v === null) return null;
    if (typeof v !== "number" || !Number.isInteger(v)) {
      return fail(`field "${key}" must be an integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  let eosTokenId: number | number[] | null;
  if (Array.isArray(c.eos_token_id)) {
    if (!c.eos_token_id.every((x) => Number.isInteger(x))) {
      fail(`field "eos_token_id" must be integers, got ${JSON.stringify(c.eos_token_id)}`);
    }
    eosTokenId = c.eos_token_id as number[];
  } else {
    eosTokenId = tokenId("eos_token_id");
  }

  return {
    architecture: architecture!,
    hiddenSize,
    intermediateSize: int("intermediate_size"),
    numLayers: int("num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    vocabSize: int("vocab_size"),
    ropeTheta,
    ropeScaling,
    rmsNormEps: num("rms_norm_eps", c.rms_norm_eps, 1e-6),
    // transformers' Qwen2Config, Qwen3Config and LlamaConfig all default to untied embeddings.
    tieWordEmbeddings: c.tie_word_embeddings === undefined
      ? false
      : c.tie_word_embeddings === true
      ? true
      : c.tie_word_embeddings === false
      ? false
      : fail(`field "tie_word_embeddings" must be a boolean`),
    qkvBias,
    qkNorm: architecture === "qwen3",
    maxPositionEmbeddings: int(
      "max_position_embeddings",
      architecture === "llama" ? 2048 : 32768,
    ),
    bosTokenId: tokenId("bos_token_id"),
    eosTokenId,
    padTokenId: tokenId("pad_token_id"),
  };
}

function parseRopeScaling(file: string, s: Json | null): RopeScalingLlama3 | null {
  if (s === null) return null;
  const type = s.rope_type ?? s.type ?? "default";
  if (type === "default") return null;
  if (type !== "llama3") {
    throw new ConfigError(
      file,
      `unsupported rope scaling type ${JSON.stringify(type)} (only llama3)`,
    );
  }
  const field = (key: string): number => {
    const v = s[key];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      throw new ConfigError(
        file,
        `rope_scaling (llama3) field "${key}" must be a positive number, got ${JSON.stringify(v)}`,
      );
    }
    return v;
  };
  return {
    type: "llama3",
    factor: field("factor"),
    lowFreqFactor: field("low_freq_factor"),
    highFreqFactor: field("high_freq_factor"),
    originalMaxPositionEmbeddings: field("original_max_position_embeddings"),
  };
}

/**
 * The MLX `quantization` (or `quantization_config`) block, or null for an unquantized
 * checkpoint. Only affine 4-bit is supported; anything else is a {@link ConfigError}.
 */
export function parseQuantization(json: unknown, file = "config.json"): MlxQuantization | null {
  const c = asObject(file, json);
  const q = c.quantization ?? c.quantization_config;
  if (q === undefined || q === null) return null;
  const o = asObject(file, q);
  if (o.quant_method !== undefined && o.quant_method !== "mlx") {
    throw new ConfigError(
      file,
      `unsupported quantization method ${JSON.stringify(o.quant_method)}`,
    );
  }
  if (o.mode !== undefined && o.mode !== "affine") {
    throw new ConfigError(
      file,
      `unsupported quantization mode ${JSON.stringify(o.mode)} (only affine)`,
    );
  }
  if (o.bits !== 4) {
    throw new ConfigError(file, `unsupported quantization bits ${JSON.stringify(o.bits)} (only 4)`);
  }
  const g = o.group_size;
  if (typeof g !== "number" || !Number.isInteger(g) || g <= 0 || g % 8 !== 0) {
    throw new ConfigError(
      file,
      `quantization group_size must be a positive multiple of 8, got ${JSON.stringify(g)}`,
    );
  }
  return { groupSize: g, bits: 4 };
}
