import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import type { KernelVariant } from "../kernels/wasm.ts";
import { Rng } from "../runtime/rng.ts";
import { countedRowRuns, type HeadContext, headLoss, headLossBackward } from "./head.ts";
import { createRandomWeightStore, tinyConfig } from "./random_weights.ts";

Deno.test("countedRowRuns: runs of counted rows with their gathered positions and targets", () => {
  const tg = Int32Array.from([-1, 5, 6, -1, -1, 7, -1, 8, 9, 10]);
  const g = countedRowRuns(tg, false);
  assert.deepEqual(g.runs, [1, 0, 2, 5, 2, 1, 7, 3, 3]);
  assert.deepEqual([...g.targets], [5, 6, 7, 8, 9, 10]);
  assert.deepEqual(countedRowRuns(tg, true).runs, [0, 0, 10]);
  assert.deepEqual([...countedRowRuns(tg, true).targets], [...tg]);
  assert.deepEqual(countedRowRuns(Int32Array.from([-1, -1]), false).runs, []);
});

/**
 * Targets with ignored rows at the start, in the middle (runs of one and of several) and at the
 * end, so every gather and scatter boundary is crossed.
 */
function maskedTargets(N: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const tg = Int32Array.from({ length: N }, () => rng.nextU32() % V);
  for (const t of [0, 1, 5, 9, 10, 11, N - 1]) tg[t] = -1;
  return tg;
}

for (const variant of ["reference", "relaxed"] as KernelVariant[]) {
  for (const quant of ["none", "int4"] as const) {
    Deno.test(`the gathered head equals the ungathered one bit for bit: loss, dx, zero rows (${variant}, ${quant})`, async () => {
      const { kernels, arena } = loadKernelsSync({ variant });
      const config = tinyConfig("qwen2");
      const store = createRandomWeightStore({
        config,
        kernels,
        arena,
        seed: 3,
        quant,
        groupSize: 32,
      });
      const D = config.hiddenSize;
      const N = 23;
      const tg = maskedTargets(N, config.vocabSize, 4);
      const x = arena.allocF32(N * D);
      new Rng(5).fillNormal(arena.f32(x, N * D), 1);
      const targets = arena.allocI32(N);
      arena.i32(targets, N).set(tg);
      const xCopy = arena.f32(x, N * D).slice();
      const ctx = (allRows: boolean): HeadContext => ({
        store,
        kernels,
        arena,
        headChunkRows: 64,
        allRows,
      });
      const dx = [arena.allocF32(N * D), arena.allocF32(N * D)];
      const loss: number[] = [];
      for (const [i, allRows] of [true, false].entries()) {
        arena.f32(dx[i], N * D).fill(NaN); // overwritten everywhere, ignored rows included
        loss.push(await headLossBackward(ctx(allRows), x, targets, N, 0.25, dx[i]));
      }
      assert.deepEqual(arena.f32(x, N * D), xCopy, "x is read only when dx is elsewhere");
      assert.equal(loss[1], loss[0]);
      assert.ok(loss[0] > 0);
      const [ref, got] = dx.map((p) => arena.f32(p, N * D).slice());
      assert.deepEqual(got, ref);
      for (let t = 0; t < N; t++) {
        const row = got.subarray(t * D, (t + 1) * D);
        if (tg[t] < 0) assert.ok(row.every((v) => v === 0), `row ${t} is ignored: zero dx`);
        else assert.ok(row.some((v) => v !== 0), `row ${t} counts: non-zero dx`);
      }
      // Loss only, and dx written over x (how the methods call it).
      assert.equal(
        await headLoss(ctx(false), x, targets, N),
        await headLoss(ctx(true), x, targets, N),
      );
      assert.equal(await headLossBackward(ctx(false), x, targets, N, 0.25, x), loss[0]);
      assert.deepEqual(arena.f32(x, N * D), ref);
    });
  }
}

Deno.test("the gathered head allocates for the counted rows only", async () => {
  const { kernels, arena } = loadKernelsSync({ variant: "reference" });
  const config = tinyConfig("llama");
  const store = createRandomWeightStore({ config, kernels, arena, seed: 3 });
  const D = config.hiddenSize;
  const N = 40;
  const x = arena.allocF32(N * D);
  new Rng(1).fillNormal(arena.f32(x, N * D), 1);
  const targets = arena.allocI32(N);
  const peak = async (counted: number, allRows: boolean) => {
    const tg = arena.i32(targets, N);
    for (let t = 0; t < N; t++) tg[t] = t < N - counted ? -1 : t % config.vocabSize;
    const base = arena.used;
    arena.highWater = base;
    await headLossBackward(
      { store, kernels, arena, headChunkRows: 64, allRows },
      x,
      targets,
      N,
      1,
      x,
    );
    return arena.highWater - base;
  };
  const all = await peak(N, false);
  assert.equal(await peak(N, true), all);
  const quarter = await peak(N / 4, false);
  assert.ok(quarter < 0.3 * all, `10 of 40 rows: ${quarter} vs ${all} bytes`);
  assert.equal(await peak(N / 4, true), all);
});
