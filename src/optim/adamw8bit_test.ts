import assert from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { LoraParams } from "../model/lora.ts";
import { planMemory } from "../methods/memory_plan.ts";
import { tinyConfig } from "../model/random_weights.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import { Rng } from "../runtime/rng.ts";
import { SIGNED_LEVELS, UNSIGNED_LEVELS } from "./blockwise_quant.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import { createOptimizer } from "./factory.ts";
import type { OptimizerConfig } from "./optimizer.ts";

/** Two blocks and a ragged tail, one partial block, and a tiny tensor. */
const SIZES = [600, 100, 3];
const STEPS = 25;
const CFG: OptimizerConfig = { kind: "adamw8bit", lr: 1e-2, weightDecay: 0.01 };

function setup(seed: number) {
  const { kernels, arena } = loadKernelsSync({ variant: "reference" });
  const rng = new Rng(seed);
  const params: ParamTensor[] = SIZES.map((n, i) => {
    const p = { name: `t${i}`, ptr: arena.allocF32(n), grad: arena.allocF32(n), n };
    rng.fillUniform(arena.f32(p.ptr, n), -1, 1);
    return p;
  });
  return { kernels, arena, params };
}

/**
 * Step t's gradient of tensor i: element scales spread over 1e-2 .. 1 within a tensor (so the
 * first moment spans ~3 decades inside a block); step 3 is zero.
 */
function gradsFor(t: number, i: number, n: number): Float32Array {
  const g = new Float32Array(n);
  if (t === 3) return g;
  new Rng(97 * t + i).fillNormal(g, 1);
  for (let j = 0; j < n; j++) g[j] *= 10 ** (-2 * ((j * 7) % 13) / 12);
  return g;
}

/**
 * The algorithm of adamw8bit.ts written out per value in f64: decode the moments, update them
 * and the parameter, re-encode each block with its largest magnitude as the scale.
 */
class Reference {
  m: Float64Array[];
  v: Float64Array[];
  p: Float64Array[];
  constructor(init: Float32Array[], readonly quantized: boolean) {
    this.p = init.map((x) => Float64Array.from(x));
    this.m = init.map((x) => new Float64Array(x.length));
    this.v = init.map((x) => new Float64Array(x.length));
  }
  step(t: number, i: number, g: Float32Array, lr: number, wd: number) {
    const [b1, b2, eps] = [0.9, 0.999, 1e-8];
    const { m, v, p } = { m: this.m[i], v: this.v[i], p: this.p[i] };
    for (let j = 0; j < p.length; j++) {
      m[j] = b1 * m[j] + (1 - b1) * g[j];
      v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j];
      const upd = (m[j] / (1 - b1 ** t)) / (Math.sqrt(v[j] / (1 - b2 ** t)) + eps);
      p[j] = Math.fround(p[j] - lr * (wd * p[j] + upd));
    }
    if (!this.quantized) return;
    for (let s = 0; s < p.length; s += 256) {
      const e = Math.min(p.length, s + 256);
      const sm = f32AtLeast(Math.max(...m.subarray(s, e).map(Math.abs)));
      const sv = f32AtLeast(Math.sqrt(Math.max(...v.subarray(s, e))));
      for (let j = s; j < e; j++) {
        m[j] = Math.sign(m[j]) * sm * nearestLevel(SIGNED_LEVELS, Math.abs(m[j]) / sm, false);
        v[j] = (sv * nearestLevel(UNSIGNED_LEVELS, Math.sqrt(v[j]) / sv, true)) ** 2;
      }
    }
  }
}

/** The level nearest to y (linear scan); `positive`: never 0 for y > 0. */
function nearestLevel(levels: Float64Array, y: number, positive: boolean): number {
  if (!(y > 0)) return 0;
  let best = 0;
  for (let k = 1; k < levels.length; k++) {
    if (Math.abs(levels[k] - y) < Math.abs(levels[best] - y)) best = k;
  }
  return positive && best === 0 ? levels[1] : levels[best];
}

function f32AtLeast(x: number): number {
  const f = Math.fround(x);
  if (f >= x) return f;
  const b = new Float32Array([f]);
  new Uint32Array(b.buffer)[0]++;
  return b[0];
}

function run(
  seed: number,
  from: number,
  to: number,
  s = setup(seed),
  opt = createOptimizer(CFG, s.kernels, s.arena, s.params),
) {
  for (let t = from; t <= to; t++) {
    opt.beginStep();
    s.params.forEach((p, i) => {
      s.arena.f32(p.grad, p.n).set(gradsFor(t, i, p.n));
      opt.update(p, CFG.lr);
    });
  }
  return { ...s, opt };
}

Deno.test("adamw8bit: matches an f64 reference of the same algorithm over 25 steps", () => {
  const s = setup(1);
  const ref = new Reference(s.params.map((p) => s.arena.f32(p.ptr, p.n).slice()), true);
  const got = run(1, 1, STEPS, s);
  for (let t = 1; t <= STEPS; t++) {
    SIZES.forEach((n, i) => ref.step(t, i, gradsFor(t, i, n), CFG.lr, CFG.weightDecay));
  }
  got.params.forEach((p, i) => {
    const a = got.arena.f32(p.ptr, p.n);
    for (let j = 0; j < p.n; j++) {
      assert(Math.abs(a[j] - ref.p[i][j]) <= 1e-6, `t${i}[${j}]: ${a[j]} vs ${ref.p[i][j]}`);
    }
  });
});

