/**
 * The training settings of a run from its arguments: what the session is built with (method,
 * optimizer, clipping, lcsb and MeZO settings, head chunk, kept tapes, block checkpoints) and the
 * step loop's (accumulation, schedule, evaluation and save intervals).
 */
import type { CheckpointsOption } from "../methods/block_checkpoints.ts";
import type { ModelConfig } from "../model/config.ts";
import type { TrainArgs } from "./args.ts";
import { headChunkRowsFor, lcsbSettingsFor } from "./preflight.ts";
import type { RunSpec } from "./run.ts";

/** The fields of a {@link RunSpec} that come from the arguments alone. */
export type RunSettings = Pick<
  RunSpec,
  "session" | "gradAccum" | "schedule" | "evalEvery" | "saveEvery"
>;

/** `args`' settings for a model of `config`; `checkpoints`: where the block checkpoints go. */
export function runSettingsFor(
  args: TrainArgs,
  config: ModelConfig,
  checkpoints: CheckpointsOption,
): RunSettings {
  return {
    session: {
      method: args.method,
      optimizer: { kind: args.optimizer, lr: args.lr, weightDecay: args.weightDecay },
      maxGradNorm: args.maxGradNorm,
      clipStash: args.clipStash,
      lcsb: lcsbSettingsFor(args, config),
      mezo: { eps: args.mezoEps },
      seed: args.seed,
      // The streamed store's head slot was sized with the same rows (src/deno/model.ts).
      headChunkRows: headChunkRowsFor(args),
      keptTapes: typeof args.keepTapes === "number" ? args.keepTapes : 0,
      checkpoints,
    },
    gradAccum: args.gradAccum,
    schedule: { kind: args.lrSchedule, baseLr: args.lr, warmupSteps: args.warmupSteps },
    evalEvery: args.evalEvery,
    saveEvery: args.saveEvery,
  };
}
