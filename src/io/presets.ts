/**
 * The model presets: the Hugging Face `config.json` contents of the real models slimtune targets
 * (shapes from their published configs), the bundled demo model's and the tiny test models'.
 * `tools/make_checkpoint.ts` writes random-weight checkpoints of them; {@link presetModelConfig}
 * parses one, for the benches and examples that need a model's shape without a file.
 *
 * @example
 * ```ts
 * import { presetModelConfig } from "./presets.ts";
 * const c = presetModelConfig("qwen2.5-0.5b");
 * console.log(c.hiddenSize, c.numLayers); // 896 24
 * console.log(presetModelConfig("qwen2.5-0.5b", { numLayers: 2 }).numLayers); // 2
 * ```
 */
import type { ModelConfig } from "../model/config.ts";
import { parseModelConfig } from "./config.ts";

/** A `config.json` object. */
export type HfConfig = Record<string, unknown>;

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
export const PRESETS: Readonly<Record<string, HfConfig>> = {
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
  "qwen3-1.7b": {
    ...QWEN3_COMMON,
    hidden_size: 2048,
    intermediate_size: 6144,
    num_hidden_layers: 28,
    num_attention_heads: 16,
    num_key_value_heads: 8,
    head_dim: 128,
    max_window_layers: 28,
  },
  "qwen3-4b": {
    ...QWEN3_COMMON,
    hidden_size: 2560,
    intermediate_size: 9728,
    num_hidden_layers: 36,
    num_attention_heads: 32,
    num_key_value_heads: 8,
    head_dim: 128,
    max_window_layers: 36,
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
  // The bundled demo model's shape (src/model/demo_model.ts), Qwen2.5's vocabulary.
  "slimtune-demo": {
    ...QWEN_COMMON,
    hidden_size: 128,
    intermediate_size: 384,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_window_layers: 4,
    bos_token_id: null,
    eos_token_id: 151645,
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

/**
 * The {@link ModelConfig} of preset `name`, with `overrides` on top (a bench's layer count or
 * vocabulary, say).
 */
export function presetModelConfig(name: string, overrides?: Partial<ModelConfig>): ModelConfig {
  const preset = PRESETS[name];
  if (!preset) {
    throw new Error(`unknown preset "${name}" (known: ${Object.keys(PRESETS).join(", ")})`);
  }
  return { ...parseModelConfig(preset, `preset ${name}`), ...overrides };
}
