/**
 * A Hugging Face checkpoint (optionally with a LoRA adapter merged in) as a GGUF model file that
 * llama.cpp, Ollama and LM Studio load: the architecture's hyper-parameters and the tokenizer in
 * the metadata, the tensors under llama.cpp's names, read, merged, converted and encoded one at
 * a time. Portable: a tensor source in, chunks out.
 *
 * What llama.cpp's loader reads (its `qwen2` / `qwen3` / `llama` model builders and its own HF
 * converter):
 * - `general.architecture`, `general.name`, `general.file_type` (0 all f32, 1 mostly f16, 2
 *   mostly q4_0, 7 mostly q8_0), `general.quantization_version = 2` for quantized files;
 * - `<arch>.context_length`, `.embedding_length`, `.block_count`, `.feed_forward_length`,
 *   `.attention.head_count`, `.attention.head_count_kv`, `.attention.key_length` and
 *   `.value_length` (the head size), `.rope.freq_base`, `.attention.layer_norm_rms_epsilon`,
 *   `.vocab_size`, and for `llama` `.rope.dimension_count`;
 * - tensors `token_embd`, `output_norm`, `output` (absent when the embedding is tied: llama.cpp
 *   then reuses `token_embd`), and per block `blk.N.attn_norm`, `attn_q/k/v` (weights and Qwen2's
 *   biases), `attn_q_norm`/`attn_k_norm` (Qwen3), `attn_output`, `ffn_norm`, `ffn_gate`,
 *   `ffn_up`, `ffn_down`;
 * - Llama 3 rope scaling as a tensor `rope_freqs.weight` `[headDim/2]` of per-frequency divisors
 *   (1 at high frequencies, `factor` at low ones, the smooth blend `1 / ((1 - s)/factor + s)`
 *   between), since ggml divides each rotary angle by it;
 * - for `llama`, the q and k weight rows reordered per head from HF's two rotary halves to ggml's
 *   interleaved pairs (`permuteHeadRows`), because llama.cpp's Llama graph rotates adjacent pairs;
 *   Qwen's graph rotates halves as HF does and needs none.
 *
 * `gemma3` (its own `llama_model_gemma3` builder) adds the sandwich norms `post_attention_norm`
 * and `post_ffw_norm`, names HF's `pre_feedforward_layernorm` `ffn_norm`, stores every norm
 * weight as the `1 + w` it multiplies by, and keys the sliding layers: see `gguf_gemma3.ts`.
 *
 * Vectors (norms, biases, rope_freqs) are always F32; matrices take the requested type, except
 * that a block type (Q8_0, Q4_0) needs rows of whole 32-value blocks and falls back to F16.
 */
import {
  ggmlBlockSize,
  type GgufAsyncTensor,
  type GgufTensorType,
  type GgufValue,
} from "../io/gguf_writer.ts";
import { type ModelTensorSource, rowChunks } from "../io/tensor_source.ts";
import type { ModelConfig } from "../model/config.ts";
import { type GgufVocab, ggufVocabMetadata } from "../io/gguf_vocab.ts";
import { ggufArchitecture, permuteHeadRows } from "./gguf_adapter.ts";
import { gemma3Metadata, gemma3NormWeight } from "./gguf_gemma3.ts";
import { isMerged, type MergeAdapter, mergedTensor } from "./merge_adapter.ts";

/** `general.file_type` of a file whose matrices are `type`. */
const FILE_TYPE: Record<GgufTensorType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 };

/**
 * The GGUF metadata of a model: architecture keys, then the tokenizer. `where` (the config's
 * path) names what a model llama.cpp cannot express is refused for.
 */
export function ggufModelMetadata(
  config: ModelConfig,
  vocab: GgufVocab,
  type: GgufTensorType,
  name: string,
  where = "config.json",
): [string, GgufValue][] {
  const arch = ggufArchitecture(config);
  if (!["qwen2", "qwen3", "llama", "gemma3"].includes(arch)) {
    throw new Error(`${where}: GGUF model export of architecture ${arch} is not supported`);
  }
  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const f32 = (value: number): GgufValue => ({ type: "f32", value });
  const out: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: arch }],
    ["general.name", { type: "string", value: name }],
    ["general.file_type", u32(FILE_TYPE[type])],
  ];
  if (type === "Q8_0" || type === "Q4_0") out.push(["general.quantization_version", u32(2)]);
  out.push(
    [`${arch}.context_length`, u32(config.maxPositionEmbeddings)],
    [`${arch}.embedding_length`, u32(config.hiddenSize)],
    [`${arch}.block_count`, u32(config.numLayers)],
    [`${arch}.feed_forward_length`, u32(config.intermediateSize)],
    [`${arch}.attention.head_count`, u32(config.numHeads)],
    [`${arch}.attention.head_count_kv`, u32(config.numKvHeads)],
    [`${arch}.attention.key_length`, u32(config.headDim)],
    [`${arch}.attention.value_length`, u32(config.headDim)],
    [`${arch}.rope.freq_base`, f32(config.ropeTheta)],
    [`${arch}.attention.layer_norm_rms_epsilon`, f32(config.rmsNormEps)],
    [`${arch}.vocab_size`, u32(config.vocabSize)],
  );
  if (arch === "llama") out.push([`${arch}.rope.dimension_count`, u32(config.headDim)]);
  if (arch === "gemma3") out.push(...gemma3Metadata(config, where));
  if (vocab.tokens.length !== config.vocabSize) {
    throw new Error(
      `tokenizer has ${vocab.tokens.length} tokens for ${config.vocabSize} embedding rows`,
    );
  }
  out.push(...ggufVocabMetadata(vocab));
  return out;
}

