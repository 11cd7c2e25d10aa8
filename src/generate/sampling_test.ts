import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { Rng } from "../runtime/rng.ts";
import { argmax, Nucleus, sampleToken, softmax, topPIndices } from "./sampling.ts";

const probs = [0.05, 0.5, 0.1, 0.2, 0.15];

Deno.test("top-p keeps the smallest most-probable set whose mass is >= p", () => {
  deepStrictEqual(topPIndices(probs, 0.3), [1]);
  deepStrictEqual(topPIndices(probs, 0.5), [1]); // 0.5 >= 0.5: one token is enough
  deepStrictEqual(topPIndices(probs, 0.51), [1, 3]);
  deepStrictEqual(topPIndices(probs, 0.7), [1, 3]);
  deepStrictEqual(topPIndices(probs, 0.71), [1, 3, 4]);
  deepStrictEqual(topPIndices(probs, 0.9), [1, 3, 4, 2]);
  deepStrictEqual(topPIndices(probs, 1), [1, 3, 4, 2, 0]);
  // Ties: the lower id first, so the set is deterministic.
  deepStrictEqual(topPIndices([0.25, 0.25, 0.25, 0.25], 0.5), [0, 1]);
  // Zero-probability tokens are never kept.
  deepStrictEqual(topPIndices([0, 1, 0], 1), [1]);
  throws(() => topPIndices(probs, 0), RangeError);
  throws(() => topPIndices(probs, 1.5), RangeError);
});

Deno.test("top-p on a large vocabulary matches a plain full sort", () => {
  const rng = new Rng(4);
  const logits = new Float32Array(50000);
  rng.fillNormal(logits, 3);
  const p = softmax(logits);
  for (const topP of [0.1, 0.5, 0.9, 0.999]) {
    const all = Array.from(p.keys()).sort((a, b) => p[b] - p[a] || a - b);
    const want: number[] = [];
    let mass = 0;
    for (const i of all) {
      want.push(i);
      mass += p[i];
      if (mass >= topP) break;
    }
    deepStrictEqual(topPIndices(p, topP), want, `p = ${topP}`);
  }
});

Deno.test("temperature 0 is greedy (argmax, lowest id on ties) and uses no randomness", () => {
  const rng = new Rng(1);
  const before = rng.getState();
  strictEqual(sampleToken([0.1, 3, -2, 3], { temperature: 0, topP: 0.5 }, rng), 1);
  deepStrictEqual(rng.getState(), before);
  strictEqual(argmax([-Infinity, -5, NaN, -4]), 3);
});

Deno.test("samples follow softmax(logits / T) restricted to the top-p set", () => {
  const logits = probs.map(Math.log);
  const n = 20000;
  const count = (temperature: number, topP: number, seed: number) => {
    const rng = new Rng(seed);
    const c = new Array(probs.length).fill(0);
    for (let i = 0; i < n; i++) c[sampleToken(logits, { temperature, topP }, rng)]++;
    return c.map((x) => x / n);
  };
  // top-p 0.7 keeps {1, 3}: renormalized 0.5/0.7 and 0.2/0.7, nothing else.
  const f = count(1, 0.7, 1);
  deepStrictEqual([f[0], f[2], f[4]], [0, 0, 0]);
  ok(Math.abs(f[1] - 5 / 7) < 0.015, `${f}`);
  // top-p 1, temperature 2: p ∝ sqrt(probs).
  const g = count(2, 1, 2);
  const s = softmax(logits, 2);
  const sq = probs.map(Math.sqrt);
  const z = sq.reduce((a, b) => a + b);
  for (let i = 0; i < probs.length; i++) {
    ok(Math.abs(s[i] - sq[i] / z) < 1e-12);
    ok(Math.abs(g[i] - s[i]) < 0.015, `token ${i}: ${g[i]} vs ${s[i]}`);
  }
  // The same seed draws the same tokens.
  deepStrictEqual(count(0.8, 0.9, 7), count(0.8, 0.9, 7));
});

/** The definition, by brute force: sort everything (probability desc, id asc), take the prefix. */
function refTopP(p: Float64Array, topP: number): number[] {
  const all = Array.from(p.keys()).filter((i) => p[i] > 0).sort((a, b) => p[b] - p[a] || a - b);
  const out: number[] = [];
  let mass = 0;
  for (const i of all) {
    out.push(i);
    mass += p[i];
    if (mass >= topP) break;
  }
  return out;
}

/** The draw the sort-based sampler made: walk the sorted set with u = uniform · kept mass. */
function refDraw(p: Float64Array, ids: number[], rng: Rng): number {
  let total = 0;
  for (const i of ids) total += p[i];
  const u = rng.uniform() * total;
  let acc = 0;
  for (const i of ids) {
    acc += p[i];
    if (u < acc) return i;
  }
  return ids[ids.length - 1];
}

Deno.test("top-p set and seeded draws equal the sort-based reference (many seeds, p, shapes)", () => {
  let checked = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const rng = new Rng(seed);
    const V = [7, 100, 3000, 20000][seed % 4];
    const logits = new Float32Array(V);
    // Flat (a random-weight model), peaked, and heavily tied (few distinct logits) shapes; some
    // tokens masked to -Infinity (probability exactly 0).
    const shape = seed % 3;
    rng.fillNormal(logits, shape === 0 ? 0.3 : 4);
    if (shape === 2) { for (let i = 0; i < V; i++) logits[i] = Math.round(logits[i]); }
    for (let i = 0; i < V; i += 5) if (rng.uniform() < 0.3) logits[i] = -Infinity;
    const temperature = [0.5, 0.8, 1, 1.7][seed % 4];
    const p = softmax(logits, temperature);
    for (const topP of [0.05, 0.3, 0.5, 0.9, 0.95, 0.999, 1]) {
      const want = refTopP(p, topP);
      deepStrictEqual(topPIndices(p, topP), want, `seed ${seed}, p ${topP}`);
      const nucleus = new Nucleus(p, topP);
      strictEqual(nucleus.size, want.length);
      deepStrictEqual(Array.from(nucleus.ids()).sort((a, b) => a - b), want.sort((a, b) => a - b));
      if (topP === 1) continue; // sampleToken walks the whole vocabulary in id order there
      const a = new Rng(seed * 100 + Math.round(topP * 1000));
      const b = new Rng(seed * 100 + Math.round(topP * 1000));
      const sorted = refTopP(p, topP);
      for (let k = 0; k < 20; k++) {
        strictEqual(
          sampleToken(logits, { temperature, topP }, a),
          refDraw(p, sorted, b),
          `seed ${seed}, p ${topP}, draw ${k}`,
        );
        checked++;
      }
    }
  }
  strictEqual(checked, 40 * 6 * 20);
});

Deno.test("top-p of a uniform distribution keeps the lowest ids (ties) and draws in id order", () => {
  const V = 151936;
  const p = softmax(new Float32Array(V));
  const ids = new Nucleus(p, 0.5).ids();
  strictEqual(ids.length, V / 2);
  ok(ids.every((id) => id < V / 2));
  // Draws from the kept half are uniform over it: u·mass walks it in id order.
  const rng = new Rng(3);
  const first = rng.uniform();
  const want = Math.floor(first * (V / 2));
  strictEqual(new Nucleus(p, 0.5).sample(new Rng(3)), want);
});
