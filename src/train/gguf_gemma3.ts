/**
 * What a Gemma 3 text model needs to run in llama.cpp's `gemma3` graph as it runs in slimtune
 * (HF `Gemma3ForCausalLM` semantics). Portable.
 *
 * llama.cpp's gemma3 loader and graph (the facts this file encodes):
 * - norms multiply by their weight as stored, so the exported norm weights are `1 + w` (rounded
 *   to f32, the value transformers multiplies by), for all seven norms: `attn_norm`,
 *   `post_attention_norm`, `ffn_norm` (HF `pre_feedforward_layernorm`), `post_ffw_norm`,
 *   `attn_q_norm`, `attn_k_norm` and `output_norm`;
 * - the score scale is not a key: it is `1/sqrt(head_dim)`, or `1/sqrt(n_embd / n_head)` (integer
 *   division) for a 62-layer model (its 27B), while HF scales by `query_pre_attn_scalar^-0.5`.
 *   The ratio is folded into the `attn_q_norm` weights: q is normalized, times its norm weight,
 *   rotated (linear), then scaled, so multiplying the norm weight by `hf / llama.cpp` scales the
 *   scores exactly as HF does (the real 270M / 1B / 4B / 12B / 27B configs need factor 1);
 * - the embedding rows are multiplied by `sqrtf(n_embd)` in f32; a checkpoint whose
 *   `torch_dtype` rounds √hidden (bf16: 25.25 at 640) is scaled differently there (see
 *   {@link gemma3EmbedScaleMismatch});
 * - sliding layers: `attention.sliding_window` (query i sees key j iff i - j < window) and
 *   `attention.sliding_window_pattern` = n, meaning layer l slides iff `l % n < n - 1` (every n-th
 *   layer full; 0: every layer slides), with `rope.freq_base_swa` on sliding layers and
 *   `rope.freq_base` on full ones; a `layer_types` list that no such n describes is refused;
 * - the GELU of the gated MLP is ggml's tanh approximation, which its CPU backend reads from a
 *   table of f16 inputs and outputs: measured, not correctable here (tests/llama_cpp_test.ts).
 */
import type { GgufValue } from "../io/gguf_writer.ts";
import { attentionScale, layerType, type ModelConfig } from "../model/config.ts";

/** llama.cpp's score scale of a gemma3 model of this shape. */
function llamaCppAttentionScale(c: ModelConfig): number {
  return c.numLayers === 62
    ? 1 / Math.sqrt(Math.floor(c.hiddenSize / c.numHeads))
    : 1 / Math.sqrt(c.headDim);
}

/** The factor folded into the q-norm weights so llama.cpp's scores are scaled as slimtune's. */
export function gemma3QueryNormFactor(c: ModelConfig): number {
  return attentionScale(c) / llamaCppAttentionScale(c);
}

/**
 * The `n` of llama.cpp's `sliding_window_pattern` that gives each layer its type (1: no layer
 * slides; 0: every layer does). Throws naming `where` when no n does.
 */
export function gemma3SlidingPattern(c: ModelConfig, where: string): number {
  const sliding = Array.from({ length: c.numLayers }, (_, i) => layerType(c, i) === "sliding");
  const fits = (n: number) => sliding.every((s, l) => s === (n === 0 || l % n < n - 1));
  for (let n = 0; n <= c.numLayers + 1; n++) if (fits(n)) return n;
  const types = sliding.map((s) => s ? "sliding" : "full").join(",");
  throw new Error(
    `${where}: layer types [${types}] have no llama.cpp sliding_window_pattern (every n-th ` +
      "layer full); this Gemma 3 model cannot be written as a GGUF model",
  );
}

/** The `gemma3.*` keys beyond the common ones: the sliding layers. */
export function gemma3Metadata(c: ModelConfig, where: string): [string, GgufValue][] {
  const pattern = gemma3SlidingPattern(c, where);
  if (pattern === 1) return [];
  return [
    ["gemma3.attention.sliding_window", { type: "u32", value: c.slidingWindow ?? 0 }],
    ["gemma3.attention.sliding_window_pattern", { type: "u32", value: pattern }],
    ["gemma3.rope.freq_base_swa", { type: "f32", value: c.ropeLocalTheta ?? c.ropeTheta }],
  ];
}

/**
 * `[slimtune's, llama.cpp's]` embedding scale when they differ (a checkpoint whose dtype rounds
 * √hidden), else null.
 */
export function gemma3EmbedScaleMismatch(c: ModelConfig): [number, number] | null {
  const ours = c.embedScale ?? 1;
  const theirs = Math.fround(Math.sqrt(c.hiddenSize));
  return Math.fround(ours) === theirs ? null : [ours, theirs];
}

/**
 * A Gemma norm weight as llama.cpp multiplies by it: `1 + w` in f32, and for `q_norm` times
 * {@link gemma3QueryNormFactor}.
 */
export function gemma3NormWeight(hfName: string, w: Float32Array, c: ModelConfig): Float32Array {
  const factor = /\.q_norm\.weight$/.test(hfName) ? gemma3QueryNormFactor(c) : 1;
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = Math.fround(1 + w[i]) * factor;
  return out;
}
