import assert from "node:assert/strict";
import { learningRate } from "./schedule.ts";

const close = (a: number, b: number, msg = "") =>
  assert(Math.abs(a - b) <= 1e-15 + 1e-12 * Math.abs(b), `${msg}: ${a} vs ${b}`);

Deno.test("schedule: warm-up rises linearly from 0 for every kind", () => {
  for (const kind of ["constant", "linear", "cosine"] as const) {
    assert.equal(learningRate(kind, 2e-3, 0, 100, 10), 0, kind);
    close(learningRate(kind, 2e-3, 1, 100, 10), 2e-4, kind);
    close(learningRate(kind, 2e-3, 5, 100, 10), 1e-3, kind);
    close(learningRate(kind, 2e-3, 9, 100, 10), 1.8e-3, kind);
    close(learningRate(kind, 2e-3, 10, 100, 10), 2e-3, kind); // peak right after warm-up
  }
});

Deno.test("schedule: constant stays at baseLr after warm-up and without one", () => {
  for (const step of [0, 1, 50, 99, 100, 1000]) {
    assert.equal(learningRate("constant", 3e-4, step, 100, 0), 3e-4);
  }
  assert.equal(learningRate("constant", 3e-4, 77, 100, 10), 3e-4);
});

Deno.test("schedule: linear decays to 0 at totalSteps and stays there", () => {
  // After 10 warm-up steps, 90 decay steps: lr = base * (100 - step) / 90.
  close(learningRate("linear", 1, 10, 100, 10), 1);
  close(learningRate("linear", 1, 55, 100, 10), 45 / 90);
  close(learningRate("linear", 1, 99, 100, 10), 1 / 90);
  assert.equal(learningRate("linear", 1, 100, 100, 10), 0);
  assert.equal(learningRate("linear", 1, 150, 100, 10), 0);
  // No warm-up: the first step runs at the full rate.
  assert.equal(learningRate("linear", 1, 0, 4, 0), 1);
  close(learningRate("linear", 1, 3, 4, 0), 0.25);
});

Deno.test("schedule: cosine follows a half cosine to 0", () => {
  // 10 warm-up steps, then progress p = (step - 10) / 90, lr = 0.5 (1 + cos(pi p)).
  close(learningRate("cosine", 1, 10, 100, 10), 1);
  close(learningRate("cosine", 1, 55, 100, 10), 0.5); // p = 1/2
  close(learningRate("cosine", 1, 25, 100, 10), 0.5 * (1 + Math.sqrt(3) / 2)); // p = 1/6
  close(learningRate("cosine", 1, 40, 100, 10), 0.75); // p = 1/3, cos = 1/2
  assert.equal(learningRate("cosine", 1, 100, 100, 10), 0);
  assert.equal(learningRate("cosine", 1, 130, 100, 10), 0); // no rise past the end
  let previous = Infinity;
  for (let step = 10; step <= 100; step++) {
    const lr = learningRate("cosine", 1, step, 100, 10);
    assert(lr <= previous && lr >= 0, `step ${step}`);
    previous = lr;
  }
});

Deno.test("schedule: rejects negative or fractional steps", () => {
  assert.throws(() => learningRate("linear", 1, -1, 10, 0), RangeError);
  assert.throws(() => learningRate("linear", 1, 1.5, 10, 0), RangeError);
  assert.throws(() => learningRate("cosine", 1, 1, 10, -2), RangeError);
});
