import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import { Rng } from "../runtime/rng.ts";
import { createTrainingSession, LoraTrainingSession, type SessionOptions } from "./session.ts";

function options(
  method: SessionOptions["method"],
  maxGradNorm: number,
  kind: "sgd" | "adamw",
): SessionOptions {
  const { kernels, arena } = loadKernelsSync({ variant: "reference" });
  const store = createRandomWeightStore({
    config: tinyConfig("llama", 2),
    kernels,
    arena,
    seed: 4,
  });
  return {
    store,
    kernels,
    arena,
    method,
    seed: 9,
    maxGradNorm,
    lora: { rank: 2, alpha: 4, targets: [...LINEAR_NAMES] },
    optimizer: { kind, lr: 0.05, weightDecay: 0.01 },
    headChunkRows: 128,
  };
}

const ids = Int32Array.from({ length: 10 }, (_, i) => (i * 71 + 3) % 300);
const batch = { inputIds: ids, labels: ids, batchSize: 2, seqLen: 5 };

/** Max |Δa - Δb| / max |Δb| over every LoRA value, Δ = parameters after minus `init`. */
function updateGap(
  a: Map<string, { data: Float32Array }>,
  b: Map<string, { data: Float32Array }>,
  init: Map<string, { data: Float32Array }>,
): number {
  let gap = 0, largest = 0;
  for (const [name, t] of b) {
    const x = a.get(name)!.data, p0 = init.get(name)!.data;
    for (let i = 0; i < t.data.length; i++) {
      gap = Math.max(gap, Math.abs((x[i] - p0[i]) - (t.data[i] - p0[i])));
      largest = Math.max(largest, Math.abs(t.data[i] - p0[i]));
    }
  }
  return gap / largest;
}

Deno.test("clipping through the bf16 stash: exact norm, one block slot, update within the bf16 rounding of the exact path's", async () => {
  const gaps: string[] = [];
  for (const method of ["mebp", "mesp", "lcsb"] as const) {
    for (const kind of ["sgd", "adamw"] as const) {
      const clip = 0.05; // below the gradient norm: every step clips
      const stash = new LoraTrainingSession(options(method, clip, kind));
      assert.equal(stash.lora.gradientStorage, "block");
      const exact = new LoraTrainingSession({ ...options(method, clip, kind), clipStash: "f32" });
      const init = stash.loraTensors();
      const rng = new Rng(1);
      for (const [name, t] of init) if (name.includes("lora_B")) rng.fillNormal(t.data, 0.3);
      stash.setLoraTensors(init);
      exact.setLoraTensors(init);
      const a = await stash.step([batch], 0.05);
      const b = await exact.step([batch], 0.05);
      assert.equal(a.loss, b.loss);
      assert.equal(a.gradNorm, b.gradNorm, "the norm is summed from the f32 gradients");
      assert(b.gradNorm! > clip);
      const gap = updateGap(stash.loraTensors(), exact.loraTensors(), init);
      // SGD: the update is the clipped gradient, so its bf16 rounding (2^-8) plus f32 rounding
      // of the parameters; AdamW's first step is g / |g| per value, nearly insensitive.
      assert(gap <= 2 ** -8 + 1e-4, `${method} ${kind}: update gap ${gap}`);
      assert(gap > 0, `${method} ${kind}: the stash changed nothing (not in use?)`);
      // Two more steps: the gap stays of the order of the bf16 rounding.
      for (let t = 0; t < 2; t++) {
        await stash.step([batch], 0.05);
        await exact.step([batch], 0.05);
      }
      const gap3 = updateGap(stash.loraTensors(), exact.loraTensors(), init);
      assert(gap3 <= 2 ** -6, `${method} ${kind}: update gap after 3 steps ${gap3}`);
      gaps.push(`${method} ${kind} ${gap.toExponential(2)} (3 steps: ${gap3.toExponential(2)})`);
    }
  }
  console.log(`max relative update gap, bf16 stash vs exact: ${gaps.join(", ")}`);
});

Deno.test("per-block update (dx from the pre-update B) equals accumulate-then-update", async () => {
  for (const method of ["full", "mebp", "mesp", "lcsb"] as const) {
    for (const kind of ["sgd", "adamw"] as const) {
      const perBlock = new LoraTrainingSession(options(method, 0, kind));
      assert.equal(perBlock.lora.gradientStorage, "block"); // one block-sized gradient slot
      // The exact clipping path (whole f32 gradients), with a threshold that never clips.
      const whole = new LoraTrainingSession({ ...options(method, 1e9, kind), clipStash: "f32" });
      assert.equal(whole.lora.gradientStorage, "whole");
      const init = perBlock.loraTensors();
      const rng = new Rng(1);
      for (const [name, t] of init) if (name.includes("lora_B")) rng.fillNormal(t.data, 0.3);
      perBlock.setLoraTensors(init);
      whole.setLoraTensors(init);
      for (let step = 0; step < 2; step++) {
        const a = await perBlock.step([batch], 0.05);
        const b = await whole.step([batch], 0.05);
        assert.equal(a.loss, b.loss);
        assert.equal(a.gradNorm, b.gradNorm);
        assert.equal(a.tokens, 8);
      }
      const pa = perBlock.loraTensors();
      for (const [name, t] of whole.loraTensors()) {
        assert.deepEqual(pa.get(name)!.data, t.data, `${method} ${kind} ${name}`);
        assert.notDeepEqual(t.data, init.get(name)!.data, `${name} did not move`);
      }
    }
  }
});