Deno.test("adamw8bit: stays close to exact AdamW (f64, unquantized moments)", () => {
  const s = setup(2);
  const init = s.params.map((p) => s.arena.f32(p.ptr, p.n).slice());
  const exact = new Reference(init, false);
  const got = run(2, 1, STEPS, s);
  for (let t = 1; t <= STEPS; t++) {
    SIZES.forEach((n, i) => exact.step(t, i, gradsFor(t, i, n), CFG.lr, CFG.weightDecay));
  }
  // Relative to the largest total parameter change of the exact run (~ STEPS * lr).
  let worst = 0, largest = 0, meanDiff = 0, count = 0;
  got.params.forEach((p, i) => {
    const a = got.arena.f32(p.ptr, p.n);
    for (let j = 0; j < p.n; j++) {
      const d = Math.abs(a[j] - exact.p[i][j]);
      worst = Math.max(worst, d);
      meanDiff += d;
      count++;
      largest = Math.max(largest, Math.abs(exact.p[i][j] - init[i][j]));
    }
  });
  // Measured: worst 6.2 %, mean 1.0 % of the largest change (the moments' ~5 % level spacing).
  assert(worst <= 0.1 * largest, `worst ${worst} vs largest change ${largest}`);
  assert(meanDiff / count <= 0.02 * largest, `mean ${meanDiff / count} vs ${largest}`);
});

Deno.test("adamw8bit: restored state continues bit for bit; bad state is refused intact", () => {
  const straight = run(3, 1, 12);
  const first = run(3, 1, 6);
  const saved = first.opt.stateTensors();
  const savedParams = first.params.map((p) => first.arena.f32(p.ptr, p.n).slice());
  const s = setup(3);
  s.params.forEach((p, i) => s.arena.f32(p.ptr, p.n).set(savedParams[i]));
  const opt = createOptimizer(CFG, s.kernels, s.arena, s.params);
  opt.loadState(6, saved);
  run(3, 7, 12, s, opt);
  straight.params.forEach((p, i) => {
    const a = new Uint32Array(straight.arena.f32(p.ptr, p.n).slice().buffer);
    const b = new Uint32Array(s.arena.f32(s.params[i].ptr, p.n).slice().buffer);
    assert.deepEqual(b, a, `params ${p.name}`);
  });
  for (const [k, v] of straight.opt.stateTensors()) {
    assert.deepEqual(opt.stateTensors().get(k), v, `state ${k}`);
  }
  assert.equal(saved.get("t0.exp_avg.q")!.length, 600);
  assert.equal(saved.get("t0.exp_avg.scale")!.length, 3);
  const before = opt.stateTensors();
  const wrongType = new Map(saved);
  wrongType.set("t1.exp_avg_sq.q", new Float32Array(100));
  assert.throws(() => opt.loadState(1, wrongType), /t1.exp_avg_sq.q must be U8/);
  const short = new Map(saved);
  short.set("t2.exp_avg.scale", new Float32Array(2));
  assert.throws(() => opt.loadState(1, short), /t2.exp_avg.scale has 2 values, want 1/);
  const missing = new Map(saved);
  missing.delete("t0.exp_avg.q");
  assert.throws(() => opt.loadState(1, missing), /lacks t0.exp_avg.q/);
  const extra = new Map(saved).set("t0.exp_avg", new Float32Array(600));
  assert.throws(() => opt.loadState(1, extra), /unknown tensor t0.exp_avg$/);
  assert.deepEqual(opt.stateTensors(), before);
  assert.equal(opt.stepCount, 12);
});

Deno.test("adamw8bit: the memory plan's optimizer bytes equal what it allocates, ~1/4 of adamw's", () => {
  for (const arch of ["qwen2", "qwen3"] as const) {
    const config = tinyConfig(arch);
    const lora = { rank: 8, alpha: 16, targets: [...LINEAR_NAMES] };
    const plan = (kind: "adamw" | "adamw8bit") =>
      planMemory({ config, method: "mesp", seqLen: 8, batchSize: 1, lora, optimizer: kind })
        .optimizer;
    for (const kind of ["adamw", "adamw8bit"] as const) {
      const { kernels, arena } = loadKernelsSync({ variant: "reference" });
      const params = new LoraParams(config, lora, arena, 1, "block").params;
      const before = arena.used;
      createOptimizer({ kind, lr: 1e-3, weightDecay: 0 }, kernels, arena, params);
      assert.equal(arena.used - before, plan(kind), `${arch} ${kind}`);
    }
    const ratio = plan("adamw") / plan("adamw8bit");
    assert(ratio > 3 && ratio <= 4, `${arch}: adamw / adamw8bit state = ${ratio}`);
  }
});
