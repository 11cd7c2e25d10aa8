import assert from "node:assert/strict";
import { UsageError } from "../cli/usage.ts";
import { presetModelConfig } from "../io/presets.ts";
import { BYTES_PER_MB } from "../runtime/memory.ts";
import { parseTrainArgs } from "./args.ts";
import {
  checkMaxMemory,
  KEPT_TAPES_SPARE,
  type MemoryBudgetParts,
  plannedWorkingSet,
} from "./memory_budget.ts";
import { runMemoryPlan } from "./preflight.ts";
import type { RunDataReady } from "./run.ts";

const config = presetModelConfig("smollm2-135m");
const MB = BYTES_PER_MB;
const KERNEL_BYTES = 20 * MB;
const WEIGHT_BYTES = 80 * MB;
const JS_BYTES = 3 * MB;
const DATA_BYTES = 2 * MB;

const argsOf = (...argv: string[]) =>
  parseTrainArgs(["--model", "m", "--data", "d.jsonl", "--seq-len", "64", ...argv]).args;

function partsOf(rss: number | null = null): MemoryBudgetParts & { rssReads: number } {
  const parts = {
    threads: 2,
    store: { config, jsBytesHeld: () => JS_BYTES },
    arena: { used: KERNEL_BYTES + WEIGHT_BYTES, highWater: KERNEL_BYTES + WEIGHT_BYTES },
    kernelBytes: KERNEL_BYTES,
    rssReads: 0,
    processBytes: () => {
      parts.rssReads++;
      return rss;
    },
  };
  return parts;
}

function readyOf(args: ReturnType<typeof argsOf>, usedTokenizer = false): RunDataReady {
  return {
    seqLen: args.seqLen,
    evalSeqLen: 0,
    dataBytes: DATA_BYTES,
    usedTokenizer,
    adapter: { r: args.rank, alpha: args.alpha, targets: args.targets, baseModel: "m" },
  };
}

/** The working set {@link checkMaxMemory} plans for `keptTapes` blocks keeping their tapes. */
function need(args: ReturnType<typeof argsOf>, keptTapes: number): number {
  const lora = { rank: args.rank, alpha: args.alpha, targets: args.targets };
  const plan = runMemoryPlan(args, config, args.seqLen, lora, keptTapes);
  const arena = partsOf().arena;
  return plannedWorkingSet(arena, JS_BYTES + DATA_BYTES, plan.total);
}

const refused = (reason: RegExp) => (e: unknown) =>
  e instanceof UsageError && e.flag === "--max-memory" && reason.test(e.reason);

Deno.test("plannedWorkingSet: the arena's high-water or its bytes plus the plan, plus JS bytes", () => {
  assert.equal(plannedWorkingSet({ used: 100, highWater: 100 }, 7, 50), 157);
  // Loading took the arena higher than the session will: the high-water counts.
  assert.equal(plannedWorkingSet({ used: 100, highWater: 400 }, 7, 50), 407);
});

Deno.test("checkMaxMemory: without a budget, the given count and no process read", () => {
  const parts = partsOf(1e12);
  const none = checkMaxMemory(argsOf("--method", "mebp"), parts, readyOf(argsOf()));
  assert.equal(none.keptTapes, 0);
  assert.match(none.recomputeLine!, /every block's activations.*--keep-tapes N, keeps some\)/);
  const two = checkMaxMemory(
    argsOf("--method", "mesp", "--keep-tapes", "2"),
    parts,
    readyOf(argsOf()),
  );
  assert.equal(two.keptTapes, 2);
  assert.equal(
    two.recomputeLine,
    `recompute: the top 2 of ${config.numLayers} blocks keep their tapes from the forward`,
  );
  assert.equal(parts.rssReads, 0);
  // Methods without tapes say nothing about recomputing.
  assert.equal(
    checkMaxMemory(argsOf("--method", "full"), parts, readyOf(argsOf())).recomputeLine,
    null,
  );
});

Deno.test("checkMaxMemory: a budget below the planned working set is refused with its parts", () => {
  const args = argsOf("--method", "mebp");
  args.maxMemory = Math.floor(need(args, 0) / MB) - 1;
  assert.throws(
    () => checkMaxMemory(args, partsOf(), readyOf(args)),
    refused(
      new RegExp(
        `below this run's planned working set of ${need(args, 0)} bytes .*` +
          `scratch for 2 thread\\(s\\) 20\\.0 MB, weights 80\\.0 MB, .*JS buffers 3\\.0 MB, ` +
          `data rows 2\\.0 MB; raise it`,
      ),
    ),
  );
  // One MB above the plan, it runs.
  args.maxMemory = Math.ceil(need(args, 0) / MB) + 1;
  assert.equal(checkMaxMemory(args, partsOf(), readyOf(args)).keptTapes, 0);
});

Deno.test("checkMaxMemory: the whole process counts, and its refusal names the tokenizer", () => {
  const args = argsOf("--method", "mebp");
  args.maxMemory = Math.ceil(need(args, 0) / MB) + 1;
  // The process already holds the budget: the session's additions cannot fit.
  const rss = args.maxMemory * MB;
  assert.throws(
    () => checkMaxMemory(args, partsOf(rss), readyOf(args, true)),
    refused(/planned process peak .*modules, tokenizer, data and weights.*pre-tokenize the data/),
  );
  assert.throws(
    () => checkMaxMemory(args, partsOf(rss), readyOf(args, false)),
    (e) => refused(/planned process peak/)(e) && !/tokenizer/.test((e as UsageError).reason),
  );
});

Deno.test("checkMaxMemory: --keep-tapes auto keeps as many tapes as fit in 90 % of the budget", () => {
  const args = argsOf("--method", "mebp", "--keep-tapes", "auto");
  const L = config.numLayers;
  for (const wanted of [0, 3, L]) {
    args.maxMemory = Math.ceil(need(args, wanted) / (1 - KEPT_TAPES_SPARE) / MB);
    const room = args.maxMemory * MB * (1 - KEPT_TAPES_SPARE);
    const { keptTapes, recomputeLine } = checkMaxMemory(args, partsOf(), readyOf(args));
    assert.ok(need(args, keptTapes) <= room, `${keptTapes} tapes fit`);
    // Not monotone (a kept block drops its checkpoint): no larger count fits either.
    for (let more = keptTapes + 1; more <= L; more++) {
      assert.ok(need(args, more) > room, `${more} tapes do not fit`);
    }
    assert.ok(keptTapes >= wanted);
    if (keptTapes > 0) {
      assert.match(
        recomputeLine!,
        new RegExp(`as many as fit in 90 % of --max-memory ${args.maxMemory} MB$`),
      );
    }
    if (keptTapes === L) assert.match(recomputeLine!, /none is recomputed/);
  }
  // A process at the budget with the fewest tapes: no count fits in 90 % of it, none is kept, and
  // the run still fits the whole budget.
  args.maxMemory = Math.ceil(need(args, L) / MB) * 2;
  const rss = args.maxMemory * MB - (need(args, 0) - KERNEL_BYTES - WEIGHT_BYTES - JS_BYTES);
  const choice = checkMaxMemory(args, partsOf(rss), readyOf(args));
  assert.equal(choice.keptTapes, 0);
  assert.match(choice.recomputeLine!, /no tapes kept\)$/);
});
