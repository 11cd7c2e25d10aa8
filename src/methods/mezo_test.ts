import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import type { Batch } from "../data/batch.ts";
import type { ModelConfig } from "../model/config.ts";
import { planMemory } from "./memory_plan.ts";
import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
import { type BlockHooks, forwardLoss } from "../model/transformer.ts";
import { loraParamCount, type LoraTensors } from "../model/lora.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import { Rng } from "../runtime/rng.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import { buildCases } from "../optim/_builds.ts";
import {
  createMezoWorkspace,
  MEZO_CHUNK,
  mezoCosine,
  mezoDirection,
  mezoGradientEstimate,
  mezoStep,
} from "./mezo.ts";
import { LoraTrainingSession, type MethodName, type SessionOptions } from "./session.ts";

/** Tensors filled with uniform values in [-1, 1). */
function makeParams(arena: Arena, sizes: number[], seed: number): ParamTensor[] {
  const rng = new Rng(seed);
  return sizes.map((n, i) => {
    const p = { name: `t${i}`, ptr: arena.allocF32(n), grad: 0, n };
    const v = new Float32Array(n);
    rng.fillUniform(v, -1, 1);
    arena.f32(p.ptr, n).set(v);
    return p;
  });
}

function snapshot(arena: Arena, params: ParamTensor[]): Float32Array[] {
  return params.map((p) => arena.f32(p.ptr, p.n).slice());
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.slice().buffer);
}

/**
 * L(θ) = ½ Σ a_i (θ_i - c_i)² in f64 over the f32 parameters, and its exact gradient.
 * Curvatures a_i in [0.5, 2), centers c_i in [-1, 1).
 */
function quadratic(arena: Arena, params: ParamTensor[], seed: number) {
  const rng = new Rng(seed);
  const a = params.map((p) => Float64Array.from({ length: p.n }, () => 0.5 + 1.5 * rng.uniform()));
  const c = params.map((p) => Float64Array.from({ length: p.n }, () => 2 * rng.uniform() - 1));
  let calls = 0;
  const value = () => {
    calls++;
    let s = 0;
    params.forEach((p, t) => {
      const x = arena.f32(p.ptr, p.n);
      for (let i = 0; i < p.n; i++) s += 0.5 * a[t][i] * (x[i] - c[t][i]) ** 2;
    });
    return Promise.resolve(s);
  };
  const gradient = () =>
    params.map((p, t) => {
      const x = arena.f32(p.ptr, p.n);
      return Float64Array.from({ length: p.n }, (_, i) => a[t][i] * (x[i] - c[t][i]));
    });
  return { value, gradient, calls: () => calls };
}

/** E|cos(z, g)| for z ~ N(0, I_d), exactly: Γ(d/2) / (√π Γ((d+1)/2)), by the ratio recurrence. */
function expectedAbsCos(d: number): number {
  let ratio = d % 2 === 0 ? 2 / Math.sqrt(Math.PI) : Math.sqrt(Math.PI); // d = 2 or d = 1
  for (let k = d % 2 === 0 ? 2 : 1; k < d; k += 2) ratio *= k / (k + 1);
  return ratio / Math.sqrt(Math.PI);
}

