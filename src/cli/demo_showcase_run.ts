/**
 * What the train CLI hands the demo's showcase, and what it gets back: the contract between the
 * train CLI and the generation code, which never import each other (`train.ts` joins them).
 *
 * The showcase works in two parts so that no whole tokenizer is held while training: its prompt
 * is encoded while the data's tokenizer is loaded, before training; after training, its answers
 * are decoded by a decoder that holds only the texts of the ids it decodes.
 */
import type { TextTokenizer } from "../data/tokenizer.ts";
import type { AdapterInfo } from "../io/peft_adapter.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { LoraTensors } from "../model/lora.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";

/** The held-out prompt, encoded. */
export interface ShowcasePrompt {
  /** The user's text, as printed. */
  prompt: string;
  /** The answer the held-out data gives, or null. */
  reference: string | null;
  /** Token ids of the rendered chat, ready for the answer. */
  ids: number[];
  /** Ids that end an answer (EOS). */
  stopIds: number[];
}

/** A finished demo run, as the showcase reads it. */
export interface DemoShowcaseRun {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  prompt: ShowcasePrompt;
  /** A new tokenizer that decodes `ids` (it need not encode); released once it has decoded. */
  loadDecoder: (ids: number[]) => Promise<TextTokenizer>;
  adapter: AdapterInfo;
  /** The trained adapter's tensors. */
  loraTensors: () => LoraTensors;
}

/** The showcase's two parts. */
export interface DemoShowcase {
  /** The first chat of the held-out JSONL file, encoded with the data's tokenizer. */
  prompt(tokenizer: TextTokenizer, evalDataPath: string): Promise<ShowcasePrompt>;
  /** The text that shows what the adapter changed. */
  answers(run: DemoShowcaseRun): Promise<string>;
}
