/**
 * Hugging Face `config.json` -> {@link ModelConfig}, for `Qwen2ForCausalLM` (Qwen2 / Qwen2.5),
 * `Qwen3ForCausalLM` (dense Qwen3), `LlamaForCausalLM` (Llama 3.x, SmolLM2) and
 * `Gemma3ForCausalLM` (Gemma 3 text: 270M, 1B), with the defaults
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
import type { LayerType, ModelConfig, RopeScalingLlama3 } from "../model/config.ts";
import { decodeToF32, encodeFromF32 } from "./dtype.ts";

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
  Gemma3ForCausalLM: "gemma3",
};
const MODEL_TYPES: Record<string, ModelConfig["architecture"]> = {
  qwen2: "qwen2",
  qwen3: "qwen3",
  llama: "llama",
  gemma3_text: "gemma3",
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
  // The multimodal Gemma 3 models (4B, 12B, 27B) are refused rather than loaded for their text
  // part: every released one scales its full layers' RoPE linearly (not implemented), names its
  // tensors under `language_model.` beside a vision tower, and would need PEFT and GGUF adapters
  // keyed for the multimodal module tree.
  if (archs[0] === "Gemma3ForConditionalGeneration" || c.model_type === "gemma3") {
    fail(
      "multimodal Gemma 3 (Gemma3ForConditionalGeneration, model_type gemma3) is not supported " +
        "(a vision tower beside a text model in text_config, with linearly scaled RoPE): " +
        "use a text-only Gemma3ForCausalLM checkpoint (gemma-3-270m, gemma-3-1b)",
    );
  }
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

  const gemma = architecture === "gemma3";
  if (gemma) {
    const act = c.hidden_activation ?? c.hidden_act ?? "gelu_pytorch_tanh";
    if (act !== "gelu_pytorch_tanh") {
      fail(`unsupported hidden_activation ${JSON.stringify(act)} (only gelu_pytorch_tanh)`);
    }
    for (const key of ["final_logit_softcapping", "attn_logit_softcapping", "rope_scaling"]) {
      const v = c[key];
      if (v !== undefined && v !== null && !(key === "rope_scaling" && isDefaultRope(v))) {
        fail(`${key} ${JSON.stringify(v)} is not supported (only null)`);
      }
    }
    if (c.attention_bias === true) fail("attention_bias: true is not supported for Gemma 3");
    if (c.use_bidirectional_attention === true) {
      fail("use_bidirectional_attention: true is not supported (causal attention only)");
    }
  } else {
    const hiddenAct = c.hidden_act ?? "silu";
    if (hiddenAct !== "silu") {
      fail(`unsupported hidden_act ${JSON.stringify(hiddenAct)} (only silu)`);
    }
  }
  if (c.use_sliding_window === true) fail("use_sliding_window: true is not supported");
  if (
    !gemma && Array.isArray(c.layer_types) && c.layer_types.some((t) => t !== "full_attention")
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
  } else if (gemma) {
    headDim = 256; // Gemma3TextConfig's default
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
  let ropeTheta: number;
  let ropeScaling: RopeScalingLlama3 | null = null;
  let gemmaFields: Partial<ModelConfig> = {};
  if (gemma) {
    gemmaFields = parseGemma3(file, c, ropeParams, hiddenSize, int("num_hidden_layers"));
    ropeTheta = gemmaFields.ropeTheta!;
  } else {
    ropeTheta = num("rope_theta", c.rope_theta ?? ropeParams?.rope_theta, 10000);
    const scalingJson = c.rope_scaling ?? ropeParams;
    ropeScaling = parseRopeScaling(
      file,
      scalingJson === undefined || scalingJson === null ? null : asObject(file, scalingJson),
    );
  }

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
    tieWordEmbeddings: c.tie_word_embeddings === undefined
      ? gemma // Gemma3TextConfig ties by default; the Qwen and Llama configs do not
      : c.tie_word_embeddings === true
      ? true
      : c.tie_word_embeddings === false
      ? false
      : fail(`field "tie_word_embeddings" must be a boolean`),
    qkvBias,
    qkNorm: architecture === "qwen3" || gemma,
    maxPositionEmbeddings: int(
      "max_position_embeddings",
      architecture === "llama" ? 2048 : gemma ? 131072 : 32768,
    ),
    bosTokenId: tokenId("bos_token_id"),
    eosTokenId,
    padTokenId: tokenId("pad_token_id"),
    ...gemmaFields,
  };
}

/** A `rope_scaling` / `rope_parameters` entry that changes nothing (`rope_type` default). */
function isDefaultRope(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Json;
  return (o.rope_type ?? o.type ?? "default") === "default";
}

