/**
 * LoRA adapters as GGUF files that llama.cpp (and so Ollama and LM Studio) load with `--lora`,
 * written from slimtune's PEFT tensors without Python. Portable: chunks out.
 *
 * What llama.cpp expects of a LoRA GGUF (its adapter loader and its own PEFT converter):
 * - metadata `general.type = "adapter"`, `adapter.type = "lora"`, `adapter.lora.alpha` (f32) and
 *   `general.architecture` equal to the base model's (`qwen2` for Qwen2/2.5, `qwen3`, `gemma3`, `llama` for Llama
 *   and SmolLM2);
 * - per adapted matrix `blk.N.<module>.weight.lora_a` and `.lora_b`, modules `attn_q attn_k
 *   attn_v attn_output ffn_gate ffn_up ffn_down`;
 * - PEFT's `lora_A` `[r, in]` and `lora_B` `[out, r]` stored as they are, which in ggml order is
 *   `ne = [in, r]` and `[r, out]`: the loader checks `a.ne[0]` against the base matrix's input
 *   size, `b.ne[1]` against its output size, and `a.ne[1] == b.ne[0]` (the rank);
 * - the scale applied is alpha / r (times the user's scale);
 * - for the Llama family, the q and k rows of the base weights are reordered when converted (the
 *   two rotary halves of each head interleaved), so `lora_b` of q and k, whose rows are the same
 *   outputs, gets the same reordering (per attention head for q, per KV head for k); Qwen2 needs
 *   none.
 *
 * Q8_0 quantizes blocks of 32 along `ne[0]`: `lora_b`'s `ne[0]` is the rank, so with a rank that
 * is not a multiple of 32 those tensors are written as F16 instead (what llama.cpp's converter
 * does when a shape does not fit the blocks).
 *
 * @example
 * ```ts
 * import { adapterGgufChunks } from "./gguf_adapter.ts";
 * import { tinyConfig } from "../model/random_weights.ts";
 * const config = tinyConfig("qwen2", 1);
 * const tensors = new Map([
 *   ["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
 *     { shape: [2, 64] as [number, number], data: new Float32Array(128) }],
 *   ["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight",
 *     { shape: [64, 2] as [number, number], data: new Float32Array(128) }],
 * ]);
 * const bytes = [...adapterGgufChunks(tensors, { r: 2, alpha: 4, targets: ["q"], baseModel: "m" },
 *   config, "F32")];
 * ```
 */
import { ggufChunks, type GgufTensor, type GgufTensorType, Q8_0_BLOCK } from "../io/gguf_writer.ts";
import type { ModelConfig } from "../model/config.ts";
import { linearShape, peftName } from "../model/lora.ts";
import type { LinearName } from "../model/weights.ts";
import type { LoraTensors } from "../model/lora.ts";
import type { AdapterInfo } from "../io/peft_adapter.ts";

/** llama.cpp's module name of each slimtune linear name. */
export const GGUF_MODULES: Record<LinearName, string> = {
  q: "attn_q",
  k: "attn_k",
  v: "attn_v",
  o: "attn_output",
  gate: "ffn_gate",
  up: "ffn_up",
  down: "ffn_down",
};

/** The GGUF architecture name of a slimtune model configuration. */
export function ggufArchitecture(config: ModelConfig): string {
  return config.architecture;
}

/** True where llama.cpp's converter reorders the q/k rows (the Llama family). */
export function permutesQk(config: ModelConfig): boolean {
  return config.architecture === "llama";
}

/**
 * Reorders the rows of a row-major `[rows, cols]` matrix as the Llama converter reorders q/k
 * rows: within each of `heads` heads of `rows / heads` rows, the row at `half * h/2 + j` (first
 * or second rotary half) moves to `2 * j + half`.
 */
export function permuteHeadRows(
  w: Float32Array,
  rows: number,
  cols: number,
  heads: number,
): Float32Array {
  const perHead = rows / heads;
  if (!Number.isInteger(perHead) || perHead % 2 !== 0) {
    throw new RangeError(`${rows} rows do not split into ${heads} heads of an even size`);
  }
  const half = perHead / 2;
  const out = new Float32Array(w.length);
  for (let h = 0; h < heads; h++) {
    for (let part = 0; part < 2; part++) {
      for (let j = 0; j < half; j++) {
        const from = h * perHead + part * half + j;
        const to = h * perHead + 2 * j + part;
        out.set(w.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** GGUF tensor name of one LoRA matrix. */
export function ggufLoraName(block: number, name: LinearName, which: "A" | "B"): string {
  return `blk.${block}.${GGUF_MODULES[name]}.weight.lora_${which === "A" ? "a" : "b"}`;
}

/** The GGUF tensors of an adapter, in block then module order, each converted when written. */
export function adapterGgufTensors(
  tensors: LoraTensors,
  info: AdapterInfo,
  config: ModelConfig,
  type: GgufTensorType,
): GgufTensor[] {
  const out: GgufTensor[] = [];
  const r = info.r;
  for (let block = 0; block < config.numLayers; block++) {
    for (const name of info.targets) {
      const [outF, inF] = linearShape(config, name);
      const a = tensors.get(peftName(block, name, "A"));
      const b = tensors.get(peftName(block, name, "B"));
      if (!a || !b) throw new Error(`adapter lacks ${peftName(block, name, a ? "B" : "A")}`);
      const typeFor = (ne0: number): GgufTensorType =>
        type === "Q8_0" && ne0 % Q8_0_BLOCK !== 0 ? "F16" : type;
      out.push({
        name: ggufLoraName(block, name, "A"),
        ne: [inF, r],
        type: typeFor(inF),
        data: () => a.data,
      });
      const heads = name === "q" ? config.numHeads : name === "k" ? config.numKvHeads : 0;
      out.push({
        name: ggufLoraName(block, name, "B"),
        ne: [r, outF],
        type: typeFor(r),
        data: () =>
          heads > 0 && permutesQk(config) ? permuteHeadRows(b.data, outF, r, heads) : b.data,
      });
    }
  }
  return out;
}

/** The adapter as a GGUF file, one tensor converted and encoded at a time. */
export function adapterGgufChunks(
  tensors: LoraTensors,
  info: AdapterInfo,
  config: ModelConfig,
  type: GgufTensorType,
): Generator<Uint8Array> {
  return ggufChunks(
    [
      ["general.architecture", { type: "string", value: ggufArchitecture(config) }],
      ["general.type", { type: "string", value: "adapter" }],
      ["general.name", { type: "string", value: `LoRA adapter of ${info.baseModel}` }],
      ["adapter.type", { type: "string", value: "lora" }],
      ["adapter.lora.alpha", { type: "f32", value: info.alpha }],
    ],
    adapterGgufTensors(tensors, info, config, type),
  );
}
