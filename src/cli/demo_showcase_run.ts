/**
 * What the train CLI hands the demo's showcase after a demo run, and what it gets back: the
 * contract between the train CLI and the generation code, which never import each other
 * (`train.ts` joins them).
 */
import type { TextTokenizer } from "../data/tokenizer.ts";
import type { AdapterInfo } from "../io/peft_adapter.ts";
import type { Kernels } from "../kernels/abi.ts";
import type { LoraTensors } from "../model/lora.ts";
import type { WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";

/** A finished demo run, as the showcase reads it. */
export interface DemoShowcaseRun {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  loadTokenizer: () => Promise<TextTokenizer | null>;
  adapter: AdapterInfo;
  /** The trained adapter's tensors. */
  loraTensors: () => LoraTensors;
  /** The held-out JSONL file whose first chat is the prompt. */
  evalDataPath: string;
}

/** The text that shows what the adapter changed. */
export type DemoShowcase = (run: DemoShowcaseRun) => Promise<string>;
