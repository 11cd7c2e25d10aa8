import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import type { KernelVariant } from "../kernels/wasm.ts";
import { Rng } from "../runtime/rng.ts";
import { type HeadContext, headLoss, headLossBackward } from "./head.ts";
import { DEFAULT_HEAD_CHUNK_ROWS, headChunkRowsOf, headPeaks } from "./head_tables.ts";
import { createRandomWeightStore, tinyConfig } from "./random_weights.ts";

const VARIANT = (Deno.env.get("SLIMTUNE_KERNELS") ?? "reference") as KernelVariant;

Deno.test("head tables: chunk rows round up to 16, the default is 1024", () => {
  assert.equal(headChunkRowsOf(), DEFAULT_HEAD_CHUNK_ROWS);
  assert.equal(headChunkRowsOf(1), 16);
  assert.equal(headChunkRowsOf(48), 48);
  assert.equal(headChunkRowsOf(49), 64);
});

Deno.test("head tables: headLoss and headLossBackward reach exactly the planned peaks", async () => {
  const config = tinyConfig("qwen2");
  const { kernels, arena } = loadKernelsSync({ variant: VARIANT });
  const store = createRandomWeightStore({ config, kernels, arena, seed: 3, quant: "int4" });
  const D = config.hiddenSize;
  const N = 12;
  const h: HeadContext = { store, kernels, arena, headChunkRows: headChunkRowsOf(40) };
  const rng = new Rng(2);
  const x = arena.allocF32(N * D);
  arena.f32(x, N * D).set(Float32Array.from({ length: N * D }, () => rng.uniform() - 0.5));
  const targets = arena.allocI32(N);
  // Two ignored rows: the head runs over the 10 counted ones.
  const tg = Int32Array.from({ length: N }, (_, i) => (i === 3 || i === 7 ? -1 : i * 5));
  arena.i32(targets, N).set(tg);
  const peaks = headPeaks({ rows: 10, hiddenSize: D, chunkRows: h.headChunkRows });
  const peak = async (run: () => Promise<number>) => {
    const start = arena.used;
    arena.highWater = start;
    await run();
    return arena.highWater - start;
  };
  assert.equal(await peak(() => headLoss(h, x, targets, N)), peaks.forward);
  assert.equal(
    await peak(() => headLossBackward(h, x, targets, N, 0.1, x)),
    peaks.backward,
  );
  assert.deepEqual(headPeaks({ rows: 0, hiddenSize: D, chunkRows: 16 }), {
    forward: 0,
    backward: 0,
  });
});
