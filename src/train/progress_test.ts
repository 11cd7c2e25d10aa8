import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import type { StepRecord } from "./metrics.ts";
import { formatDuration, progressBar, ProgressReporter } from "./progress.ts";

const rec: StepRecord = {
  step: 5,
  loss: 2.34567,
  lr: 2e-4,
  tokensPerS: 812.4,
  tokens: 128,
  gradNorm: 1,
  workingSetBytes: 45.1 * 1048576,
  processPeakBytes: 210 * 1048576,
  elapsedS: 3,
};

Deno.test("formatDuration and progressBar", () => {
  strictEqual(formatDuration(5), "0:05");
  strictEqual(formatDuration(75), "1:15");
  strictEqual(formatDuration(3725), "1:02:05");
  strictEqual(formatDuration(Infinity), "?");
  strictEqual(progressBar(5, 10, 10), "[#####.....]");
  strictEqual(progressBar(0, 10, 4), "[....]");
});

Deno.test("plain output: one line per step with loss, tokens/s, ETA and memory", () => {
  const out: string[] = [];
  const p = new ProgressReporter((s) => out.push(s), false, 10);
  p.step(rec, 42);
  p.message("done");
  strictEqual(out.length, 2);
  match(
    out[0],
    /^step 5\/10 {2}loss 2\.3457 {2}lr 2\.00e-4 {2}812 tok\/s {2}ETA 0:42 {2}mem 45\.1 MB \(peak 210\.0 MB\)\n$/,
  );
  strictEqual(out[1], "done\n");
});

Deno.test("TTY output redraws one line and closes it before messages", () => {
  const out: string[] = [];
  const p = new ProgressReporter((s) => out.push(s), true, 10);
  p.step(rec, 42);
  p.step({ ...rec, step: 6 }, 30);
  p.message("saved");
  ok(out[0].startsWith("\r\x1b[K[##########..........] step 5/10"));
  ok(out[1].startsWith("\r\x1b[K[############........] step 6/10"));
  deepStrictEqual(out.slice(2), ["\n", "saved\n"]);
});

Deno.test("record: a step as a step line, an evaluation-only record as its own message", () => {
  const out: string[] = [];
  const p = new ProgressReporter((s) => out.push(s), true, 10);
  p.record(rec, 42);
  p.record({ ...rec, step: 5, loss: null, evalLoss: 1.5, tokens: 300 }, 0);
  ok(out[0].startsWith("\r\x1b[K[##########..........] step 5/10"));
  deepStrictEqual(out.slice(1), ["\n", "eval_loss 1.5000, perplexity 4.482 (300 tokens)\n"]);
});
