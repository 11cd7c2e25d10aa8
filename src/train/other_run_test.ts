import assert from "node:assert/strict";
import { UsageError } from "../cli/usage.ts";
import type { TrainArgs } from "./args.ts";
import { otherRunToReplace } from "./other_run.ts";

const none = new Set<keyof TrainArgs>();
const outGiven = new Set<keyof TrainArgs>(["out"]);
const model = { out: "runs/a", overwrite: false, model: "m" };
const demo = { out: "out/demo-adapter", overwrite: false, model: null };

Deno.test("otherRunToReplace: nothing there, nothing replaced", () => {
  assert.equal(otherRunToReplace(model, outGiven, []), null);
});

Deno.test("otherRunToReplace: --overwrite, or the demo in its own folder, replaces", () => {
  const other = ["checkpoint-4", "loss.svg"];
  assert.deepEqual(otherRunToReplace({ ...model, overwrite: true }, outGiven, other), other);
  assert.deepEqual(otherRunToReplace(demo, none, other), other);
});

Deno.test("otherRunToReplace: anyone else's run is refused with the ways on, naming 3 entries", () => {
  const refused = (reason: RegExp) => (e: unknown) =>
    e instanceof UsageError && e.flag === "--out" && reason.test(e.reason);
  assert.throws(
    () => otherRunToReplace(model, outGiven, ["a", "b"]),
    refused(
      /^runs\/a already holds another run \(a, b\); continue it with --resume runs\/a, replace it with --overwrite, or choose another --out$/,
    ),
  );
  assert.throws(
    () => otherRunToReplace(model, outGiven, ["a", "b", "c", "d"]),
    refused(/\(a, b, c, \.\.\.\)/),
  );
  // The demo pointed at a folder of the user's choosing is anyone else's run too.
  assert.throws(() => otherRunToReplace(demo, outGiven, ["a"]), refused(/already holds/));
});