for (const build of buildCases()) {
  Deno.test({
    name: `mezo[${build.name}]: lr = 0 leaves θ bit-identical; loss sees θ ± εz`,
    ignore: !build.available,
    async fn() {
      const { kernels, arena } = build.make();
      // Several chunks and a ragged tail.
      const params = makeParams(arena, [MEZO_CHUNK + 37, 5, 300], 11);
      const before = snapshot(arena, params);
      const eps = 1e-2, seed = 12345;
      const z = params.map((p, t) => {
        const v = new Float32Array(p.n);
        mezoDirection(v, seed, t);
        return v;
      });
      const seen: Float32Array[][] = [];
      const loss = () => {
        seen.push(snapshot(arena, params));
        return Promise.resolve(seen.length === 1 ? 2.5 : 1.5);
      };
      for (const workspace of [undefined, createMezoWorkspace(arena, params)]) {
        seen.length = 0;
        const top = arena.mark();
        const r = await mezoStep({
          kernels,
          arena,
          params,
          loss,
          eps,
          lr: 0,
          weightDecay: 0.1,
          seed,
          workspace,
        });
        assert.equal(arena.mark(), top, "the step releases what it allocated");
        assert.deepEqual(r, { lossPlus: 2.5, lossMinus: 1.5, projectedGrad: 50, loss: 2 });
        params.forEach((p, t) => {
          assert.deepEqual(bits(arena.f32(p.ptr, p.n)), bits(before[t]), `${p.name} bits`);
          // θ± = fl(θ ± εz): (θ± - θ)/ε = ±z up to one f32 rounding of θ± (|θ±| < 1.1).
          for (const [k, sign] of [[0, 1], [1, -1]]) {
            for (let i = 0; i < p.n; i++) {
              const got = (seen[k][t][i] - before[t][i]) / eps;
              assert(Math.abs(got - sign * z[t][i]) < 2e-5, `${p.name}[${i}] pass ${k}: ${got}`);
            }
          }
        });
      }
    },
  });

  Deno.test({
    name: `mezo[${build.name}]: update is θ - lr (g z + wd θ) with the step's own z`,
    ignore: !build.available,
    async fn() {
      const { kernels, arena } = build.make();
      const params = makeParams(arena, [MEZO_CHUNK + 9, 70], 12);
      const before = snapshot(arena, params);
      const q = quadratic(arena, params, 13);
      const workspace = createMezoWorkspace(arena, params);
      const top = arena.mark(), highWater = arena.highWater;
      const lr = 1e-2, wd = 0.05, seed = 99;
      const r = await mezoStep({
        kernels,
        arena,
        params,
        loss: q.value,
        eps: 1e-3,
        lr,
        weightDecay: wd,
        seed,
        workspace,
      });
      assert.equal(q.calls(), 2);
      assert.equal(arena.mark(), top, "a step with a workspace allocates nothing");
      assert.equal(arena.highWater, highWater);
      assert.equal(r.projectedGrad, (r.lossPlus - r.lossMinus) / 2e-3);
      const estimate = mezoGradientEstimate(seed, r.projectedGrad, params.map((p) => p.n));
      params.forEach((p, t) => {
        const got = arena.f32(p.ptr, p.n);
        for (let i = 0; i < p.n; i++) {
          const want = before[t][i] - lr * (estimate[t][i] + wd * before[t][i]);
          // f32 rounding of g·z, of the product and of θ: a few 1e-7 at |θ| ≲ 1.
          assert(Math.abs(got[i] - want) < 1e-6, `${p.name}[${i}]: ${got[i]} vs ${want}`);
        }
      });
    },
  });

  Deno.test({
    name: `mezo[${build.name}]: averaged over seeds the estimate points along the true gradient`,
    ignore: !build.available,
    async fn() {
      const { kernels, arena } = build.make();
      const params = makeParams(arena, [40, 24], 21); // d = 64
      const q = quadratic(arena, params, 22);
      const truth = q.gradient();
      const workspace = createMezoWorkspace(arena, params);
      const K = 1000;
      const sum = params.map((p) => new Float64Array(p.n));
      for (let k = 0; k < K; k++) {
        const seed = 1_000_000 + k;
        const r = await mezoStep({
          kernels,
          arena,
          params,
          loss: q.value,
          eps: 1e-3,
          lr: 0,
          weightDecay: 0,
          seed,
          workspace,
        });
        const est = mezoGradientEstimate(seed, r.projectedGrad, params.map((p) => p.n));
        est.forEach((e, t) => e.forEach((x, i) => sum[t][i] += x / K));
      }
      let dot = 0, ss = 0, tt = 0;
      sum.forEach((s, t) =>
        s.forEach((x, i) => {
          dot += x * truth[t][i];
          ss += x * x;
          tt += truth[t][i] ** 2;
        })
      );
      // E[z zᵀ] = I makes the mean estimate unbiased; its noise has total variance
      // (d + 1)|∇|²/K, so cos ≈ 1/sqrt(1 + 65/1000) ≈ 0.97.
      const cos = dot / Math.sqrt(ss * tt);
      assert(cos > 0.9, `cosine ${cos}`);
    },
  });

  Deno.test({
    name: `mezo[${build.name}]: one direction in d dims has mean |cos| ≈ sqrt(2/(πd))`,
    ignore: !build.available,
    async fn() {
      const { kernels, arena } = build.make();
      const sizes = [300, 700];
      const d = 1000;
      const params = makeParams(arena, sizes, 31);
      const q = quadratic(arena, params, 32);
      const truth = q.gradient();
      const workspace = createMezoWorkspace(arena, params);
      const K = 400;
      let sumAbs = 0;
      for (let k = 0; k < K; k++) {
        const seed = 7_000 + k;
        const r = await mezoStep({
          kernels,
          arena,
          params,
          loss: q.value,
          eps: 1e-3,
          lr: 0,
          weightDecay: 0,
          seed,
          workspace,
        });
        const cos = mezoCosine(seed, r.projectedGrad, truth);
        // SPSA on a quadratic is exact up to f32 rounding: g = zᵀ∇, so the estimate never
        // points against the gradient.
        assert(cos >= 0, `seed ${seed}: ${cos}`);
        if (k === 0) {
          const est = mezoGradientEstimate(seed, r.projectedGrad, sizes);
          let dot = 0, ee = 0, tt = 0;
          est.forEach((e, t) =>
            e.forEach((x, i) => {
              dot += x * truth[t][i];
              ee += x * x;
              tt += truth[t][i] ** 2;
            })
          );
          assert(Math.abs(cos - dot / Math.sqrt(ee * tt)) < 1e-6, "mezoCosine vs materialized");
        }
        sumAbs += Math.abs(cos);
      }
      const mean = sumAbs / K;
      const expected = expectedAbsCos(d); // ≈ sqrt(2/(π d)) = 0.02523
      assert(Math.abs(expected - Math.sqrt(2 / (Math.PI * d))) < 1e-4);
      // Var|cos| = E[cos²] - (E|cos|)² = 1/d - expected²; 5 standard errors of a K-sample mean.
      const se = Math.sqrt((1 / d - expected ** 2) / K);
      assert(
        Math.abs(mean - expected) < 5 * se,
        `mean |cos| ${mean}, expected ${expected} ± ${5 * se}`,
      );
    },
  });
}