/** Rounds `x` to the float type a checkpoint's `torch_dtype` names (f32 when absent). */
export function roundToDtype(x: number, dtype: unknown): number {
  const f32 = new Float32Array([x]);
  const code = dtype === "bfloat16" ? "BF16" : dtype === "float16" ? "F16" : null;
  if (code === null) return f32[0];
  const out = new Float32Array(1);
  decodeToF32(encodeFromF32(f32, code), code, out);
  return out[0];
}

/**
 * The Gemma 3 text fields (HF `Gemma3TextConfig` semantics and defaults): `(1 + w)` norms,
 * sandwich norms, GeGLU-tanh, the embedding scale, the attention scale, layer types and the two
 * RoPE thetas.
 *
 * The embedding scale √hidden is rounded to the checkpoint's dtype (`torch_dtype`, or `dtype` in
 * transformers v5), as `Gemma3TextScaledWordEmbedding` casts it to the weight dtype: a bf16
 * checkpoint multiplies by 25.25 at hidden 640, not 25.298. The product itself is formed in f32.
 */
function parseGemma3(
  file: string,
  c: Json,
  ropeParams: Json | null,
  hiddenSize: number,
  numLayers: number,
): Partial<ModelConfig> {
  const fail = (what: string): never => {
    throw new ConfigError(file, what);
  };
  const positive = (key: string, v: unknown, fallback: number): number => {
    if (v === undefined || v === null) return fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
      return fail(`field "${key}" must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const window = positive("sliding_window", c.sliding_window, 4096);
  if (!Number.isSafeInteger(window)) fail(`field "sliding_window" must be an integer`);
  let layerTypes: LayerType[];
  if (c.layer_types !== undefined && c.layer_types !== null) {
    if (!Array.isArray(c.layer_types) || c.layer_types.length !== numLayers) {
      fail(`field "layer_types" must list ${numLayers} layer types`);
    }
    layerTypes = (c.layer_types as unknown[]).map((t, i) =>
      t === "sliding_attention" ? "sliding" : t === "full_attention" ? "full" : fail(
        `layer_types[${i}] ${JSON.stringify(t)} is not supported ` +
          `(sliding_attention or full_attention)`,
      )
    );
  } else {
    // Every `sliding_window_pattern`-th layer is full, the others slide (HF's default of 6;
    // newer configs write the key with a leading underscore).
    const pattern = positive(
      "sliding_window_pattern",
      c.sliding_window_pattern ?? c._sliding_window_pattern,
      6,
    );
    if (!Number.isSafeInteger(pattern)) fail(`field "sliding_window_pattern" must be an integer`);
    layerTypes = Array.from(
      { length: numLayers },
      (_, i) => (i + 1) % pattern ? "sliding" : "full",
    );
  }
  // RoPE: rope_theta / rope_local_base_freq (v4), or rope_parameters keyed by layer type (v5).
  let ropeTheta = positive("rope_theta", c.rope_theta, 1e6);
  let ropeLocalTheta = positive("rope_local_base_freq", c.rope_local_base_freq, 1e4);
  if (ropeParams !== null) {
    const entry = (type: string): Json | null => {
      const e = ropeParams[type];
      if (e === undefined || e === null) return null;
      const o = asObject(file, e);
      if (!isDefaultRope(o)) {
        fail(
          `rope_parameters.${type} rope_type ${JSON.stringify(o.rope_type ?? o.type)} is not ` +
            `supported (only default)`,
        );
      }
      return o;
    };
    const full = entry("full_attention");
    const sliding = entry("sliding_attention");
    if (full === null && sliding === null) {
      if (!isDefaultRope(ropeParams)) {
        fail(`rope_parameters ${JSON.stringify(ropeParams)} is not supported (only default)`);
      }
      ropeTheta = positive("rope_parameters.rope_theta", ropeParams.rope_theta, ropeTheta);
    }
    if (full) {
      ropeTheta = positive("rope_parameters.full_attention.rope_theta", full.rope_theta, ropeTheta);
    }
    if (sliding) {
      ropeLocalTheta = positive(
        "rope_parameters.sliding_attention.rope_theta",
        sliding.rope_theta,
        ropeLocalTheta,
      );
    }
  }
  const queryPreAttnScalar = positive("query_pre_attn_scalar", c.query_pre_attn_scalar, 256);
  return {
    normWeightOffset: 1,
    sandwichNorms: true,
    mlpActivation: "gelu_tanh",
    embedScale: roundToDtype(Math.sqrt(hiddenSize), c.torch_dtype ?? c.dtype),
    attentionScale: Math.pow(queryPreAttnScalar, -0.5),
    layerTypes,
    slidingWindow: window,
    ropeTheta,
    ropeLocalTheta,
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
