/**
 * Learning-rate schedules with Hugging Face `transformers` semantics
 * (`get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup`,
 * `get_cosine_schedule_with_warmup` with the default half cycle).
 *
 * `step` is the number of optimizer steps already completed, i.e. the 0-based index of the step
 * about to be taken, exactly what PyTorch's `LambdaLR` passes: with warm-up the very first step
 * runs at learning rate 0, as in `transformers`.
 *
 * @example
 * ```ts
 * import { learningRate } from "./schedule.ts";
 * learningRate("linear", 1e-3, 5, 100, 10); // 5e-4: half way through the warm-up
 * ```
 */

/** The schedule shapes `learningRate` knows. */
export type ScheduleKind = "constant" | "linear" | "cosine";

/**
 * The learning rate for optimizer step `step` (0-based) of `totalSteps`: linear warm-up from 0 to
 * `baseLr` over `warmupSteps`, then constant, linear decay to 0 at `totalSteps`, or a half cosine
 * to 0 at `totalSteps`. Past `totalSteps` the decaying schedules stay at 0 (`transformers`' cosine
 * would rise again there; a trainer never steps that far).
 */
export function learningRate(
  kind: ScheduleKind,
  baseLr: number,
  step: number,
  totalSteps: number,
  warmupSteps: number,
): number {
  for (
    const [name, v] of [["step", step], ["totalSteps", totalSteps], ["warmupSteps", warmupSteps]]
  ) {
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
    }
  }
  if (step < warmupSteps) return baseLr * (step / Math.max(1, warmupSteps));
  switch (kind) {
    case "constant":
      return baseLr;
    case "linear":
      return baseLr * Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
    case "cosine": {
      if (step >= totalSteps) return 0;
      const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
      return baseLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
    default:
      throw new Error(`unknown schedule ${kind as string}`);
  }
}
