import assert from "node:assert/strict";
import { countTargets, hasTarget, IGNORE_INDEX, NO_TARGET, shiftLabels } from "./labels.ts";

const I = IGNORE_INDEX;

Deno.test("labels: row t's target is the label at t + 1 of the same sequence", () => {
  // Two sequences of 4: the last row of each predicts nothing, position 0's label never counts.
  const labels = Int32Array.of(5, I, 2, 3, 9, 4, I, 6);
  const out = new Int32Array(8).fill(42);
  assert.equal(shiftLabels(labels, 2, 4, 10, out), 4);
  assert.deepEqual(Array.from(out), [NO_TARGET, 2, 3, NO_TARGET, 4, NO_TARGET, 6, NO_TARGET]);
});

Deno.test("labels: counting without an output gives the same count and the same refusals", () => {
  const labels = Int32Array.of(5, I, 2, 3, 9, 4, I, 6);
  assert.equal(shiftLabels(labels, 2, 4, 10), 4);
  assert.equal(countTargets({ labels, batchSize: 2, seqLen: 4 }, 10), 4);
  assert.equal(countTargets({ labels, batchSize: 1, seqLen: 8 }, 10), 5);
  const bad = Int32Array.of(0, 12);
  assert.throws(() => shiftLabels(bad, 1, 2, 10), /label 12 at \[0, 1\] outside vocabulary 0..9/);
  assert.throws(() => countTargets({ labels: bad, batchSize: 1, seqLen: 2 }, 10), RangeError);
  // A bad label in position 0 is never read: it is no one's target.
  assert.equal(shiftLabels(Int32Array.of(99, 1), 1, 2, 10), 1);
});

Deno.test("labels: hasTarget reads its runs as one sequence and skips position 0", () => {
  assert.equal(hasTarget([[7]]), false);
  assert.equal(hasTarget([[7], [I, I]]), false);
  assert.equal(hasTarget([[7], [8]]), true);
  assert.equal(hasTarget([[], [7], [I]]), false);
  assert.equal(hasTarget([[], [7, 3]]), true);
  assert.equal(hasTarget([[I, I, 5]]), true);
  assert.equal(hasTarget([]), false);
});
