/**
 * What a run reads its data with, from its arguments: the files, the batch shape, packing, the
 * line limit, the tokenizer to load on demand and the padding id for data that needs none.
 */
import type { ModelConfig } from "../model/config.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import type { TrainArgs } from "./args.ts";
import type { RunDataSpec } from "./run.ts";

/**
 * The padding id when no tokenizer is loaded: config.json's `pad_token_id`, else its EOS id (the
 * first of a list), else 0 — the first that is inside the vocabulary. Padded positions have label
 * -100 and come after every real token of their row, so under causal attention any valid id gives
 * the same losses; this only has to be inside the vocabulary.
 */
export function padIdWithoutTokenizer(
  config: Pick<ModelConfig, "eosTokenId" | "vocabSize" | "padTokenId">,
): number {
  const valid = (id: number | null | undefined): id is number =>
    id !== null && id !== undefined && id >= 0 && id < config.vocabSize;
  if (valid(config.padTokenId)) return config.padTokenId;
  const eos = Array.isArray(config.eosTokenId) ? config.eosTokenId[0] : config.eosTokenId;
  return valid(eos) ? eos : 0;
}

/**
 * `args`' data spec for a model of `config`. `tokenizer`: loads the tokenizer if the data needs
 * it; `tokenizerHint`: added to the error when none can be had.
 */
export function runDataSpecFor(
  args: TrainArgs,
  config: Pick<ModelConfig, "eosTokenId" | "vocabSize" | "padTokenId">,
  tokenizer: () => Promise<TextTokenizer | null>,
  tokenizerHint: string,
): RunDataSpec {
  return {
    train: args.data,
    eval: args.evalData,
    batchSize: args.batchSize,
    seqLen: args.seqLen,
    packing: args.packing,
    maxLineBytes: args.maxLineBytes,
    tokenizer,
    tokenizerHint,
    padId: padIdWithoutTokenizer(config),
    steps: args.steps,
    session: { seed: args.seed },
  };
}
