/**
 * The bundled demo run (`deno run -A train.ts` with no options): the demo model
 * (`src/model/demo_model.ts`) fine-tuned with MeSP on a small bundled chat dataset
 * (`examples/data/demo_chat.jsonl`): its data, the flags it sets, and what it prints around the
 * run. Random weights know no language, so the demo shows the machinery (loss falling, adapter,
 * checkpoints, memory), not a useful model.
 */
import { DEMO_MODEL_CONFIG } from "../model/demo_model.ts";
import type { TrainArgs } from "./args.ts";

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

/**
 * Whether a run ends with the demo's showcase (the base's and the adapted model's answers to a
 * held-out prompt): a demo run that trains, evaluates on the demo's held-out data and is not quiet.
 */
export function endsWithShowcase(
  args: Pick<TrainArgs, "model" | "steps" | "evalData" | "quiet">,
): boolean {
  return args.model === null && args.steps > 0 && args.evalData === demoEvalDataPath() &&
    !args.quiet;
}