Deno.test("gradient accumulation: two micro-batches give the mean over all their tokens", async () => {
  const s = new LoraTrainingSession(options("mesp", 0, "sgd"));
  const half = (o: number) => ({
    inputIds: ids.slice(o, o + 5),
    labels: ids.slice(o, o + 5),
    batchSize: 1,
    seqLen: 5,
  });
  const whole = await s.accumulateGradients([batch]);
  const g1 = s.lora.params.map((p) => s.model.arena.f32(p.grad, p.n).slice());
  const split = await s.accumulateGradients([half(0), half(5)]);
  assert.equal(split.tokens, whole.tokens);
  assert.ok(Math.abs(split.lossSum - whole.lossSum) <= 1e-6 * whole.lossSum);
  s.lora.params.forEach((p, i) => {
    const g2 = s.model.arena.f32(p.grad, p.n);
    const scale = g1[i].reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    for (let j = 0; j < p.n; j++) assert.ok(Math.abs(g2[j] - g1[i][j]) <= 1e-5 * scale);
  });
});

Deno.test("session: evaluate, state round trip, clipping reports the pre-clip norm, mezo runs", async () => {
  const o = options("mebp", 1e-3, "adamw");
  const s = await createTrainingSession(o);
  const e0 = await s.evaluate(batch);
  const r = await s.step([batch], 0.05);
  assert.ok(r.gradNorm! > 1e-3); // reported before clipping
  assert.ok((await s.evaluate(batch)).loss !== e0.loss);
  const state = s.optimizerState();
  assert.equal(state.stepCount, 1);
  const lora = s.loraTensors();
  const t = await createTrainingSession({ ...o });
  t.setLoraTensors(lora);
  t.setOptimizerState(state);
  const [ra, rb] = [await s.step([batch], 0.05), await t.step([batch], 0.05)];
  assert.equal(ra.loss, rb.loss);
  assert.deepEqual(s.loraTensors(), t.loraTensors());
  const z = await createTrainingSession({ ...options("mezo", 0, "sgd"), mezo: { eps: 1e-2 } });
  const zr = await z.step([batch], 1e-3);
  assert.equal(zr.gradNorm, null);
  assert.ok(Number.isFinite(zr.loss));
  assert.equal(z.optimizerState().stepCount, 1);
  const ignored = { ...batch, labels: new Int32Array(10).fill(-100) };
  assert.ok(Number.isNaN((await s.step([ignored], 0.05)).loss));
});

Deno.test("optimizerStateViews and loraTensorViews: the copies' values, as views of the arena", async () => {
  const { kernels, arena } = loadKernelsSync({ variant: "reference" });
  const store = createRandomWeightStore({
    config: tinyConfig("qwen2", 2),
    kernels,
    arena,
    seed: 5,
  });
  const s = await createTrainingSession({
    store,
    kernels,
    arena,
    method: "mesp",
    lora: { rank: 2, alpha: 4, targets: ["q", "down"] },
    optimizer: { kind: "adamw", lr: 1e-2, weightDecay: 0 },
    maxGradNorm: 0,
    seed: 1,
  });
  const ids = Int32Array.from({ length: 8 }, (_, i) => (i * 37) % 512);
  await s.step([{ inputIds: ids, labels: ids, batchSize: 1, seqLen: 8 }], 1e-2);
  const copies = s.optimizerState();
  const views = s.optimizerStateViews!();
  assert.equal(views.stepCount, copies.stepCount);
  assert.deepEqual(views.rng, copies.rng);
  assert.deepEqual([...views.tensors.keys()], [...copies.tensors.keys()]);
  assert.ok(views.tensors.size > 0);
  for (const [name, v] of views.tensors) {
    assert.deepEqual(v, copies.tensors.get(name), name);
    assert.equal(v.buffer, arena.memory.buffer, `${name} is a view`);
  }
  const lora = s.loraTensorViews!();
  for (const [name, v] of s.loraTensors()) assert.deepEqual(lora.get(name)!.data, v.data, name);
});
