import assert from "node:assert/strict";
import type { ModelConfig } from "../model/config.ts";
import { DEMO_MODEL_CONFIG } from "../model/demo_model.ts";
import { tinyConfig } from "../model/random_weights.ts";
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

/**
 * Where the unit tests' in-memory config (`tinyConfig`) and the `tiny-*` preset, whose checkpoints
 * the file-based tests write, differ on purpose; every other field is the same. A field listed
 * here that no longer differs is an error too, so the list stays what it says.
 */
const TINY_DIFFERENCES: Record<string, Partial<Record<keyof ModelConfig, string>>> = {
  all: {
    vocabSize: "300 rows in memory (not a multiple of 16: the head's last chunk is partial); 512",
    maxPositionEmbeddings: "only the command lines read it, as a checkpoint's position limit",
    bosTokenId: "a checkpoint's end and padding ids; the unit tests' random ids have none",
    eosTokenId: "a checkpoint's end and padding ids; the unit tests' random ids have none",
  },
  qwen3: {
    headDim: "32 in a checkpoint: heads · head_dim = 128, a multiple of the int4 group of 64",
    tieWordEmbeddings: "the checkpoints cover an untied LM head, the unit tests a tied one",
  },
  llama: {
    tieWordEmbeddings: "the checkpoints cover an untied LM head, the unit tests a tied one",
    ropeScaling: "original context 64 in memory, 256 in a checkpoint (both give all three bands)",
  },
  gemma3: {
    headDim: "32 in a checkpoint: heads · head_dim = 128, a multiple of the int4 group of 64",
    attentionScale: "query_pre_attn_scalar 20 in memory, 24 in a checkpoint; neither is head_dim",
    slidingWindow: "3 keys in memory, 4 in a checkpoint; both shorter than the tests' sequences",
    padTokenId: "a checkpoint's end and padding ids; the unit tests' random ids have none",
  },
};

Deno.test("presets: tinyConfig(arch) is the tiny-<arch> preset but for the listed differences", () => {
  for (const arch of ["qwen2", "qwen3", "llama", "gemma3"] as const) {
    const preset = presetModelConfig(`tiny-${arch}`);
    const tiny = tinyConfig(arch, preset.numLayers);
    const allowed = { ...TINY_DIFFERENCES.all, ...TINY_DIFFERENCES[arch] };
    const keys = new Set([...Object.keys(preset), ...Object.keys(tiny)]) as Set<keyof ModelConfig>;
    for (const key of keys) {
      const same = JSON.stringify(preset[key]) === JSON.stringify(tiny[key]);
      if (key in allowed) assert.ok(!same, `${arch}.${key} is listed as a difference but is equal`);
      else assert.deepEqual(tiny[key], preset[key], `${arch}.${key}`);
    }
  }
});

Deno.test("presets: both Llama 3 RoPE scalings put head_dim 16's wavelengths in all three bands", () => {
  // Llama 3's rescaling: wavelengths below original / highFreqFactor are kept, those above
  // original / lowFreqFactor divided by the factor, the band between smoothed.
  const bands = (c: ModelConfig) => {
    const s = c.ropeScaling!;
    const seen = new Set<string>();
    for (let i = 0; i < c.headDim / 2; i++) {
      const wavelength = 2 * Math.PI * Math.pow(c.ropeTheta, (2 * i) / c.headDim);
      if (wavelength < s.originalMaxPositionEmbeddings / s.highFreqFactor) seen.add("high");
      else if (wavelength > s.originalMaxPositionEmbeddings / s.lowFreqFactor) seen.add("low");
      else seen.add("smoothed");
    }
    return [...seen].sort();
  };
  const inMemory = tinyConfig("llama");
  const checkpoint = presetModelConfig("tiny-llama");
  const rest = (c: ModelConfig) => ({ ...c.ropeScaling!, originalMaxPositionEmbeddings: 0 });
  assert.deepEqual(rest(inMemory), rest(checkpoint), "the scalings differ only in their context");
  for (const c of [inMemory, checkpoint]) {
    assert.equal(c.headDim, 16);
    assert.deepEqual(bands(c), ["high", "low", "smoothed"]);
  }
});
