import { assertClose, dotAll, finiteDifferences, makeRandom, randomArray } from "./_testing.ts";
import { attentionBackwardArrays, attentionForwardArrays } from "./reference/attention.ts";

interface Shape {
  T: number;
  Hq: number;
  Hkv: number;
  hd: number;
}

function forward(q: Float64Array, k: Float64Array, v: Float64Array, s: Shape, scale: number) {
  const out = new Float64Array(s.T * s.Hq * s.hd);
  const lse = new Float64Array(s.Hq * s.T);
  attentionForwardArrays(out, lse, q, k, v, s.T, s.Hq, s.Hkv, s.hd, scale);
  return { out, lse };
}

Deno.test("attention reference forward matches a naive masked softmax", () => {
  const rand = makeRandom(4);
  const s = { T: 5, Hq: 4, Hkv: 2, hd: 3 };
  const scale = 0.7;
  const q = randomArray(rand, s.T * s.Hq * s.hd, 2);
  const k = randomArray(rand, s.T * s.Hkv * s.hd, 2);
  const v = randomArray(rand, s.T * s.Hkv * s.hd);
  const { out, lse } = forward(q, k, v, s, scale);
  // Independent form: full [T, T] score matrix with -Infinity above the diagonal.
  for (let h = 0; h < s.Hq; h++) {
    const kvh = Math.floor(h / 2);
    for (let t = 0; t < s.T; t++) {
      const w: number[] = [];
      for (let j = 0; j < s.T; j++) {
        let d = 0;
        for (let i = 0; i < s.hd; i++) {
          d += q[(t * s.Hq + h) * s.hd + i] * k[(j * s.Hkv + kvh) * s.hd + i];
        }
        w.push(j <= t ? Math.exp(d * scale) : 0);
      }
      const z = w.reduce((a, b) => a + b, 0);
      assertClose([lse[h * s.T + t]], [Math.log(z)], { rtol: 1e-14 }, `lse h=${h} t=${t}`);
      for (let i = 0; i < s.hd; i++) {
        let o = 0;
        for (let j = 0; j < s.T; j++) o += (w[j] / z) * v[(j * s.Hkv + kvh) * s.hd + i];
        assertClose([out[(t * s.Hq + h) * s.hd + i]], [o], { rtol: 1e-13, atol: 1e-15 }, "out");
      }
    }
  }
});

Deno.test("attention reference stays finite for large scores (max-subtraction)", () => {
  const s = { T: 2, Hq: 1, Hkv: 1, hd: 1 };
  const { out, lse } = forward(
    Float64Array.of(100, 100),
    Float64Array.of(10, 11),
    Float64Array.of(1, 2),
    s,
    1,
  );
  // Row 1: scores 1000 and 1100; e^-100 is negligible next to 1.
  assertClose(out, [1, 2], { rtol: 1e-15 }, "out");
  assertClose(lse, [1000, 1100], { rtol: 1e-15 }, "lse");
});

Deno.test("attention reference backward matches finite differences (f64)", () => {
  const rand = makeRandom(5);
  const shapes: Shape[] = [
    { T: 1, Hq: 1, Hkv: 1, hd: 4 },
    { T: 3, Hq: 2, Hkv: 1, hd: 8 },
    { T: 6, Hq: 4, Hkv: 2, hd: 4 },
  ];
  for (const s of shapes) {
    const scale = 1 / Math.sqrt(s.hd);
    const q = randomArray(rand, s.T * s.Hq * s.hd, 1.5);
    const k = randomArray(rand, s.T * s.Hkv * s.hd, 1.5);
    const v = randomArray(rand, s.T * s.Hkv * s.hd);
    const r = randomArray(rand, s.T * s.Hq * s.hd);
    const loss = () => dotAll(forward(q, k, v, s, scale).out, r);
    const { out, lse } = forward(q, k, v, s, scale);
    const dq = new Float64Array(q.length).fill(7); // overwritten, not accumulated
    const dk = new Float64Array(k.length).fill(7);
    const dv = new Float64Array(v.length).fill(7);
    attentionBackwardArrays(dq, dk, dv, r, q, k, v, out, lse, s.T, s.Hq, s.Hkv, s.hd, scale);
    const tag = JSON.stringify(s);
    const tol = { rtol: 1e-6, atol: 1e-9 };
    assertClose(dq, finiteDifferences(loss, q), tol, `dq ${tag}`);
    assertClose(dk, finiteDifferences(loss, k), tol, `dk ${tag}`);
    assertClose(dv, finiteDifferences(loss, v), tol, `dv ${tag}`);
  }
});
