import assert from "node:assert/strict";
import { ConfigError, parseModelConfig, parseQuantization } from "./config.ts";

// Shapes as published in the Hugging Face repositories' config.json files.
const QWEN25_05B = {
  architectures: ["Qwen2ForCausalLM"],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: "silu",
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: "qwen2",
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-06,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const LLAMA32_1B = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: "silu",
  hidden_size: 2048,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-05,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  vocab_size: 128256,
};

const SMOLLM2_135M = {
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: "silu",
  hidden_size: 576,
  intermediate_size: 1536,
  max_position_embeddings: 8192,
  model_type: "llama",
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-05,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  vocab_size: 49152,
};

const QWEN3_06B = {
  architectures: ["Qwen3ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: "silu",
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: "qwen3",
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-06,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: "bfloat16",
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

Deno.test("Qwen3-0.6B config: head_dim 128 != hidden/heads, no biases, q/k norms", () => {
  assert.deepEqual(parseModelConfig(JSON.stringify(QWEN3_06B)), {
    architecture: "qwen3",
    hiddenSize: 1024,
    intermediateSize: 3072,
    numLayers: 28,
    numHeads: 16,
    numKvHeads: 8,
    headDim: 128,
    vocabSize: 151936,
    ropeTheta: 1e6,
    ropeScaling: null,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    qkvBias: false,
    qkNorm: true,
    maxPositionEmbeddings: 40960,
    bosTokenId: 151643,
    eosTokenId: 151645,
    padTokenId: null,
  });
  // model_type alone, and Qwen3Config's defaults: head_dim 128, untied, 32768 positions.
  const minimal = {
    model_type: "qwen3",
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 512,
  };
  const c = parseModelConfig(minimal);
  assert.equal(c.architecture, "qwen3");
  assert.equal(c.headDim, 128);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.maxPositionEmbeddings, 32768);
  assert.equal(c.qkvBias, false);
  assert.equal(c.qkNorm, true);
  assert.equal(parseModelConfig({ ...minimal, attention_bias: true }).qkvBias, true);
  assert.equal(parseModelConfig({ ...minimal, head_dim: 24 }).headDim, 24);
  assert.equal(
    parseModelConfig({ ...minimal, layer_types: ["full_attention", "full_attention"] }).qkNorm,
    true,
  );
});

Deno.test("Qwen2.5-0.5B config", () => {
  assert.deepEqual(parseModelConfig(JSON.stringify(QWEN25_05B)), {
    architecture: "qwen2",
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 151936,
    ropeTheta: 1e6,
    ropeScaling: null,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    qkvBias: true,
    qkNorm: false,
    maxPositionEmbeddings: 32768,
    bosTokenId: 151643,
    eosTokenId: 151643,
    padTokenId: null,
  });
});

Deno.test("Llama-3.2-1B config with llama3 rope scaling", () => {
  const c = parseModelConfig(LLAMA32_1B);
  assert.equal(c.architecture, "llama");
  assert.equal(c.headDim, 64);
  assert.equal(c.numKvHeads, 8);
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.rmsNormEps, 1e-5);
  assert.equal(c.qkvBias, false);
  assert.equal(c.tieWordEmbeddings, true);
  assert.deepEqual(c.ropeScaling, {
    type: "llama3",
    factor: 32,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  // Older configs spell the key `type`.
  const { rope_type: _, ...rest } = LLAMA32_1B.rope_scaling;
  const old = parseModelConfig({ ...LLAMA32_1B, rope_scaling: { ...rest, type: "llama3" } });
  assert.deepEqual(old.ropeScaling, c.ropeScaling);
});

Deno.test("SmolLM2-135M config: head_dim from hidden/heads, no scaling", () => {
  const c = parseModelConfig(SMOLLM2_135M);
  assert.equal(c.headDim, 64);
  assert.equal(c.numHeads, 9);
  assert.equal(c.numKvHeads, 3);
  assert.equal(c.ropeTheta, 100000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.vocabSize, 49152);
  assert.equal(c.bosTokenId, 0);
});

Deno.test("rope settings inside rope_parameters (transformers v5)", () => {
  const { rope_theta: _t, rope_scaling: scaling, ...rest } = LLAMA32_1B;
  const c = parseModelConfig({ ...rest, rope_parameters: { ...scaling, rope_theta: 500000 } });
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.ropeScaling?.factor, 32);
  const q = parseModelConfig({
    ...QWEN25_05B,
    rope_theta: undefined,
    rope_parameters: { rope_type: "default", rope_theta: 1e6 },
  });
  assert.equal(q.ropeTheta, 1e6);
  assert.equal(q.ropeScaling, null);
});

Deno.test("HF defaults: untied embeddings, kv heads = heads, theta 10000, llama attention_bias", () => {
  const minimal = {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 512,
  };
  const c = parseModelConfig(minimal);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.numKvHeads, 4);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.qkvBias, false);
  assert.equal(c.maxPositionEmbeddings, 2048);
  assert.equal(c.eosTokenId, null);
  assert.equal(parseModelConfig({ ...minimal, attention_bias: true }).qkvBias, true);
  assert.deepEqual(parseModelConfig({ ...minimal, eos_token_id: [1, 2] }).eosTokenId, [1, 2]);
  assert.equal(c.padTokenId, null);
  assert.equal(parseModelConfig({ ...minimal, pad_token_id: 5 }).padTokenId, 5);
  assert.equal(parseModelConfig({ ...minimal, head_dim: 32 }).headDim, 32);
});

