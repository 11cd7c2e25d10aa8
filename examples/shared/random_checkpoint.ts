/**
 * A tiny Hugging Face-style checkpoint with seeded RANDOM weights, made entirely in memory
 * (`config.json` + `model.safetensors` as bytes), for the examples that run where there is no
 * file system: an edge function with no permissions, a browser tab. Portable: web APIs only.
 *
 * The real-shape generator for disk is `tools/make_checkpoint.ts`; this one is for models small
 * enough to hold whole (a few MB).
 *
 * @example
 * ```ts
 * import { memoryFiles, openModel, loadKernels } from "../../mod.ts";
 * import { randomCheckpointFiles, TINY_QWEN2 } from "./random_checkpoint.ts";
 * const { kernels, arena } = await loadKernels();
 * const files = memoryFiles("tiny", randomCheckpointFiles(TINY_QWEN2, 1));
 * const store = await openModel({ source: files, quant: "int4", kernels, arena });
 * ```
 * @module
 */
import { type ModelConfig, Rng, serializeSafetensors } from "../../mod_slim.ts";

/** The shape of a random checkpoint (HF config names in camelCase). */
export interface RandomModelShape {
  architecture: "qwen2" | "llama";
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
}

/**
 * The {@link RandomModelShape} of a Qwen2 or Llama config (a preset's, say: `presetModelConfig`);
 * its head dimension must be hidden / heads, as a random checkpoint's is.
 */
export function randomModelShape(c: ModelConfig): RandomModelShape {
  if (c.architecture !== "qwen2" && c.architecture !== "llama") {
    throw new RangeError(`a random checkpoint is qwen2 or llama, not ${c.architecture}`);
  }
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    throw new RangeError(
      `head dim ${c.headDim} is not hidden ${c.hiddenSize} / ${c.numHeads} heads`,
    );
  }
  return {
    architecture: c.architecture,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    numLayers: c.numLayers,
    numHeads: c.numHeads,
    numKvHeads: c.numKvHeads,
    vocabSize: c.vocabSize,
  };
}

/** Qwen2 architecture (q/k/v biases, tied embeddings), hidden 64, 2 layers, vocab 512. */
export const TINY_QWEN2: RandomModelShape = {
  architecture: "qwen2",
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  vocabSize: 512,
};

/** The `config.json` object of a random checkpoint of `shape`. */
export function randomConfigJson(shape: RandomModelShape, seed: number): Record<string, unknown> {
  const qwen = shape.architecture === "qwen2";
  return {
    architectures: [qwen ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
    model_type: shape.architecture,
    hidden_act: "silu",
    hidden_size: shape.hiddenSize,
    intermediate_size: shape.intermediateSize,
    num_hidden_layers: shape.numLayers,
    num_attention_heads: shape.numHeads,
    num_key_value_heads: shape.numKvHeads,
    vocab_size: shape.vocabSize,
    max_position_embeddings: 4096,
    rms_norm_eps: qwen ? 1e-6 : 1e-5,
    rope_theta: qwen ? 1000000.0 : 500000.0,
    tie_word_embeddings: true,
    torch_dtype: "float32",
    slimtune_random_weights: true,
    slimtune_seed: seed,
  };
}

/** `config.json` and `model.safetensors` (F32, normal std 0.02, norms 1) as bytes. */
export function randomCheckpointFiles(
  shape: RandomModelShape,
  seed: number,
): Record<string, Uint8Array> {
  const rng = new Rng(seed);
  const h = shape.hiddenSize;
  const hd = h / shape.numHeads;
  const tensors: { name: string; dtype: "F32"; shape: number[]; data: Uint8Array }[] = [];
  const add = (name: string, dims: number[], ones = false) => {
    const v = new Float32Array(dims.reduce((a, b) => a * b, 1));
    if (ones) v.fill(1);
    else rng.fillNormal(v, 0.02);
    tensors.push({ name, dtype: "F32", shape: dims, data: new Uint8Array(v.buffer) });
  };
  add("model.embed_tokens.weight", [shape.vocabSize, h]);
  for (let i = 0; i < shape.numLayers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [h], true);
    add(`${p}.self_attn.q_proj.weight`, [shape.numHeads * hd, h]);
    add(`${p}.self_attn.k_proj.weight`, [shape.numKvHeads * hd, h]);
    add(`${p}.self_attn.v_proj.weight`, [shape.numKvHeads * hd, h]);
    if (shape.architecture === "qwen2") {
      add(`${p}.self_attn.q_proj.bias`, [shape.numHeads * hd]);
      add(`${p}.self_attn.k_proj.bias`, [shape.numKvHeads * hd]);
      add(`${p}.self_attn.v_proj.bias`, [shape.numKvHeads * hd]);
    }
    add(`${p}.self_attn.o_proj.weight`, [h, shape.numHeads * hd]);
    add(`${p}.post_attention_layernorm.weight`, [h], true);
    add(`${p}.mlp.gate_proj.weight`, [shape.intermediateSize, h]);
    add(`${p}.mlp.up_proj.weight`, [shape.intermediateSize, h]);
    add(`${p}.mlp.down_proj.weight`, [h, shape.intermediateSize]);
  }
  add("model.norm.weight", [h], true);
  return {
    "config.json": new TextEncoder().encode(JSON.stringify(randomConfigJson(shape, seed))),
    "model.safetensors": serializeSafetensors(tensors, { format: "pt" }),
  };
}

/**
 * Training rows for a model without a tokenizer: the UTF-8 bytes of `text` (ids < 256, so any
 * vocabulary of at least 256 fits), cut into rows of `seqLen` tokens; labels = inputs.
 */
export function byteRows(
  text: string,
  seqLen: number,
): { inputIds: Int32Array; labels: Int32Array }[] {
  const bytes = new TextEncoder().encode(text);
  const rows: { inputIds: Int32Array; labels: Int32Array }[] = [];
  for (let i = 0; i + 2 <= bytes.length; i += seqLen) {
    const ids = Int32Array.from(bytes.subarray(i, i + seqLen));
    rows.push({ inputIds: ids, labels: ids.slice() });
  }
  return rows;
}