Deno.test("mezo: a throwing or NaN loss leaves θ restored; a leaking loss is reported", async () => {
  const { kernels, arena } = buildCases()[0].make();
  const params = makeParams(arena, [50], 41);
  const before = snapshot(arena, params);
  const base = { kernels, arena, params, eps: 1e-2, lr: 1e-2, weightDecay: 0, seed: 5 };
  const top = arena.mark();
  let n = 0;
  await assert.rejects(
    mezoStep({
      ...base,
      loss: () => n++ === 0 ? Promise.resolve(1) : Promise.reject(new Error("boom")),
    }),
    /boom/,
  );
  assert.deepEqual(bits(arena.f32(params[0].ptr, 50)), bits(before[0]));
  assert.equal(arena.mark(), top);

  const r = await mezoStep({ ...base, loss: () => Promise.resolve(NaN) });
  assert(Number.isNaN(r.projectedGrad));
  assert.deepEqual(bits(arena.f32(params[0].ptr, 50)), bits(before[0]), "NaN loss: no update");

  await assert.rejects(
    mezoStep({ ...base, loss: () => Promise.resolve(arena.alloc(64)) }),
    /left the arena top moved/,
  );
  assert.deepEqual(bits(arena.f32(params[0].ptr, 50)), bits(before[0]));
  await assert.rejects(mezoStep({ ...base, eps: 0, loss: () => Promise.resolve(0) }), RangeError);
  const small = createMezoWorkspace(arena, [{ ...params[0], n: 10 }]);
  await assert.rejects(
    mezoStep({ ...base, workspace: small, loss: () => Promise.resolve(0) }),
    /workspace holds 10 floats/,
  );
});

