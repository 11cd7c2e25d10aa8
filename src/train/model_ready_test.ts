import assert from "node:assert/strict";
import { presetModelConfig } from "../io/presets.ts";
import type { ParallelSettings } from "../kernels/parallel.ts";
import { modelReadyLines, type ReadyKernels } from "./model_ready.ts";

const store = { config: presetModelConfig("smollm2-135m"), quant: "int4" as const };
const oneThread: ReadyKernels = {
  variant: "simd",
  threads: 1,
  threadSpeedups: null,
  parallel: null,
};

Deno.test("modelReadyLines: one thread, one line naming the model, weights and kernels", () => {
  const c = store.config;
  assert.deepEqual(modelReadyLines("org/model", "streamed", store, oneThread, 1, 2345), [
    `model: org/model (${c.architecture}, ${c.numLayers} layers, hidden ${c.hiddenSize}, ` +
    `vocab ${c.vocabSize}), int4 streamed, kernels simd x 1 threads, ready in 2.3 s`,
  ]);
});

Deno.test("modelReadyLines: fewer threads than asked, and how calls are split, are explained", () => {
  const parallel = {
    minWork: 1_250_000,
    source: "measured",
    roundTripUs: 3.21,
  } as ParallelSettings;
  const fitted: ReadyKernels = {
    variant: "simd",
    threads: 2,
    threadSpeedups: [1, 1.8, 1.75, 1.7],
    parallel,
  };
  const lines = modelReadyLines("m", "resident", store, fitted, 4, 100);
  assert.equal(lines.length, 3);
  assert.match(lines[0], /kernels simd x 2 threads, ready in 0\.1 s$/);
  assert.equal(
    lines[1],
    "threads: 2 of 4 cores: more measured no faster (a GEMM on 1..4 threads: " +
      "1.00x, 1.80x, 1.75x, 1.70x); --threads N to choose",
  );
  assert.equal(
    lines[2],
    "threads: calls from 1.25M multiply-adds are split (measured; hand-off 3.2 µs)",
  );
  // As many threads as asked: nothing to explain; no round trip measured: no hand-off.
  const asked = modelReadyLines(
    "m",
    "resident",
    store,
    {
      ...fitted,
      parallel: { ...parallel, source: "default", roundTripUs: NaN },
    },
    2,
    100,
  );
  assert.deepEqual(asked.slice(1), [
    "threads: calls from 1.25M multiply-adds are split (default)",
  ]);
});