Deno.test("config errors name the file and what is wrong", () => {
  const cases: [unknown, RegExp][] = [
    [
      { ...QWEN25_05B, architectures: ["Gemma2ForCausalLM"] },
      /unsupported architecture "Gemma2ForCausalLM" \(supported: Qwen2ForCausalLM, Qwen3ForCausalLM, LlamaForCausalLM, Gemma3ForCausalLM\)/,
    ],
    [
      { ...QWEN25_05B, architectures: undefined, model_type: "gemma" },
      /unsupported model_type "gemma"/,
    ],
    [{ hidden_size: 1 }, /neither "architectures" nor "model_type"/],
    [{ ...QWEN25_05B, hidden_size: undefined }, /missing field "hidden_size"/],
    [{ ...QWEN25_05B, vocab_size: -3 }, /"vocab_size" must be a positive integer, got -3/],
    [{ ...QWEN25_05B, num_key_value_heads: 3 }, /not a multiple of num_key_value_heads 3/],
    [
      { ...QWEN25_05B, hidden_size: 900 },
      /hidden_size 900 is not a multiple of num_attention_heads 14/,
    ],
    [{ ...QWEN25_05B, hidden_act: "gelu" }, /unsupported hidden_act "gelu"/],
    [{ ...QWEN25_05B, use_sliding_window: true }, /use_sliding_window/],
    [{ ...QWEN3_06B, use_sliding_window: true }, /use_sliding_window: true is not supported/],
    [
      { ...QWEN3_06B, layer_types: ["full_attention", "sliding_attention"] },
      /layer_types "sliding_attention" is not supported/,
    ],
    [{ ...QWEN3_06B, attention_bias: "no" }, /"attention_bias" must be a boolean/],
    [
      { ...LLAMA32_1B, rope_scaling: { rope_type: "yarn", factor: 4 } },
      /unsupported rope scaling type "yarn"/,
    ],
    [
      { ...LLAMA32_1B, rope_scaling: { rope_type: "llama3", factor: 8 } },
      /"low_freq_factor" must be a positive number/,
    ],
    ["{not json", /not valid JSON/],
  ];
  for (const [json, pattern] of cases) {
    const err = (() => {
      try {
        parseModelConfig(json, "m/config.json");
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(err instanceof ConfigError, `${pattern}: ${err}`);
    assert.ok(err.message.startsWith("m/config.json: "), err.message);
    assert.match(err.message, pattern);
  }
});

Deno.test("MLX quantization block", () => {
  assert.equal(parseQuantization(QWEN25_05B), null);
  assert.deepEqual(
    parseQuantization({ ...QWEN25_05B, quantization: { group_size: 64, bits: 4 } }),
    { groupSize: 64, bits: 4 },
  );
  assert.deepEqual(
    parseQuantization({ quantization_config: { group_size: 32, bits: 4, mode: "affine" } }),
    { groupSize: 32, bits: 4 },
  );
  assert.throws(
    () => parseQuantization({ quantization: { group_size: 64, bits: 8 } }),
    /bits 8 \(only 4\)/,
  );
  assert.throws(
    () => parseQuantization({ quantization: { group_size: 60, bits: 4 } }),
    /group_size/,
  );
  assert.throws(
    () => parseQuantization({ quantization_config: { quant_method: "gptq", bits: 4 } }),
    /unsupported quantization method "gptq"/,
  );
});

// google/gemma-3-270m config.json (transformers 4.55).
/** google/gemma-3-4b-it's config.json (the multimodal Gemma 3), trimmed of token indices. */
const GEMMA3_4B_IT = {
  architectures: ["Gemma3ForConditionalGeneration"],
  model_type: "gemma3",
  eos_token_id: [1, 106],
  mm_tokens_per_image: 256,
  text_config: {
    hidden_size: 2560,
    intermediate_size: 10240,
    model_type: "gemma3_text",
    num_hidden_layers: 34,
    rope_scaling: { factor: 8.0, rope_type: "linear" },
    sliding_window: 1024,
  },
  torch_dtype: "bfloat16",
  vision_config: {
    hidden_size: 1152,
    image_size: 896,
    intermediate_size: 4304,
    model_type: "siglip_vision_model",
    num_attention_heads: 16,
    num_hidden_layers: 27,
    patch_size: 14,
    vision_use_head: false,
  },
};

const GEMMA3_270M = {
  _sliding_window_pattern: 6,
  architectures: ["Gemma3ForCausalLM"],
  attention_bias: false,
  attention_dropout: 0.0,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: 1,
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: "gelu_pytorch_tanh",
  hidden_size: 640,
  initializer_range: 0.02,
  intermediate_size: 2048,
  layer_types: Array.from(
    { length: 18 },
    (_, i) => (i + 1) % 6 ? "sliding_attention" : "full_attention",
  ),
  max_position_embeddings: 32768,
  model_type: "gemma3_text",
  num_attention_heads: 4,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-06,
  rope_local_base_freq: 10000.0,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 512,
  torch_dtype: "bfloat16",
  use_bidirectional_attention: false,
  use_cache: true,
  vocab_size: 262144,
};

Deno.test("Gemma 3 270M config: (1+w) sandwich norms, GeGLU-tanh, scales, layer types, two thetas", () => {
  const c = parseModelConfig(GEMMA3_270M);
  assert.equal(c.architecture, "gemma3");
  assert.equal(c.headDim, 256);
  assert.equal(c.numKvHeads, 1);
  assert.equal(c.tieWordEmbeddings, true);
  assert.equal(c.qkNorm, true);
  assert.equal(c.qkvBias, false);
  assert.equal(c.normWeightOffset, 1);
  assert.equal(c.sandwichNorms, true);
  assert.equal(c.mlpActivation, "gelu_tanh");
  // bf16 checkpoint: sqrt(640) = 25.2982... rounds to 25.25 in bf16.
  assert.equal(c.embedScale, 25.25);
  assert.equal(c.attentionScale, 1 / 16);
  assert.equal(c.slidingWindow, 512);
  assert.equal(c.ropeTheta, 1e6);
  assert.equal(c.ropeLocalTheta, 1e4);
  assert.equal(c.ropeScaling, null);
  assert.deepEqual(
    c.layerTypes,
    Array.from({ length: 18 }, (_, i) => (i + 1) % 6 ? "sliding" : "full"),
  );
  assert.equal(c.maxPositionEmbeddings, 32768);
});

Deno.test("Gemma 3: embed scale in f32 without a bf16 dtype, sliding_window_pattern, rope_parameters by layer type", () => {
  const { layer_types: _, torch_dtype: __, ...rest } = GEMMA3_270M;
  const c = parseModelConfig({
    ...rest,
    num_hidden_layers: 4,
    sliding_window_pattern: 2,
    dtype: "float32",
    query_pre_attn_scalar: 64,
    rope_theta: undefined,
    rope_local_base_freq: undefined,
    rope_parameters: {
      full_attention: { rope_type: "default", rope_theta: 5e5 },
      sliding_attention: { rope_type: "default", rope_theta: 2e4 },
    },
  });
  assert.equal(c.embedScale, Math.fround(Math.sqrt(640)));
  assert.notEqual(c.embedScale, 25.25);
  assert.deepEqual(c.layerTypes, ["sliding", "full", "sliding", "full"]);
  assert.equal(c.ropeTheta, 5e5);
  assert.equal(c.ropeLocalTheta, 2e4);
  assert.equal(c.attentionScale, 0.125);
  // f16 rounds sqrt(640) to 25.296875.
  assert.equal(parseModelConfig({ ...GEMMA3_270M, torch_dtype: "float16" }).embedScale, 25.296875);
  // Defaults: every 6th layer full, head_dim 256, query_pre_attn_scalar 256, tied.
  const { head_dim: ___, query_pre_attn_scalar: ____, ...bare } = rest;
  const d = parseModelConfig({ ...bare, num_hidden_layers: 7 });
  assert.deepEqual(d.layerTypes, [
    "sliding",
    "sliding",
    "sliding",
    "sliding",
    "sliding",
    "full",
    "sliding",
  ]);
  assert.equal(d.headDim, 256);
  assert.equal(d.attentionScale, 1 / 16);
  assert.equal(d.slidingWindow, 512);
  const { _sliding_window_pattern: _p, ...noPattern } = bare;
  assert.deepEqual(
    parseModelConfig({ ...noPattern, num_hidden_layers: 4, _sliding_window_pattern: 2 }).layerTypes,
    ["sliding", "full", "sliding", "full"],
  );
});

Deno.test("Gemma 3: what is not supported is refused naming the key", () => {
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => parseModelConfig({ ...GEMMA3_270M, ...patch }, "g/config.json"), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^g\/config\.json: /);
      assert.match(e.message, re);
      return true;
    });
  bad({ final_logit_softcapping: 30 }, /final_logit_softcapping 30 is not supported/);
  bad({ attn_logit_softcapping: 50 }, /attn_logit_softcapping 50 is not supported/);
  bad({ rope_scaling: { rope_type: "linear", factor: 8 } }, /rope_scaling .* is not supported/);
  bad({ hidden_activation: "gelu" }, /hidden_activation "gelu"/);
  bad({ layer_types: ["sliding_attention"] }, /layer_types" must list 18/);
  bad({ use_bidirectional_attention: true }, /use_bidirectional_attention/);
  bad({
    rope_parameters: { full_attention: { rope_type: "linear", factor: 8, rope_theta: 1e6 } },
  }, /rope_parameters.full_attention rope_type "linear"/);
  bad(
    { architectures: ["Gemma3ForConditionalGeneration"], model_type: "gemma3" },
    /multimodal Gemma 3/,
  );
  // gemma-3-4b-it's config.json as published (nested text_config, vision_config): one line
  // naming the file, even though its text_config alone would parse far enough to fail elsewhere.
  assert.throws(
    () => parseModelConfig(GEMMA3_4B_IT, "/m/config.json"),
    (e: Error) =>
      e.message.startsWith(
        "/m/config.json: multimodal Gemma 3 (Gemma3ForConditionalGeneration, model_type gemma3) " +
          "is not supported",
      ) && e.message.endsWith("(gemma-3-270m, gemma-3-1b)") && !e.message.includes("\n"),
  );
  // Without "architectures", model_type gemma3 alone is the multimodal model too.
  const { architectures: _, ...byType } = GEMMA3_4B_IT;
  assert.throws(() => parseModelConfig(byType), /multimodal Gemma 3/);
  // A default rope_scaling entry changes nothing and is accepted.
  assert.equal(
    parseModelConfig({ ...GEMMA3_270M, rope_scaling: { rope_type: "default" } }).ropeTheta,
    1e6,
  );
});
