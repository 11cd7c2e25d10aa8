/**
 * Human-facing progress: on a terminal a single redrawn line with a bar (step, loss, tokens/s,
 * ETA, memory); otherwise (logs, pipes, CI) one plain line per step. Portable: the reporter takes
 * a `write` function and whether the target is a TTY.
 *
 * @example
 * ```ts
 * import { formatDuration, ProgressReporter } from "./progress.ts";
 * const p = new ProgressReporter((s) => console.log(s.trimEnd()), false, 10);
 * console.log(formatDuration(75)); // "1:15"
 * ```
 */
import { formatMB } from "../runtime/memory.ts";
import { perplexity, type StepRecord } from "./metrics.ts";

/** `m:ss` (or `h:mm:ss`) for a number of seconds; `?` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** A text bar of `width` cells, `done/total` filled. */
export function progressBar(done: number, total: number, width: number): string {
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : width;
  return "[" + "#".repeat(filled) + ".".repeat(width - filled) + "]";
}

/** The status text of a step (without bar or line control). */
export function formatStep(r: StepRecord, totalSteps: number, etaS: number): string {
  const loss = r.loss === null ? "-" : r.loss.toFixed(4);
  const parts = [
    `step ${r.step}/${totalSteps}`,
    `loss ${loss}`,
    `lr ${r.lr.toExponential(2)}`,
    `${Math.round(r.tokensPerS)} tok/s`,
    `ETA ${formatDuration(etaS)}`,
    `mem ${formatMB(r.workingSetBytes)} (peak ${formatMB(r.processPeakBytes)})`,
  ];
  if (r.evalLoss !== undefined) parts.push(`eval ${r.evalLoss.toFixed(4)}`);
  return parts.join("  ");
}

/** Writes progress lines; on a TTY the step line is redrawn in place. */
export class ProgressReporter {
  #lineOpen = false;

  constructor(
    readonly write: (text: string) => void,
    readonly tty: boolean,
    readonly totalSteps: number,
  ) {}

  /** Reports a finished step; `etaS` is the estimated time left. */
  step(r: StepRecord, etaS: number): void {
    const text = formatStep(r, this.totalSteps, etaS);
    if (this.tty) {
      this.write(`\r\x1b[K${progressBar(r.step, this.totalSteps, 20)} ${text}`);
      this.#lineOpen = true;
    } else {
      this.write(text + "\n");
    }
  }

  /**
   * Reports a record of the run: a training step as {@link step}, an evaluation-only record (no
   * training loss) as a message with its loss, perplexity and tokens.
   */
  record(r: StepRecord, etaS: number): void {
    if (r.loss !== null) return this.step(r, etaS);
    this.message(
      `eval_loss ${r.evalLoss!.toFixed(4)}, perplexity ${perplexity(r.evalLoss!)} ` +
        `(${r.tokens} tokens)`,
    );
  }

  /** A message on its own line (ends a redrawn line first). */
  message(text: string): void {
    this.finish();
    this.write(text + "\n");
  }

  /** Ends the redrawn line, if any. */
  finish(): void {
    if (this.#lineOpen) this.write("\n");
    this.#lineOpen = false;
  }
}
