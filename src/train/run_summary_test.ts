import assert from "node:assert/strict";
import { perplexity } from "./metrics.ts";
import { doneLines, stoppedText } from "./run_summary.ts";

Deno.test("stoppedText: the signal, the steps done and the flag that resumes", () => {
  assert.equal(
    stoppedText("SIGINT", 1, "runs/a"),
    "SIGINT: stopped after 1 step; resume with: --resume runs/a\n",
  );
  assert.equal(
    stoppedText("SIGTERM", 12, "o"),
    "SIGTERM: stopped after 12 steps; resume with: --resume o\n",
  );
});

Deno.test("doneLines: the first and last loss, the evaluation where there is one, the files", () => {
  const history = [{ step: 1, loss: 2.345678 }, { step: 2, loss: 2.1 }, { step: 3, loss: 1.98767 }];
  assert.deepEqual(doneLines({ step: 3, history, evalLoss: null }, "out"), [
    "\ndone: 3 steps, loss 2.3457 -> 1.9877",
    "adapter: out/adapter_config.json, out/adapter_model.safetensors",
    "loss curve: out/loss.svg",
  ]);
  const evaluated = doneLines({ step: 1, history: history.slice(0, 1), evalLoss: 1.5 }, "o")[0];
  assert.equal(
    evaluated,
    `\ndone: 1 step, loss 2.3457 -> 2.3457, eval_loss 1.5000 (perplexity ${perplexity(1.5)})`,
  );
  assert.match(evaluated, /perplexity 4\.48/);
});
