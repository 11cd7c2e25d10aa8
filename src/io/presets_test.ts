import assert from "node:assert/strict";
import { DEMO_MODEL_CONFIG } from "../model/demo_model.ts";
import { presetModelConfig, PRESETS } from "./presets.ts";

Deno.test("presets: every preset parses; Qwen2.5-0.5B has its published shape", () => {
  for (const name of Object.keys(PRESETS)) assert.ok(presetModelConfig(name).hiddenSize > 0, name);
  const c = presetModelConfig("qwen2.5-0.5b");
  assert.deepEqual(
    [c.architecture, c.hiddenSize, c.intermediateSize, c.numLayers, c.numHeads, c.numKvHeads],
    ["qwen2", 896, 4864, 24, 14, 2],
  );
  assert.deepEqual([c.headDim, c.vocabSize, c.qkvBias, c.tieWordEmbeddings], [
    64,
    151936,
    true,
    true,
  ]);
});

Deno.test("presets: slimtune-demo is the bundled demo model's config", () => {
  const demo = presetModelConfig("slimtune-demo");
  for (const [key, value] of Object.entries(DEMO_MODEL_CONFIG)) {
    assert.deepEqual(demo[key as keyof typeof demo], value, key);
  }
});

Deno.test("presets: overrides go on top; an unknown name is refused, naming the known ones", () => {
  const c = presetModelConfig("qwen2.5-0.5b", { numLayers: 2, vocabSize: 4096 });
  assert.deepEqual([c.numLayers, c.vocabSize, c.hiddenSize], [2, 4096, 896]);
  assert.throws(() => presetModelConfig("gpt2"), /unknown preset "gpt2" \(known: qwen2\.5-0\.5b,/);
});
