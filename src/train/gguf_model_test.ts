import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { ropeInverseFrequencies } from "../model/rope_tables.ts";
import { tinyConfig } from "../model/random_weights.ts";
import { ggufTensorNames, llama3RopeFactors } from "./gguf_model.ts";

Deno.test("rope_freqs: dividing the plain frequencies by them gives slimtune's llama3-scaled ones", () => {
  const config = {
    ...tinyConfig("llama"),
    headDim: 64,
    ropeTheta: 500000,
    ropeScaling: {
      type: "llama3" as const,
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    },
  };
  const factors = llama3RopeFactors(config);
  const plain = ropeInverseFrequencies({ ...config, ropeScaling: null });
  const scaled = ropeInverseFrequencies(config);
  strictEqual(factors.length, 32);
  strictEqual(factors[0], 1);
  strictEqual(factors[31], 32);
  ok(factors.some((f) => f > 1 && f < 32), "the smooth band is exercised");
  for (let i = 0; i < 32; i++) {
    const rel = Math.abs(plain[i] / factors[i] - scaled[i]) / scaled[i];
    ok(rel < 1e-6, `frequency ${i}: ${plain[i] / factors[i]} vs ${scaled[i]}`);
  }
});

Deno.test("GGUF tensor names: llama.cpp's, per architecture", () => {
  const q2 = new Map(ggufTensorNames(tinyConfig("qwen2", 1)));
  strictEqual(q2.get("model.layers.0.self_attn.q_proj.bias"), "blk.0.attn_q.bias");
  strictEqual(q2.get("model.layers.0.post_attention_layernorm.weight"), "blk.0.ffn_norm.weight");
  strictEqual(q2.has("lm_head.weight"), !tinyConfig("qwen2", 1).tieWordEmbeddings);
  const q3 = new Map(ggufTensorNames(tinyConfig("qwen3", 1)));
  strictEqual(q3.get("model.layers.0.self_attn.k_norm.weight"), "blk.0.attn_k_norm.weight");
  const ll = ggufTensorNames({ ...tinyConfig("llama", 2), tieWordEmbeddings: false });
  deepStrictEqual(ll.at(-1), ["lm_head.weight", "output.weight"]);
  strictEqual(ll.length, 1 + 2 * 9 + 2);
});

Deno.test("GGUF tensor names of Gemma 3: llama.cpp's gemma3 set, the sandwich norms included", () => {
  const g = ggufTensorNames(tinyConfig("gemma3", 1));
  deepStrictEqual(g.map(([, gguf]) => gguf), [
    "token_embd.weight",
    "blk.0.attn_norm.weight",
    "blk.0.attn_q.weight",
    "blk.0.attn_k.weight",
    "blk.0.attn_v.weight",
    "blk.0.attn_q_norm.weight",
    "blk.0.attn_k_norm.weight",
    "blk.0.attn_output.weight",
    "blk.0.post_attention_norm.weight",
    "blk.0.ffn_norm.weight",
    "blk.0.ffn_gate.weight",
    "blk.0.ffn_up.weight",
    "blk.0.ffn_down.weight",
    "blk.0.post_ffw_norm.weight",
    "output_norm.weight",
  ]);
  const byHf = new Map(g);
  strictEqual(byHf.get("model.layers.0.pre_feedforward_layernorm.weight"), "blk.0.ffn_norm.weight");
  strictEqual(
    byHf.get("model.layers.0.post_attention_layernorm.weight"),
    "blk.0.post_attention_norm.weight",
  );
});
