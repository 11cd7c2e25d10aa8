/**
 * What a finished run says about itself: how to continue one that was stopped, and for a completed
 * one the losses and the files it wrote.
 */
import { perplexity } from "./metrics.ts";
import { countNoun } from "./run.ts";
import type { TrainResult } from "./trainer.ts";

/** The line for a run stopped by `signal` after `step` steps: how to resume it from `out`. */
export function stoppedText(signal: string, step: number, out: string): string {
  return `${signal}: stopped after ${countNoun(step, "step")}; resume with: --resume ${out}\n`;
}

/**
 * A completed training run's lines: the steps and the first and last loss (and the last evaluation
 * loss with its perplexity), then the adapter's files and the loss curve in `out`.
 */
export function doneLines(
  result: Pick<TrainResult, "step" | "history" | "evalLoss">,
  out: string,
): string[] {
  const first = result.history[0]?.loss;
  const last = result.history[result.history.length - 1]?.loss;
  return [
    `\ndone: ${countNoun(result.step, "step")}, loss ${first?.toFixed(4)} -> ${last?.toFixed(4)}` +
    (result.evalLoss !== null
      ? `, eval_loss ${result.evalLoss.toFixed(4)} (perplexity ${perplexity(result.evalLoss)})`
      : ""),
    `adapter: ${out}/adapter_config.json, ${out}/adapter_model.safetensors`,
    `loss curve: ${out}/loss.svg`,
  ];
}
