/**
 * A run's arguments completed from what the command line leaves out: a resumed checkpoint's
 * recorded arguments, or the demo's defaults; the demo's data; and the refusals of a run with
 * nothing to train or evaluate on. Portable: the host reads the checkpoint and checks the files.
 */
import { UsageError } from "../cli/usage.ts";
import type { TrainArgs } from "./args.ts";
import { DEMO_DEFAULTS, demoDataPath, demoEvalDataPath } from "./demo.ts";

/** The checkpoint a run resumes: its recorded arguments and the run directory that holds it. */
export interface ResumedArgs {
  args: Record<string, unknown>;
  runDir: string;
}

/**
 * `args` (as parsed; `given`: the flags on the command line) completed: with `resumed`, the
 * checkpoint's arguments are the base and the given flags override them; without it, the demo
 * (no `--model`) takes its defaults for what is not given. Throws a {@link UsageError} for a run
 * without training data or, with `--steps 0`, without evaluation data.
 */
export function completeRunArgs(
  args: TrainArgs,
  given: ReadonlySet<keyof TrainArgs>,
  resumed: ResumedArgs | null,
): TrainArgs {
  if (resumed) {
    const merged = { ...args } as Record<string, unknown>;
    for (const [k, v] of Object.entries(resumed.args)) {
      if (k in args && !given.has(k as keyof TrainArgs)) merged[k] = v;
    }
    merged.resume = args.resume;
    // A resumed run writes where it was resumed from (a copied run directory stays a copy).
    if (!given.has("out")) merged.out = resumed.runDir;
    // Replacing is what the first run asked for; the resumed run continues it.
    if (!given.has("overwrite")) merged.overwrite = false;
    args = merged as unknown as TrainArgs;
  } else if (args.model === null) {
    for (const [k, v] of Object.entries(DEMO_DEFAULTS)) {
      if (!given.has(k as keyof TrainArgs)) {
        (args as unknown as Record<string, unknown>)[k] = v;
      }
    }
  }
  if (args.model === null && args.data === null) args.data = demoDataPath();
  if (args.model === null && args.evalData === null && args.steps > 0) {
    args.evalData = demoEvalDataPath();
  }
  if (args.compareBase && args.evalData === null) {
    // The demo's default asks for it only where it has evaluation data.
    if (given.has("compareBase")) {
      throw new UsageError("--compare-base", "needs --eval-data FILE.jsonl");
    }
    args.compareBase = false;
  }
  if (args.steps > 0 && args.data === null) {
    throw new UsageError("--data", "required when training a --model (a JSONL file)");
  }
  if (args.steps === 0 && args.evalData === null) {
    throw new UsageError("--steps", "0 only makes sense with --eval-data (evaluation only)");
  }
  return args;
}
