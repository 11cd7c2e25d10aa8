/**
 * Per-step metrics as JSON Lines: one object per optimizer step (and per evaluation), with the
 * field names of the CLI contract: `step, loss, lr, tokens_per_s, working_set_mb, process_peak_mb` (MB = 2^20 bytes, as in `src/runtime/memory.ts`)
 * and `eval_loss` with `eval_perplexity` (exp of the mean token loss) when evaluated. Portable: {@link metricsLine} formats, the caller writes.
 *
 * @example
 * ```ts
 * import { metricsLine } from "./metrics.ts";
 * metricsLine({ step: 1, loss: 2.5, lr: 1e-4, tokensPerS: 900, workingSetBytes: 12e6,
 *   processPeakBytes: null, tokens: 256, gradNorm: 0.5, elapsedS: 0.3 });
 * // '{"step":1,"loss":2.5,"lr":0.0001,"tokens_per_s":900,"working_set_mb":12,...}\n'
 * ```
 */
import { BYTES_PER_MB } from "../runtime/memory.ts";

/** What the trainer knows after a step (or an eval-only pass, with loss null). */
export interface StepRecord {
  step: number;
  /** Training loss of the step; null for evaluation-only records. */
  loss: number | null;
  lr: number;
  /** Input tokens processed per second by the step. */
  tokensPerS: number;
  tokens: number;
  gradNorm: number | null;
  workingSetBytes: number;
  processPeakBytes: number | null;
  /** Seconds since the run (or resumed run) started. */
  elapsedS: number;
  evalLoss?: number;
}

const MB = BYTES_PER_MB;

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Perplexity of a mean token cross-entropy (nats): exp(loss), to 4 significant digits. */
export function perplexity(meanLoss: number): number {
  return Number(Math.exp(meanLoss).toPrecision(4));
}

/** The JSON object of a record, with the contract's snake_case names. */
export function metricsObject(r: StepRecord): Record<string, number | null> {
  const o: Record<string, number | null> = {
    step: r.step,
    loss: r.loss,
    lr: r.lr,
    tokens_per_s: round(r.tokensPerS, 1),
    working_set_mb: round(r.workingSetBytes / MB, 3),
    process_peak_mb: r.processPeakBytes === null ? null : round(r.processPeakBytes / MB, 3),
    tokens: r.tokens,
    grad_norm: r.gradNorm,
    elapsed_s: round(r.elapsedS, 3),
  };
  if (r.evalLoss !== undefined) {
    o.eval_loss = r.evalLoss;
    o.eval_perplexity = perplexity(r.evalLoss);
  }
  return o;
}

/** One line of the metrics file (with its newline). */
export function metricsLine(r: StepRecord): string {
  return JSON.stringify(metricsObject(r)) + "\n";
}