Deno.test("mezo: with blocks, only the block between its hooks is perturbed, from an exact copy", async () => {
  const { kernels, arena } = buildCases()[0].make();
  // Three "blocks" of tensors, block 1 larger than one z chunk.
  const params = makeParams(arena, [30, 7, MEZO_CHUNK + 5, 11, 40], 51);
  const blocks = [[0, 1], [2, 3], [4]];
  const before = snapshot(arena, params);
  const eps = 1e-2, seed = 77;
  const workspace = createMezoWorkspace(arena, params, blocks);
  assert.equal(workspace.backupFloats, MEZO_CHUNK + 5 + 11, "one block's backup, the largest");
  const z = params.map((p, t) => {
    const v = new Float32Array(p.n);
    mezoDirection(v, seed, t);
    return v;
  });
  let pass = 0;
  const loss = (hooks: BlockHooks) => {
    const sign = pass++ === 0 ? 1 : -1;
    for (let b = 0; b < blocks.length; b++) {
      hooks.beforeBlock(b);
      params.forEach((p, t) => {
        const x = arena.f32(p.ptr, p.n);
        if (!blocks[b].includes(t)) {
          // Every other block holds exactly θ.
          assert.deepEqual(bits(x), bits(before[t]), `${p.name} outside block ${b}`);
          return;
        }
        for (let i = 0; i < p.n; i++) {
          const got = (x[i] - before[t][i]) / eps;
          assert(Math.abs(got - sign * z[t][i]) < 2e-5, `${p.name}[${i}] pass ${sign}: ${got}`);
        }
      });
      hooks.afterBlock(b);
    }
    return Promise.resolve(sign > 0 ? 3 : 1);
  };
  const top = arena.mark();
  const r = await mezoStep({
    kernels,
    arena,
    params,
    blocks,
    loss,
    eps,
    lr: 0,
    weightDecay: 0.1,
    seed,
    workspace,
  });
  assert.equal(pass, 2);
  assert.equal(arena.mark(), top);
  assert.equal(r.projectedGrad, 100);
  params.forEach((p, t) => assert.deepEqual(bits(arena.f32(p.ptr, p.n)), bits(before[t])));

  // Misuse throws and leaves θ bit-identical.
  const base = { kernels, arena, params, blocks, eps, lr: 1e-2, weightDecay: 0, seed, workspace };
  const misuse: [string, (h: BlockHooks) => void, RegExp][] = [
    ["two blocks at once", (h) => {
      h.beforeBlock(0);
      h.beforeBlock(1);
    }, /beforeBlock\(1\) while block 0 is perturbed/],
    ["a block left perturbed", (h) => {
      for (const b of [0, 1, 2]) h.beforeBlock(b), b < 2 && h.afterBlock(b);
    }, /returned with block 2 perturbed/],
    ["a block never run", (h) => {
      h.beforeBlock(0);
      h.afterBlock(0);
    }, /never ran block 1/],
    ["afterBlock of another block", (h) => {
      h.beforeBlock(2);
      h.afterBlock(1);
    }, /afterBlock\(1\): block 1 is not perturbed/],
    ["no such block", (h) => h.beforeBlock(3), /no such block/],
  ];
  for (const [what, use, err] of misuse) {
    await assert.rejects(
      mezoStep({ ...base, loss: (h) => Promise.resolve(use(h)).then(() => 1) }),
      err,
      what,
    );
    params.forEach((p, t) => assert.deepEqual(bits(arena.f32(p.ptr, p.n)), bits(before[t]), what));
  }
  await assert.rejects(
    mezoStep({ ...base, loss: () => Promise.resolve(0), blocks: [[0, 1], [2, 3]] }),
    /tensor 4 is in no block/,
  );
  await assert.rejects(
    mezoStep({ ...base, loss: () => Promise.resolve(0), blocks: [[0, 1], [1, 2, 3, 4]] }),
    /tensor 1 is in two blocks/,
  );
  // A workspace sized for a whole-model backup still serves; a block-sized one cannot
  // serve the whole-model mode.
  await assert.rejects(
    mezoStep({ ...base, blocks: undefined, loss: () => Promise.resolve(0) }),
    /workspace holds 4112 floats, a block needs 4189/,
  );
});

// ---- MeZO on a transformer: just-in-time perturbation of each block's adapters ---------------

const ALL = [...LINEAR_NAMES];

function tinyBatch(config: ModelConfig, seed: number, batchSize: number, seqLen: number): Batch {
  const rng = new Rng(seed);
  const inputIds = Int32Array.from(
    { length: batchSize * seqLen },
    () => rng.nextU32() % config.vocabSize,
  );
  const labels = inputIds.slice();
  labels[2] = -100;
  return { inputIds, labels, batchSize, seqLen };
}

