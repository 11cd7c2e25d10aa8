import assert from "node:assert/strict";
import { Rng } from "./rng.ts";

// Sample-size-justified bounds: 5 standard errors of the statistic (two-sided tail ≈ 6e-7).
const N = 100_000;
const Z = 5;

function meanVar(xs: ArrayLike<number>): [number, number] {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  const mean = s / xs.length;
  let q = 0;
  for (let i = 0; i < xs.length; i++) q += (xs[i] - mean) ** 2;
  return [mean, q / (xs.length - 1)];
}

Deno.test("Rng: xoshiro128** known answers from state [1, 2, 3, 4] (hand-derived)", () => {
  const rng = Rng.fromState([1, 2, 3, 4]);
  // rotl(2*5, 7)*9 = 11520; the next s1 is 0; then 1029 -> 5927040; then 12295 -> 70819200.
  assert.deepEqual([rng.nextU32(), rng.nextU32(), rng.nextU32(), rng.nextU32()], [
    11520,
    0,
    5927040,
    70819200,
  ]);
});

Deno.test("Rng: same seed same stream, different seeds different streams", () => {
  const a = new Rng(123), b = new Rng(123);
  const xs = Array.from({ length: 100 }, () => a.nextU32());
  const ys = Array.from({ length: 100 }, () => b.nextU32());
  assert.deepEqual(xs, ys);
  for (const other of [124, 0, -123, 123 + 2 ** 32]) {
    const c = new Rng(other);
    assert.notDeepEqual(
      Array.from({ length: 8 }, () => c.nextU32()),
      xs.slice(0, 8),
      `seed ${other}`,
    );
  }
  for (const x of xs) assert(Number.isInteger(x) && x >= 0 && x < 2 ** 32);
  assert.throws(() => new Rng(0.5), RangeError);
});

Deno.test("Rng: getState/fromState continues the identical stream, also mid normal pair", () => {
  const rng = new Rng(99);
  rng.uniform();
  rng.normal(); // leaves the second Box–Muller value cached
  const saved = JSON.parse(JSON.stringify(rng.getState()));
  const restored = Rng.fromState(saved);
  for (let i = 0; i < 50; i++) {
    assert.deepEqual(restored.normal(), rng.normal());
    assert.deepEqual(restored.uniform(), rng.uniform());
    assert.deepEqual(restored.nextU32(), rng.nextU32());
  }
  const fa = new Float32Array(17), fb = new Float32Array(17);
  rng.fillNormal(fa, 0.3);
  restored.fillNormal(fb, 0.3);
  assert.deepEqual(fa, fb);
  assert.throws(() => Rng.fromState([0, 0, 0, 0]), RangeError);
  assert.throws(() => Rng.fromState([1, 2, 3]), TypeError);
});

Deno.test("Rng: uniform() mean and variance match U(0,1) within 5 standard errors", () => {
  const rng = new Rng(1);
  const xs = new Float64Array(N);
  for (let i = 0; i < N; i++) {
    xs[i] = rng.uniform();
    assert(xs[i] >= 0 && xs[i] < 1);
  }
  const [mean, variance] = meanVar(xs);
  // se(mean) = sqrt(1/12 / N); se(var) = sqrt((mu4 - sigma^4) / N), mu4 = 1/80, sigma^4 = 1/144.
  assert(Math.abs(mean - 0.5) < Z * Math.sqrt(1 / 12 / N), `mean ${mean}`);
  assert(Math.abs(variance - 1 / 12) < Z * Math.sqrt((1 / 80 - 1 / 144) / N), `var ${variance}`);
});

Deno.test("Rng: normal() mean and variance match N(0,1) within 5 standard errors", () => {
  const rng = new Rng(2);
  const xs = new Float64Array(N);
  for (let i = 0; i < N; i++) xs[i] = rng.normal();
  const [mean, variance] = meanVar(xs);
  // se(mean) = 1/sqrt(N); se(var) = sqrt((3 - 1) / N) for a normal.
  assert(Math.abs(mean) < Z / Math.sqrt(N), `mean ${mean}`);
  assert(Math.abs(variance - 1) < Z * Math.sqrt(2 / N), `var ${variance}`);
});

Deno.test("Rng: fillUniform stays in [lo, hi) with the right mean; fillNormal has std", () => {
  const rng = new Rng(3);
  const u = new Float32Array(N);
  rng.fillUniform(u, -0.25, 0.75);
  for (const x of u) assert(x >= -0.25 && x < 0.75);
  const [mu] = meanVar(u);
  assert(Math.abs(mu - 0.25) < Z * Math.sqrt(1 / 12 / N), `mean ${mu}`);
  const g = new Float32Array(N);
  rng.fillNormal(g, 0.02);
  const [gm, gv] = meanVar(g);
  assert(Math.abs(gm) < Z * 0.02 / Math.sqrt(N));
  assert(Math.abs(gv / 0.02 ** 2 - 1) < Z * Math.sqrt(2 / N), `var ${gv}`);
  // A range one f32 ulp wide can only yield lo.
  const tiny = new Float32Array(64);
  rng.fillUniform(tiny, 1, 1 + 2 ** -23);
  for (const x of tiny) assert.deepEqual(x, 1);
});

Deno.test("Rng: shuffle is a permutation, and each of the 6 orders of 3 is equally likely", () => {
  const rng = new Rng(4);
  const a = Array.from({ length: 1000 }, (_, i) => i);
  rng.shuffle(a);
  assert.notDeepEqual(a, Array.from({ length: 1000 }, (_, i) => i));
  assert.deepEqual([...a].sort((x, y) => x - y), Array.from({ length: 1000 }, (_, i) => i));

  const trials = 60_000;
  const counts = new Map<string, number>();
  for (let t = 0; t < trials; t++) {
    const b = ["a", "b", "c"];
    rng.shuffle(b);
    counts.set(b.join(""), (counts.get(b.join("")) ?? 0) + 1);
  }
  assert.deepEqual(counts.size, 6);
  const p = 1 / 6, se = Math.sqrt(trials * p * (1 - p)); // binomial standard deviation
  for (const [order, c] of counts) assert(Math.abs(c - trials * p) < Z * se, `${order}: ${c}`);
});
