/**
 * Opens `--model` (a local Hugging Face model directory or URL) for the CLI: the weight store and,
 * when the model ships one, its tokenizer.
 */
import type { TextTokenizer } from "../data/tokenizer.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import type { TrainArgs } from "./args.ts";

/** Opens the model and its tokenizer. */
export function openModelDeno(
  args: TrainArgs,
  _kernels: Kernels,
  _arena: Arena,
): Promise<{ store: WeightStore; tokenizer: TextTokenizer | null }> {
  return Promise.reject(new Error(`--model ${args.model}: model loading is not wired in yet`));
}
