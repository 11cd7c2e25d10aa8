import assert from "node:assert/strict";
import { UsageError } from "../cli/usage.ts";
import { parseTrainArgs } from "./args.ts";
import { DEMO_DEFAULTS, demoDataPath, demoEvalDataPath } from "./demo.ts";
import { completeRunArgs } from "./run_args.ts";

const complete = (argv: string[], resumed: Parameters<typeof completeRunArgs>[2] = null) => {
  const { args, given } = parseTrainArgs(argv);
  return completeRunArgs(args, given, resumed);
};
const usage = (flag: string, reason: RegExp) => (e: unknown) =>
  e instanceof UsageError && e.flag === flag && reason.test(e.reason);

Deno.test("completeRunArgs: the demo takes its defaults and its data where nothing is given", () => {
  const demo = complete([]);
  assert.equal(demo.steps, DEMO_DEFAULTS.steps);
  assert.equal(demo.out, DEMO_DEFAULTS.out);
  assert.equal(demo.data, demoDataPath());
  assert.equal(demo.evalData, demoEvalDataPath());
  assert.equal(demo.compareBase, true);
  // A given flag wins over the demo's default.
  const given = complete(["--steps", "5", "--out", "o", "--lr", "0.01"]);
  assert.deepEqual([given.steps, given.out, given.lr], [5, "o", 0.01]);
  assert.equal(given.seqLen, DEMO_DEFAULTS.seqLen);
  // A model's run takes none of them.
  const model = complete(["--model", "m", "--data", "d.jsonl"]);
  assert.notEqual(model.steps, DEMO_DEFAULTS.steps);
  assert.equal(model.evalData, null);
  assert.equal(model.compareBase, false);
});

Deno.test("completeRunArgs: a resumed run takes the checkpoint's arguments under the given flags", () => {
  const recorded = {
    model: "m",
    data: "d.jsonl",
    lr: 0.5,
    rank: 4,
    out: "elsewhere",
    overwrite: true,
    resume: "stale",
    notAFlag: 1,
  };
  const args = complete(["--resume", "runs/a", "--lr", "0.1"], {
    args: recorded,
    runDir: "runs/a",
  });
  assert.equal(args.lr, 0.1);
  assert.equal(args.rank, 4);
  assert.equal(args.model, "m");
  assert.equal(args.resume, "runs/a");
  // It writes where it was resumed from, and continues instead of replacing.
  assert.equal(args.out, "runs/a");
  assert.equal(args.overwrite, false);
  assert.ok(!("notAFlag" in args));
  const moved = complete(["--resume", "runs/a", "--out", "copy", "--overwrite"], {
    args: recorded,
    runDir: "runs/a",
  });
  assert.deepEqual([moved.out, moved.overwrite], ["copy", true]);
});

Deno.test("completeRunArgs: a run with nothing to train or evaluate on is refused", () => {
  assert.throws(() => complete(["--model", "m"]), usage("--data", /required when training/));
  assert.throws(
    () => complete(["--model", "m", "--steps", "0"]),
    usage("--steps", /only makes sense with --eval-data/),
  );
  assert.throws(
    () => complete(["--model", "m", "--data", "d.jsonl", "--compare-base"]),
    usage("--compare-base", /needs --eval-data/),
  );
  // Evaluation only: no training data needed.
  const evalOnly = complete(["--model", "m", "--steps", "0", "--eval-data", "e.jsonl"]);
  assert.deepEqual([evalOnly.data, evalOnly.evalData], [null, "e.jsonl"]);
});
