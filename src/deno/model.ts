/**
 * Opens `--model` (a local Hugging Face model directory or an http(s) URL of one) for the train
 * CLI: the weight store through `openModelDir` (src/deno/model_source.ts) and a loader for its
 * tokenizer (`openModelTokenizer`), called only when the data has a line that needs it.
 */
import { checkTokenizerFits, isUrl, openModelTokenizer } from "./model_location.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import { checkpointFiles, readCheckpointConfig } from "../io/model_source.ts";
import { openModelDir } from "./model_source.ts";
import { dirFiles } from "./model_source_files.ts";
import type { ModelConfig } from "../model/config.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import type { TrainArgs } from "../train/args.ts";
import { headChunkRowsFor } from "../train/preflight.ts";
import { defaultCacheDir } from "./cache_dir.ts";

/** The model's `config.json` only: what the CLI checks its flags against before loading. */
export async function readModelConfigDeno(model: string): Promise<ModelConfig> {
  return (await readCheckpointConfig(isUrl(model) ? checkpointFiles(model) : dirFiles(model)))
    .config;
}

/**
 * Opens the model's weights (per --quant/--weights/--cache-dir). The tokenizer is not loaded:
 * `loadTokenizer` loads it (null when the model ships none) and checks that its ids fit the
 * model's embedding; each call loads it again, so the caller keeps the one it got.
 */
export async function openModelDeno(
  args: TrainArgs,
  kernels: Kernels,
  arena: Arena,
): Promise<{ store: WeightStore; loadTokenizer: () => Promise<TextTokenizer | null> }> {
  const model = args.model!;
  if (args.weights === "auto") throw new TypeError("--weights auto must be resolved first");
  const store = await openModelDir({
    source: model,
    quant: args.quant,
    weights: args.weights,
    cacheDir: args.cacheDir ?? undefined,
    headChunkRows: headChunkRowsFor(args),
    kernels,
    arena,
  });
  return { store, loadTokenizer: modelTokenizerLoader(args, store.config.vocabSize) };
}

/**
 * A loader of `--model`'s tokenizer (null when the model ships none) that checks that its ids fit
 * an embedding of `vocabSize` rows; each call loads it again. Needs no open model, so the data
 * can be tokenized before the weights are loaded.
 */
export function modelTokenizerLoader(
  args: Pick<TrainArgs, "model" | "cacheDir">,
  vocabSize: number,
): () => Promise<TextTokenizer | null> {
  const model = args.model!;
  return async () => {
    // The tokenizer's snapshot goes where the weights' cache goes (or the user's cache folder).
    const tokenizer = await openModelTokenizer(model, args.cacheDir ?? defaultCacheDir());
    if (tokenizer) checkTokenizerFits(model, tokenizer, vocabSize);
    return tokenizer;
  };
}
