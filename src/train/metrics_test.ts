import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { metricsLine } from "./metrics.ts";

Deno.test("metricsLine writes the contract's field names, in MB", () => {
  const line = metricsLine({
    step: 3,
    loss: 2.25,
    lr: 1e-4,
    tokensPerS: 1234.567,
    tokens: 256,
    gradNorm: 0.75,
    workingSetBytes: 12_345_678, // 11.774 MB of 2^20 bytes
    processPeakBytes: 100 * 1048576,
    elapsedS: 1.23456,
    evalLoss: 2.5,
  });
  strictEqual(line.endsWith("\n"), true);
  deepStrictEqual(JSON.parse(line), {
    step: 3,
    loss: 2.25,
    lr: 1e-4,
    tokens_per_s: 1234.6,
    working_set_mb: 11.774,
    process_peak_mb: 100,
    tokens: 256,
    grad_norm: 0.75,
    elapsed_s: 1.235,
    eval_loss: 2.5,
    eval_perplexity: 12.18, // e^2.5 = 12.182...
  });
  const noPeak = JSON.parse(metricsLine({
    step: 0,
    loss: null,
    lr: 0,
    tokensPerS: 0,
    tokens: 0,
    gradNorm: null,
    workingSetBytes: 0,
    processPeakBytes: null,
    elapsedS: 0,
  }));
  strictEqual(noPeak.process_peak_mb, null);
  strictEqual("eval_loss" in noPeak, false);
  strictEqual("eval_perplexity" in noPeak, false);
});