/** A session on a random 3-layer int4 model, and a second one (the copy) on the same store. */
function twoSessions(method: MethodName, weightDecay = 0.05) {
  const { kernels, arena } = loadKernelsSync({ variant: "relaxed" });
  const config = tinyConfig("qwen2", 3);
  const store = createRandomWeightStore({
    config,
    kernels,
    arena,
    seed: 5,
    quant: "int4",
    groupSize: 32,
  });
  const options: SessionOptions = {
    store,
    kernels,
    arena,
    method,
    seed: 17,
    maxGradNorm: 0,
    gradAccum: 2,
    lora: { rank: 4, alpha: 8, targets: ALL },
    optimizer: { kind: "sgd", lr: 1e-3, weightDecay },
    mezo: { eps: 1e-2 },
    headChunkRows: 64,
    mlpChunkRows: 4,
  };
  const s = new LoraTrainingSession(options);
  const copy = new LoraTrainingSession(options);
  // Non-zero B, so that every adapter tensor moves the loss.
  const rng = new Rng(3);
  const t = s.loraTensors();
  for (const v of t.values()) {
    const noise = new Float32Array(v.data.length);
    rng.fillUniform(noise, -0.2, 0.2);
    for (let i = 0; i < noise.length; i++) v.data[i] += noise[i];
  }
  s.setLoraTensors(t);
  return { s, copy, config, kernels, arena };
}

/**
 * Σ loss / tokens of `micro` at θ + scale·z(seed) computed on an explicitly perturbed copy of
 * the adapters: every tensor of the copy is set to θ and gets `scale · z` added as a whole
 * (the same axpy kernel as the step), then a plain forward without hooks.
 */
async function perturbedCopyLoss(
  copy: LoraTrainingSession,
  theta: LoraTensors,
  seed: number,
  scale: number,
  micro: Batch[],
): Promise<number> {
  copy.setLoraTensors(theta);
  const { kernels, arena } = copy.model;
  const z = arena.allocF32(MEZO_CHUNK);
  copy.lora.params.forEach((p, t) => {
    for (let off = 0; off < p.n; off += MEZO_CHUNK) {
      const len = Math.min(MEZO_CHUNK, p.n - off);
      mezoDirection(arena.f32(z, len), seed, t, off);
      kernels.axpy(p.ptr + off * 4, z, scale, len);
    }
  });
  arena.release(z);
  let sum = 0, tokens = 0;
  for (const b of micro) {
    const r = await forwardLoss(copy.model, b);
    sum += r.lossSum;
    tokens += r.count;
  }
  return sum / tokens;
}

Deno.test("mezo session: the perturbed losses equal those of an explicitly perturbed copy; lr = 0 restores θ bit for bit", async () => {
  const { s, copy, config } = twoSessions("mezo");
  const eps = 1e-2;
  const seeds = new Rng(17); // the session's own seed stream draws each step's direction
  const b1 = tinyBatch(config, 1, 2, 6), b2 = tinyBatch(config, 2, 1, 9);
  for (const micro of [[b1], [b1, b2]]) {
    const theta = s.loraTensors();
    const seed = seeds.nextU32();
    const r = await s.step(micro, 0);
    const plus = await perturbedCopyLoss(copy, theta, seed, eps, micro);
    const minus = await perturbedCopyLoss(copy, theta, seed, -eps, micro);
    const base = await perturbedCopyLoss(copy, theta, seed, 0, micro);
    assert.notEqual(plus, base, "the perturbation moves the loss");
    assert.notEqual(plus, minus);
    // The step reports (L+ + L-) / 2, each L the same f32 forward as the copy's: bit-equal.
    assert.equal(r.loss, (plus + minus) / 2, `${micro.length} micro-batches`);
    // lr = 0 (weight decay 0.05 too): every adapter bit-identical.
    for (const [name, v] of s.loraTensors()) {
      assert.deepEqual(bits(v.data), bits(theta.get(name)!.data), name);
    }
  }
  // And the direct step reports L+ and L- themselves, through the forward's block hooks.
  const theta = s.loraTensors();
  const m = s.model;
  const blocks = m.lora.blocks.map((_, i) =>
    m.lora.blockParams(i).map((p) => m.lora.params.indexOf(p))
  );
  const r = await mezoStep({
    kernels: m.kernels,
    arena: m.arena,
    params: m.lora.params,
    blocks,
    loss: async (hooks) => {
      const f = await forwardLoss(m, b1, hooks);
      return f.lossSum / f.count;
    },
    eps,
    lr: 0,
    weightDecay: 0,
    seed: 4242,
  });
  assert.equal(r.lossPlus, await perturbedCopyLoss(copy, theta, 4242, eps, [b1]));
  assert.equal(r.lossMinus, await perturbedCopyLoss(copy, theta, 4242, -eps, [b1]));
  for (const [name, v] of s.loraTensors()) {
    assert.deepEqual(bits(v.data), bits(theta.get(name)!.data), name);
  }
  // lr > 0 does move θ.
  await s.step([b1], 1e-2);
  assert.notDeepEqual(s.loraTensors(), theta);
});

