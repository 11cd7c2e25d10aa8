import assert from "node:assert/strict";
import { presetModelConfig } from "../io/presets.ts";
import { parseTrainArgs } from "./args.ts";
import { runMemoryPlanOptions } from "./preflight.ts";
import { runSettingsFor } from "./run_settings.ts";

const config = presetModelConfig("smollm2-135m");
const argsOf = (...argv: string[]) =>
  parseTrainArgs(["--model", "m", "--data", "d.jsonl", ...argv]).args;

Deno.test("runSettingsFor: every training flag reaches the session or the step loop", () => {
  const args = argsOf(
    ...["--method", "mesp", "--optimizer", "sgd", "--lr", "0.02", "--weight-decay", "0.1"],
    ...["--max-grad-norm", "1", "--clip-stash", "f32", "--mezo-eps", "0.002", "--seed", "7"],
    ...["--keep-tapes", "3", "--grad-accum", "4", "--lr-schedule", "cosine"],
    ...["--warmup-steps", "5", "--eval-data", "e.jsonl", "--eval-every", "6", "--save-every", "9"],
  );
  const spill = { write: () => {}, read: () => {} } as unknown as Parameters<
    typeof runSettingsFor
  >[2];
  const s = runSettingsFor(args, config, spill);
  assert.equal(s.session.method, "mesp");
  assert.deepEqual(s.session.optimizer, { kind: "sgd", lr: 0.02, weightDecay: 0.1 });
  assert.equal(s.session.maxGradNorm, 1);
  assert.equal(s.session.clipStash, "f32");
  assert.deepEqual(s.session.mezo, { eps: 0.002 });
  assert.equal(s.session.seed, 7);
  assert.equal(s.session.keptTapes, 3);
  assert.equal(s.session.checkpoints, spill);
  assert.equal(s.gradAccum, 4);
  assert.deepEqual(s.schedule, { kind: "cosine", baseLr: 0.02, warmupSteps: 5 });
  assert.equal(s.evalEvery, 6);
  assert.equal(s.saveEvery, 9);
});

Deno.test("runSettingsFor: the session's lcsb groups and head chunks are the memory plan's", () => {
  const lora = { rank: 8, alpha: 16, targets: argsOf().targets };
  for (
    const argv of [
      ["--method", "lcsb", "--lcsb-groups", "2", "--head-chunk-rows", "100"],
      ["--method", "lcsb", "--lcsb-groups", "4"],
    ]
  ) {
    const args = argsOf(...argv);
    const s = runSettingsFor(args, config, "memory");
    const plan = runMemoryPlanOptions(args, config, 64, lora, 0);
    assert.deepEqual(s.session.lcsb, plan.lcsb);
    assert.equal(s.session.headChunkRows, plan.headChunkRows);
    assert.equal(s.session.headChunkRows! % 16, 0);
  }
  // --keep-tapes auto: none until the memory check chooses a count.
  assert.equal(
    runSettingsFor(argsOf("--keep-tapes", "auto"), config, "memory").session.keptTapes,
    0,
  );
});
