import assert from "node:assert/strict";
import { tinyConfig } from "../model/random_weights.ts";
import { keepsTapes, planMemory } from "./memory_plan.ts";
import {
  checkpointsBlocks,
  hasGradients,
  lcsbSettings,
  METHOD_DEFAULTS,
  METHOD_NAMES,
  METHODS,
  type StepParts,
} from "./registry.ts";

const parts: StepParts = {
  residual: 64,
  tape: 1000,
  tapeRecompute: 1100,
  tapeBackward: 300,
  structuredBackward: 700,
  leanForward: 200,
  headForward: 90,
  headBackward: 500,
  numLayers: 6,
  keptTapes: 0,
};

Deno.test("registry: one entry per name, and the kinds of step the docs list", () => {
  assert.deepEqual(Object.keys(METHODS), [...METHOD_NAMES]);
  assert.deepEqual(METHOD_NAMES.map((m) => METHODS[m].gradient), [
    "exact",
    "exact",
    "exact",
    "surrogate",
    "zeroth-order",
  ]);
  assert.deepEqual(METHOD_NAMES.filter((m) => !hasGradients(m)), ["mezo"]);
  assert.deepEqual(METHOD_NAMES.filter(keepsTapes), ["mebp", "mesp"]);
});

Deno.test("registry: keeping every tape plans what full plans; keeping none, the checkpoints", () => {
  const all = { ...parts, keptTapes: parts.numLayers };
  const full = METHODS.full.planStep(parts);
  assert.equal(full, 64 + 6 * (64 + 1000) + 500);
  assert.equal(METHODS.mebp.planStep(all), full);
  assert.equal(METHODS.mesp.planStep(all), full);
  // Six checkpoints under the largest of the head and one block's recompute + backward.
  assert.equal(METHODS.mebp.planStep(parts), 64 + 6 * 64 + 1300);
  assert.equal(METHODS.mesp.planStep(parts), 64 + 6 * 64 + 700);
  // Two kept: their input copies and tapes with the head on top, four checkpoints below.
  assert.equal(METHODS.mesp.planStep({ ...parts, keptTapes: 2 }), 64 + 4 * 64 + 2 * 1064 + 500);
  assert.equal(METHODS.mezo.planStep(parts), 64 + 200);
});

Deno.test("registry: lcsb plans the checkpoints of its largest group, from its defaults", () => {
  // 6 layers in the default 4 contiguous groups: sizes 2, 2, 1, 1.
  assert.deepEqual(lcsbSettings(6), { groups: 4, pattern: "contiguous" });
  assert.equal(METHODS.lcsb.planStep(parts), 64 + 2 * 64 + 700);
  assert.equal(
    METHODS.lcsb.planStep(parts, { groups: 6, pattern: "strided" }),
    64 + 64 + 700,
  );
  assert.deepEqual(lcsbSettings(2), { groups: 2, pattern: "contiguous" });
  assert.throws(() => lcsbSettings(2, { groups: 3, pattern: "strided" }), /groups must be in 1..2/);
  assert.equal(METHOD_DEFAULTS.lcsb.groups, 4);
});

Deno.test("registry: the planner sums the method's step over the shapes", () => {
  const config = tinyConfig("qwen2", 4);
  const lora = { rank: 4, alpha: 8, targets: ["q", "v"] as ("q" | "v")[] };
  const plan = (method: (typeof METHOD_NAMES)[number], keptTapes = 0) =>
    planMemory({ config, method, seqLen: 16, batchSize: 1, lora, optimizer: "adamw", keptTapes });
  assert.equal(plan("mesp", 4).step, plan("full").step);
  assert.equal(plan("mebp", 4).step, plan("full").step);
  assert.ok(plan("mesp").step < plan("mebp").step);
  assert.equal(plan("mezo").grads, 0);
  assert.throws(() => plan("lcsb", 1), /lcsb keeps no tapes/);
});

Deno.test("registry: each gradient method is built from the step's context", () => {
  const ctx = { step: 0, numLayers: 4, keptTapes: 0 };
  for (const m of METHOD_NAMES) {
    const build = METHODS[m].gradientMethod;
    assert.equal(build === undefined, m === "mezo");
    if (build) assert.equal(typeof build(ctx), "function");
  }
  assert.throws(
    () => METHODS.lcsb.gradientMethod!({ ...ctx, lcsb: { groups: 5, pattern: "contiguous" } }),
    /groups must be in 1..4/,
  );
});

Deno.test("registry: with spilled checkpoints a step plans one [N, D] buffer for all of them", () => {
  const spill = { ...parts, checkpoints: "spill" as const };
  assert.equal(METHODS.mebp.planStep(spill), 64 + 64 + 1300);
  assert.equal(METHODS.mesp.planStep({ ...spill, keptTapes: 2 }), 64 + 64 + 2 * 1064 + 500);
  // Every block kept: no checkpoint at all, so no buffer either.
  assert.equal(METHODS.mesp.planStep({ ...spill, keptTapes: 6 }), METHODS.full.planStep(parts));
  assert.equal(METHODS.lcsb.planStep(spill), 64 + 64 + 700);
  assert.equal(METHODS.full.planStep(spill), METHODS.full.planStep(parts));
  assert.equal(METHODS.mezo.planStep(spill), METHODS.mezo.planStep(parts));
  assert.deepEqual(METHOD_NAMES.filter(checkpointsBlocks), ["mebp", "mesp", "lcsb"]);
});
