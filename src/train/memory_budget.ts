/**
 * `--max-memory` before the session allocates: the `--keep-tapes auto` count within the budget,
 * the refusal of a run whose plan does not fit, and the line that says how many blocks keep their
 * tapes. Portable: the host hands in the process's resident size.
 */
import { UsageError } from "../cli/usage.ts";
import { keepsTapes, keptTapesWithin, type MemoryPlan } from "../methods/memory_plan.ts";
import type { WeightStore } from "../model/weights.ts";
import { BYTES_PER_MB, formatMB } from "../runtime/memory.ts";
import type { TrainArgs } from "./args.ts";
import { runMemoryPlan, runMemoryPlanOptions } from "./preflight.ts";
import type { RunDataReady } from "./run.ts";

/** Share of `--max-memory` that `--keep-tapes auto` leaves free. */
export const KEPT_TAPES_SPARE = 0.1;

/**
 * The working set a run will reach at most (bytes): the arena's high-water so far or what it holds
 * now plus the session's planned bytes, whichever is more, plus the JS bytes the store holds.
 */
export function plannedWorkingSet(
  arena: { used: number; highWater: number },
  jsBytes: number,
  sessionBytes: number,
): number {
  return Math.max(arena.highWater, arena.used + sessionBytes) + jsBytes;
}

/** What the budget is checked against, besides the arguments and the data. */
export interface MemoryBudgetParts {
  /** Threads the kernels compute with (named in the refusal). */
  threads: number;
  store: Pick<WeightStore, "config" | "jsBytesHeld">;
  arena: { used: number; highWater: number };
  /** The arena's bytes before the weights: the kernels' static data and every thread's scratch. */
  kernelBytes: number;
  /** The process's resident size now (null where the host cannot tell). */
  processBytes: () => number | null;
}

/** What {@link checkMaxMemory} chose. */
export interface MemoryBudgetChoice {
  /** Blocks (from the top) whose tapes mebp / mesp keep from the forward. */
  keptTapes: number;
  /** What the recompute does, for methods that keep tapes (null for the others). */
  recomputeLine: string | null;
}

/**
 * Picks `--keep-tapes auto`'s count within `--max-memory` and refuses, with a {@link UsageError}
 * naming the flag, a run whose plan does not fit: what the arena holds now (the kernels, every
 * thread's scratch, the weights) plus the session's plan (adapters, optimizer, a step's peak), and
 * the whole process (its resident size now plus what the session adds).
 */
export function checkMaxMemory(
  args: TrainArgs,
  parts: MemoryBudgetParts,
  ready: RunDataReady,
): MemoryBudgetChoice {
  const { threads, store, arena, kernelBytes } = parts;
  const { adapter, dataBytes, usedTokenizer } = ready;
  const config = store.config;
  const lora = { rank: adapter.r, alpha: adapter.alpha, targets: adapter.targets };
  const planSeqLen = Math.max(ready.seqLen, ready.evalSeqLen);
  // --keep-tapes auto: as many top blocks' tapes as the budget holds (none without a budget).
  let keptTapes = typeof args.keepTapes === "number" ? args.keepTapes : 0;
  if (args.maxMemory !== null) {
    const budget = args.maxMemory * BYTES_PER_MB;
    const js = store.jsBytesHeld();
    // The whole process: the runtime, the modules, the tokenizer, the data, the weights and the
    // kernels' memory as far as touched.
    const rssNow = parts.processBytes();
    const needs = (plan: MemoryPlan) => {
      const need = plannedWorkingSet(arena, js + dataBytes, plan.total);
      const processNeed = rssNow === null ? null : rssNow + Math.max(0, need - arena.used - js);
      return { need, processNeed };
    };
    if (args.keepTapes === "auto") {
      keptTapes = keptTapesWithin(
        runMemoryPlanOptions(args, config, planSeqLen, lora, 0),
        (plan) => {
          // A tenth of the budget stays free: the process grows by more than the plan between
          // collections, and a run that fills its budget to the byte would be stopped mid-way.
          const room = budget * (1 - KEPT_TAPES_SPARE);
          const { need, processNeed } = needs(plan);
          return need <= room && (processNeed === null || processNeed <= room);
        },
      ).keptTapes;
    }
    const plan = runMemoryPlan(args, config, planSeqLen, lora, keptTapes);
    const { need, processNeed } = needs(plan);
    const kept = keptTapes > 0 ? `, --keep-tapes ${keptTapes}` : "";
    if (processNeed !== null && need <= budget && processNeed > budget) {
      throw new UsageError(
        "--max-memory",
        `${args.maxMemory} MB is below this run's planned process peak of ` +
          `${formatMB(processNeed)}: the process holds ${formatMB(rssNow!)} now (the runtime, ` +
          `modules${usedTokenizer ? ", tokenizer" : ""}, data and weights), the session adds ` +
          `${formatMB(need - arena.used - js)} (planned working set of ${need} bytes); raise it, ` +
          `or lower --seq-len, --batch-size${kept ? ", --keep-tapes" : ""} or --threads` +
          (usedTokenizer ? ", or pre-tokenize the data (tools/pretokenize.ts)" : ""),
      );
    }
    if (need > budget) {
      const loading = arena.highWater > arena.used + plan.total
        ? `; loading the weights already took the arena to ${formatMB(arena.highWater)}`
        : "";
      throw new UsageError(
        "--max-memory",
        `${args.maxMemory} MB is below this run's planned working set of ${need} bytes ` +
          `(${formatMB(need)}): kernels and scratch for ${threads} thread(s) ` +
          `${formatMB(kernelBytes)}, weights ${formatMB(arena.used - kernelBytes)}, ` +
          `session plan ${formatMB(plan.total)}${kept}` +
          (js > 0 ? `, JS buffers ${formatMB(js)}` : "") +
          (dataBytes > 0 ? `, data rows ${formatMB(dataBytes)}` : "") +
          `${loading}; raise it, or lower --seq-len, --batch-size${kept ? ", --keep-tapes" : ""}` +
          ` or --threads`,
      );
    }
  }
  return { keptTapes, recomputeLine: recomputeLine(args, config.numLayers, keptTapes) };
}

/** How many blocks keep their tapes, for methods that recompute (null for the others). */
function recomputeLine(args: TrainArgs, numLayers: number, keptTapes: number): string | null {
  if (!keepsTapes(args.method)) return null;
  const L = numLayers;
  return keptTapes === 0
    ? `recompute: every block's activations in the backward (no tapes kept` +
      (args.maxMemory === null ? "; --max-memory with room, or --keep-tapes N, keeps some)" : ")")
    : `recompute: the top ${keptTapes} of ${L} blocks keep their tapes from the forward` +
      (keptTapes === L ? " (none is recomputed: full's speed)" : "") +
      (args.keepTapes === "auto"
        ? `, as many as fit in 90 % of --max-memory ${args.maxMemory} MB`
        : "");
}