/** The divisors of the rotary frequencies that Llama 3 rope scaling applies (`[headDim/2]`). */
export function llama3RopeFactors(config: ModelConfig): Float32Array {
  const s = config.ropeScaling;
  if (!s) throw new Error("llama3RopeFactors: the config has no llama3 rope scaling");
  const dim = config.headDim;
  const out = new Float32Array(dim / 2);
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  for (let i = 0; i < dim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(config.ropeTheta ** Math.fround((2 * i) / dim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
        (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** HF tensor name -> llama.cpp tensor name, for the tensors of `config`, in file order. */
export function ggufTensorNames(config: ModelConfig): [string, string][] {
  const names: [string, string][] = [["model.embed_tokens.weight", "token_embd.weight"]];
  const sandwich = config.sandwichNorms === true;
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    const b = `blk.${i}`;
    names.push([`${p}.input_layernorm.weight`, `${b}.attn_norm.weight`]);
    for (const x of ["q", "k", "v"]) {
      names.push([`${p}.self_attn.${x}_proj.weight`, `${b}.attn_${x}.weight`]);
      if (config.qkvBias) names.push([`${p}.self_attn.${x}_proj.bias`, `${b}.attn_${x}.bias`]);
    }
    if (config.qkNorm) {
      names.push([`${p}.self_attn.q_norm.weight`, `${b}.attn_q_norm.weight`]);
      names.push([`${p}.self_attn.k_norm.weight`, `${b}.attn_k_norm.weight`]);
    }
    names.push([`${p}.self_attn.o_proj.weight`, `${b}.attn_output.weight`]);
    if (sandwich) {
      names.push([`${p}.post_attention_layernorm.weight`, `${b}.post_attention_norm.weight`]);
      names.push([`${p}.pre_feedforward_layernorm.weight`, `${b}.ffn_norm.weight`]);
    } else names.push([`${p}.post_attention_layernorm.weight`, `${b}.ffn_norm.weight`]);
    names.push([`${p}.mlp.gate_proj.weight`, `${b}.ffn_gate.weight`]);
    names.push([`${p}.mlp.up_proj.weight`, `${b}.ffn_up.weight`]);
    names.push([`${p}.mlp.down_proj.weight`, `${b}.ffn_down.weight`]);
    if (sandwich) {
      names.push([`${p}.post_feedforward_layernorm.weight`, `${b}.post_ffw_norm.weight`]);
    }
  }
  names.push(["model.norm.weight", "output_norm.weight"]);
  if (!config.tieWordEmbeddings) names.push(["lm_head.weight", "output.weight"]);
  return names;
}

/**
 * The model's GGUF tensors: each reads its checkpoint tensor when written, merges the adapter
 * (if any), reorders Llama q/k rows, turns Gemma's zero-centred norm weights into their
 * multipliers, and is encoded as `type`.
 */
export function ggufModelTensors(
  config: ModelConfig,
  source: ModelTensorSource,
  type: GgufTensorType,
  adapter: MergeAdapter | null = null,
): GgufAsyncTensor[] {
  const out: GgufAsyncTensor[] = [];
  const permute = config.architecture === "llama";
  const gemma = config.architecture === "gemma3";
  for (const [hf, gguf] of ggufTensorNames(config)) {
    if (!source.has(hf)) throw new Error(`checkpoint lacks tensor ${hf}`);
    const shape = source.shape(hf);
    const ne = [...shape].reverse();
    const matrix = shape.length === 2;
    const tensorType: GgufTensorType = !matrix
      ? "F32"
      : ne[0] % ggmlBlockSize(type) === 0
      ? type
      : "F16";
    const heads = /\.q_proj\.weight$/.test(hf)
      ? config.numHeads
      : /\.k_proj\.weight$/.test(hf)
      ? config.numKvHeads
      : 0;
    out.push({
      name: gguf,
      ne,
      type: tensorType,
      data: () => {
        const whole = (permute && heads > 0) || isMerged(hf, adapter);
        // Tensors used as they are (the embedding, the LM head) stream in row chunks.
        if (!whole && matrix) return rowChunks(source, hf);
        if (gemma && /norm\.weight$/.test(hf)) {
          return source.read(hf).then((v) => gemma3NormWeight(hf, v, config));
        }
        return source.read(hf).then((v) => {
          const values = mergedTensor(hf, v, shape, adapter, config);
          return permute && heads > 0 ? permuteHeadRows(values, shape[0], shape[1], heads) : values;
        });
      },
    });
    if (hf === "model.norm.weight" && config.ropeScaling) {
      const factors = llama3RopeFactors(config);
      out.push({
        name: "rope_freqs.weight",
        ne: [factors.length],
        type: "F32",
        data: () => factors,
      });
    }
  }
  return out;
}
