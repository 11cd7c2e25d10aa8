/**
 * The base model next to the adapter on the same evaluation data: the adapter's eval loss, the
 * base's (the same session with every LoRA `B` set to zero, so `s·B·A = 0` and the forward is
 * the base's exactly), and the difference, each with its perplexity `exp(mean loss)`. Portable.
 *
 * @example
 * ```ts
 * import { comparisonText } from "./compare_base.ts";
 * console.log(comparisonText("eval.jsonl", 1200, { base: 2.9, adapter: 2.1 }));
 * ```
 */
import type { Batch } from "../data/batch.ts";
import type { TrainingSession } from "../methods/session.ts";
import { perplexity } from "./metrics.ts";
import { evaluateBatches } from "./trainer.ts";

/** Eval losses of the base and of base + adapter. */
export interface BaseComparison {
  base: number;
  adapter: number;
}

/**
 * The session's eval loss with the adapter switched off (B = 0); the adapter's tensors are put
 * back before it returns.
 */
export async function baseEvalLoss(
  session: TrainingSession,
  batches: readonly Batch[],
): Promise<number> {
  const trained = session.loraTensors();
  const off = new Map(
    [...trained].map(([name, t]) => [
      name,
      /\.lora_B\./.test(name) ? { shape: t.shape, data: new Float32Array(t.data.length) } : t,
    ]),
  );
  session.setLoraTensors(off);
  try {
    return await evaluateBatches(session, batches);
  } finally {
    session.setLoraTensors(trained);
  }
}

/** Tokens scored in `batches` (labels that are not ignored). */
export function scoredTokens(batches: readonly Batch[]): number {
  let n = 0;
  for (const b of batches) for (const l of b.labels) if (l >= 0) n++;
  return n;
}

/** The comparison as the command line prints it. */
export function comparisonText(file: string, tokens: number, c: BaseComparison): string {
  const row = (name: string, loss: number) =>
    `  ${name.padEnd(16)}eval_loss ${loss.toFixed(4)}  perplexity ${perplexity(loss)}`;
  const delta = c.adapter - c.base;
  return [
    `eval on ${file} (${tokens} tokens):`,
    row("base", c.base),
    row("base + adapter", c.adapter),
    `  ${"difference".padEnd(16)}eval_loss ${delta >= 0 ? "+" : ""}${delta.toFixed(4)}  ` +
    `perplexity x${fmtRatio(Math.exp(delta))}`,
  ].join("\n");
}

function fmtRatio(r: number): string {
  return r >= 0.01 ? r.toFixed(3) : r.toExponential(2);
}