Deno.test("mezo: one block's backup keeps its plan and measured high-water below lcsb's", async () => {
  // A deeper small model, where a whole-model backup (8 blocks) would not fit under lcsb's peak.
  const config = tinyConfig("qwen2", 8);
  const batch = tinyBatch(config, 3, 1, 16);
  const lora = { rank: 4, alpha: 8, targets: ALL };
  const used = new Map<string, number>();
  const plans = new Map<string, ReturnType<typeof planMemory>>();
  for (const method of ["lcsb", "mezo"] as const) {
    const { kernels, arena } = loadKernelsSync({ variant: "relaxed" });
    const store = createRandomWeightStore({
      config,
      kernels,
      arena,
      seed: 7,
      quant: "int4",
      groupSize: 32,
    });
    const base = arena.used;
    const s = new LoraTrainingSession({
      store,
      kernels,
      arena,
      method,
      seed: 1,
      maxGradNorm: 0,
      lora,
      optimizer: { kind: "sgd", lr: 1e-3, weightDecay: 0 },
      headChunkRows: 64,
      mlpChunkRows: 8,
    });
    for (let i = 0; i < 3; i++) {
      await s.step([batch], 1e-3);
      if (i > 0) assert.equal(s.memory().grewLastStep, false, `${method} step ${i + 1} grew`);
    }
    const plan = planMemory({
      config,
      method,
      seqLen: 16,
      batchSize: 1,
      lora,
      optimizer: "sgd",
      headChunkRows: 64,
      mlpChunkRows: 8,
    });
    const u = s.memory().wasmHighWater - base;
    assert.ok(
      u <= plan.total && u >= 0.97 * plan.total,
      `${method}: used ${u}, plan ${plan.total}`,
    );
    used.set(method, u);
    plans.set(method, plan);
    if (method === "mezo") {
      // The workspace: one block's adapters (packed) and one z chunk.
      assert.equal(plan.optimizer, align64(4 * loraParamCount(config, lora) / 8) + 4 * MEZO_CHUNK);
    }
  }
  const [lcsb, mezo] = [used.get("lcsb")!, used.get("mezo")!];
  assert.ok(mezo < lcsb, `mezo ${mezo} vs lcsb ${lcsb}`);
  assert.ok(plans.get("mezo")!.total < plans.get("lcsb")!.total);
  // What a whole-model backup would have added puts mezo above lcsb on this model.
  const wholeBackup = align64(4 * loraParamCount(config, lora)) + 4 * MEZO_CHUNK;
  const mezoWhole = mezo - plans.get("mezo")!.optimizer + wholeBackup;
  assert.ok(mezoWhole > lcsb, `whole-backup mezo ${mezoWhole} vs lcsb ${lcsb}`);
});

Deno.test("memory plan, Qwen2.5-0.5B shapes at seq 256 rank 8: lcsb >= mezo, mezo's backup is one block", () => {
  const config: ModelConfig = {
    ...tinyConfig("qwen2"),
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 151936,
  };
  const lora = { rank: 8, alpha: 16, targets: ALL };
  const plan = (method: MethodName) =>
    planMemory({ config, method, seqLen: 256, batchSize: 1, lora, optimizer: "sgd" });
  const [full, mebp, mesp, lcsb, mezo] = (["full", "mebp", "mesp", "lcsb", "mezo"] as const).map(
    plan,
  );
  assert.ok(
    full.total > mebp.total && mebp.total > mesp.total && mesp.total >= lcsb.total &&
      lcsb.total >= mezo.total,
    JSON.stringify({ full, mebp, mesp, lcsb, mezo }),
  );
  // 4.399 M parameters / 24 blocks, f32, + one 16 KiB chunk of z: ~0.72 MiB, not 16.8 MiB.
  assert.equal(mezo.optimizer, 4 * 4_399_104 / 24 + 4 * MEZO_CHUNK);
  assert.equal(mezo.grads, 0);
});

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}
