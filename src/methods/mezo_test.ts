import assert from "node:assert/strict";
import type { Arena } from "../runtime/arena.ts";
import { Rng } from "../runtime/rng.ts";
import type { ParamTensor } from "../optim/optimizer.ts";
import { buildCases } from "../optim/_builds.ts";
import {
  createMezoWorkspace,
  MEZO_CHUNK,
  mezoCosine,
  mezoDirection,
  mezoGradientEstimate,
  mezoStep,
} from "./mezo.ts";

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
