/**
 * What `train.ts` checks of its flags before it loads anything, with no file system: every flag
 * against the others and against the model's `config.json`, and the planned memory against what a
 * wasm memory (and the machine) can hold; and the memory plan's options for a run's flags. Each
 * failure is a {@link UsageError} naming the flag. The checks on disk are src/deno/preflight.ts.
 */
import type { ModelConfig } from "../model/config.ts";
import { headChunkRowsOf } from "../model/head_tables.ts";
import {
  keepsTapes,
  type MemoryPlan,
  type MemoryPlanOptions,
  planMemory,
} from "../methods/memory_plan.ts";
import { checkpointsBlocks, type LcsbSettings } from "../methods/registry.ts";
import { formatMB } from "../runtime/memory.ts";
import type { TrainArgs } from "./args.ts";
import { UsageError } from "../cli/usage.ts";

/** The largest wasm32 memory: what one training session can ever address. */
export const WASM_MEMORY_LIMIT_BYTES = 2 ** 32;

/** Flags that only one method reads: given with another method they would be ignored. */
const METHOD_FLAGS: [keyof TrainArgs, string, TrainArgs["method"]][] = [
  ["lcsbGroups", "--lcsb-groups", "lcsb"],
  ["lcsbPattern", "--lcsb-pattern", "lcsb"],
  ["mezoEps", "--mezo-eps", "mezo"],
];

/** Flags that would be ignored, and values that cannot work with each other. */
export function checkFlagCombinations(args: TrainArgs, given: ReadonlySet<keyof TrainArgs>): void {
  if (given.has("evalEvery") && args.evalData === null) {
    throw new UsageError("--eval-every", "needs --eval-data (there is nothing to evaluate)");
  }
  for (const [key, flag, method] of METHOD_FLAGS) {
    if (given.has(key) && args.method !== method) {
      throw new UsageError(flag, `only used by --method ${method} (this run is ${args.method})`);
    }
  }
  if (given.has("keepTapes") && !keepsTapes(args.method)) {
    throw new UsageError(
      "--keep-tapes",
      `only used by --method mebp or mesp (this run is ${args.method})`,
    );
  }
  if (given.has("checkpoints") && !checkpointsBlocks(args.method)) {
    throw new UsageError(
      "--checkpoints",
      `only used by --method mebp, mesp or lcsb (this run is ${args.method}, which ` +
        `${args.method === "full" ? "keeps every tape" : "has no backward"})`,
    );
  }
  if (given.has("clipStash") && (args.maxGradNorm === 0 || args.method === "mezo")) {
    throw new UsageError(
      "--clip-stash",
      args.method === "mezo" ? "mezo has no gradients to clip" : "needs --max-grad-norm > 0",
    );
  }
}

/**
 * Vocabulary rows per LM-head chunk for `--head-chunk-rows` (0 = the default), a multiple of 16:
 * the ONE value both the streamed store's head slot and the session's head chunks use (a slot
 * larger than the chunks the session asks for would be planned memory never used).
 */
export function headChunkRowsFor(args: Pick<TrainArgs, "headChunkRows">): number {
  return headChunkRowsOf(args.headChunkRows > 0 ? args.headChunkRows : undefined);
}

/**
 * Flags checked against the model's configuration and the memory a session can have: the wasm
 * memory's 4 GiB, or `systemBytes` (the machine's memory, null when unknown) when less.
 */
export function checkFlagsAgainstModel(
  args: TrainArgs,
  given: ReadonlySet<keyof TrainArgs>,
  config: ModelConfig,
  model: string,
  systemBytes: number | null,
): void {
  if (args.seqLen > config.maxPositionEmbeddings) {
    throw new UsageError(
      "--seq-len",
      `${args.seqLen} is above the model's max_position_embeddings ${config.maxPositionEmbeddings}` +
        ` (${model})`,
    );
  }
  if (given.has("lcsbGroups") && args.lcsbGroups > config.numLayers) {
    throw new UsageError(
      "--lcsb-groups",
      `${args.lcsbGroups} is more than the model's ${config.numLayers} layers`,
    );
  }
  if (typeof args.keepTapes === "number" && args.keepTapes > config.numLayers) {
    throw new UsageError(
      "--keep-tapes",
      `${args.keepTapes} is more than the model's ${config.numLayers} layers`,
    );
  }
  const plan = runMemoryPlan(args, config, args.seqLen, {
    rank: args.rank,
    alpha: args.alpha,
    targets: args.targets,
  });
  const ceiling = Math.min(WASM_MEMORY_LIMIT_BYTES, systemBytes ?? Infinity);
  if (plan.total > ceiling) {
    const what = ceiling === WASM_MEMORY_LIMIT_BYTES
      ? `the ${formatMB(ceiling)} a wasm memory can hold`
      : `this machine's ${formatMB(ceiling)} of memory`;
    const flag = args.batchSize > 1 ? "--batch-size" : "--seq-len";
    throw new UsageError(
      flag,
      `${args.batchSize} x ${args.seqLen} tokens per micro-batch plan a working set of ` +
        `${formatMB(plan.total)}, more than ${what}; lower --batch-size or --seq-len`,
    );
  }
}

/**
 * The session's memory plan for these flags, at `seqLen` tokens per row and this adapter, with
 * `keptTapes` kept tapes (default: `--keep-tapes` when a number, else none).
 */
export function runMemoryPlan(
  args: TrainArgs,
  config: ModelConfig,
  seqLen: number,
  lora: { rank: number; alpha: number; targets: TrainArgs["targets"] },
  keptTapes = typeof args.keepTapes === "number" ? args.keepTapes : 0,
): MemoryPlan {
  return planMemory(runMemoryPlanOptions(args, config, seqLen, lora, keptTapes));
}

/**
 * lcsb's grouping for a run: `--lcsb-groups` capped at the model's layers (a larger count given
 * outright is refused before this), and `--lcsb-pattern`; what the session and the plan both use.
 */
export function lcsbSettingsFor(
  args: Pick<TrainArgs, "lcsbGroups" | "lcsbPattern">,
  config: Pick<ModelConfig, "numLayers">,
): LcsbSettings {
  return { groups: Math.min(args.lcsbGroups, config.numLayers), pattern: args.lcsbPattern };
}

/** The {@link planMemory} options of {@link runMemoryPlan}. */
export function runMemoryPlanOptions(
  args: TrainArgs,
  config: ModelConfig,
  seqLen: number,
  lora: { rank: number; alpha: number; targets: TrainArgs["targets"] },
  keptTapes: number,
): MemoryPlanOptions {
  return {
    config,
    method: args.method,
    seqLen,
    batchSize: args.batchSize,
    lora,
    optimizer: args.optimizer,
    headChunkRows: headChunkRowsFor(args),
    lcsb: lcsbSettingsFor(args, config),
    gradAccum: args.gradAccum,
    maxGradNorm: args.maxGradNorm,
    clipStash: args.clipStash,
    keptTapes: keepsTapes(args.method) ? keptTapes : 0,
    checkpoints: args.checkpoints === "disk" ? "spill" : "memory",
  };
}
