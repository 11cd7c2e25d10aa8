import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { parseModelConfig } from "../io/config.ts";
import type { ModelConfig } from "../model/config.ts";
import { tinyConfig } from "../model/random_weights.ts";
import { checkpointConfig } from "../../tools/make_checkpoint.ts";
import {
  gemma3EmbedScaleMismatch,
  gemma3Metadata,
  gemma3NormWeight,
  gemma3QueryNormFactor,
  gemma3SlidingPattern,
} from "./gguf_gemma3.ts";

const preset = (name: string, dtype: "bf16" | "f32" = "bf16") =>
  parseModelConfig(checkpointConfig({ preset: name, out: "", dtype }));

Deno.test("sliding_window_pattern: llama.cpp's n for each layer-type list, or a refusal", () => {
  strictEqual(gemma3SlidingPattern(preset("gemma3-270m"), "c"), 6); // 5 sliding, 1 full
  strictEqual(gemma3SlidingPattern(preset("tiny-gemma3"), "c"), 2); // sliding, full, sliding
  const c = tinyConfig("gemma3", 4);
  strictEqual(gemma3SlidingPattern({ ...c, layerTypes: ["full", "full", "full", "full"] }, "c"), 1);
  const allSliding: ModelConfig = {
    ...c,
    layerTypes: ["sliding", "sliding", "sliding", "sliding"],
  };
  strictEqual(gemma3SlidingPattern(allSliding, "c"), 0);
  throws(
    () =>
      gemma3SlidingPattern(
        { ...c, layerTypes: ["full", "sliding", "sliding", "full"] },
        "d/config.json",
      ),
    /^Error: d\/config\.json: layer types \[full,sliding,sliding,full\] have no llama\.cpp sliding_window_pattern/,
  );
  deepStrictEqual(gemma3Metadata({ ...c, layerTypes: ["full", "full", "full", "full"] }, "c"), []);
  deepStrictEqual(
    new Map(gemma3Metadata(preset("gemma3-270m"), "c")),
    new Map([
      ["gemma3.attention.sliding_window", { type: "u32", value: 512 }],
      ["gemma3.attention.sliding_window_pattern", { type: "u32", value: 6 }],
      ["gemma3.rope.freq_base_swa", { type: "f32", value: 10000 }],
    ]),
  );
});

Deno.test("q_norm carries the ratio of HF's score scale to llama.cpp's (1 for the released shapes)", () => {
  // tiny-gemma3: query_pre_attn_scalar 24, head_dim 32; llama.cpp scales by 32^-0.5.
  const tiny = preset("tiny-gemma3");
  ok(Math.abs(gemma3QueryNormFactor(tiny) - Math.sqrt(32 / 24)) < 1e-12);
  strictEqual(gemma3QueryNormFactor(preset("gemma3-270m")), 1);
  strictEqual(gemma3QueryNormFactor(preset("gemma3-1b")), 1);
  // A 62-layer model is llama.cpp's 27B: it scales by (hidden / heads)^-0.5, 168 as HF's scalar.
  const big: ModelConfig = {
    ...preset("gemma3-1b"),
    numLayers: 62,
    hiddenSize: 5376,
    numHeads: 32,
    headDim: 128,
    attentionScale: 168 ** -0.5,
  };
  ok(Math.abs(gemma3QueryNormFactor(big) - 1) < 1e-12);
  const w = Float32Array.of(0, 0.5, -1, 1e-8);
  deepStrictEqual(
    gemma3NormWeight("model.layers.0.post_feedforward_layernorm.weight", w, tiny),
    Float32Array.of(1, 1.5, 0, 1),
  );
  const f = gemma3QueryNormFactor(tiny);
  deepStrictEqual(
    gemma3NormWeight("model.layers.2.self_attn.q_norm.weight", w, tiny),
    Float32Array.of(f, 1.5 * f, 0, f),
  );
  deepStrictEqual(gemma3NormWeight("model.layers.2.self_attn.k_norm.weight", w, tiny)[1], 1.5);
});

Deno.test("embedding scale: a bf16 checkpoint's rounded √hidden is not llama.cpp's sqrtf", () => {
  deepStrictEqual(gemma3EmbedScaleMismatch(preset("gemma3-270m")), [
    25.25,
    Math.fround(Math.sqrt(640)),
  ]);
  strictEqual(gemma3EmbedScaleMismatch(preset("gemma3-270m", "f32")), null);
  strictEqual(gemma3EmbedScaleMismatch(preset("tiny-gemma3")), null, "√64 = 8 in every dtype");
});
