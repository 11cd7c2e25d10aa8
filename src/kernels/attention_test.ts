import {
  assertClose,
  dotAll,
  finiteDifferences,
  getF32,
  makeRandom,
  maxAbs,
  onEveryBuild,
  putF32,
  randomArray,
  wasmBuilds,
} from "./_testing.ts";
import { attentionBackwardArrays, attentionForwardArrays } from "./reference/attention.ts";

interface Shape {
  T: number;
  Hq: number;
  Hkv: number;
  hd: number;
  /** Sliding window (keys t - window < j <= t); 0 or absent: full causal. */
  window?: number;
}

function forward(q: Float64Array, k: Float64Array, v: Float64Array, s: Shape, scale: number) {
  const out = new Float64Array(s.T * s.Hq * s.hd);
  const lse = new Float64Array(s.Hq * s.T);
  attentionForwardArrays(out, lse, q, k, v, s.T, s.Hq, s.Hkv, s.hd, scale, s.window ?? 0);
  return { out, lse };
}

for (const window of [0, 1, 2, 4]) {
  Deno.test(`attention reference forward matches a naive masked softmax (window ${window})`, () => {
    naiveSoftmaxCheck(window);
  });
}

function naiveSoftmaxCheck(window: number): void {
  const rand = makeRandom(4);
  const s = { T: 5, Hq: 4, Hkv: 2, hd: 3, window };
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
        const visible = j <= t && (window === 0 || t - j < window);
        w.push(visible ? Math.exp(d * scale) : 0);
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
}

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
    { T: 7, Hq: 4, Hkv: 1, hd: 4, window: 3 },
    { T: 5, Hq: 2, Hkv: 2, hd: 2, window: 1 },
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
    attentionBackwardArrays(
      dq,
      dk,
      dv,
      r,
      q,
      k,
      v,
      out,
      lse,
      s.T,
      s.Hq,
      s.Hkv,
      s.hd,
      scale,
      s.window ?? 0,
    );
    const tag = JSON.stringify(s);
    const tol = { rtol: 1e-6, atol: 1e-9 };
    assertClose(dq, finiteDifferences(loss, q), tol, `dq ${tag}`);
    assertClose(dk, finiteDifferences(loss, k), tol, `dk ${tag}`);
    assertClose(dv, finiteDifferences(loss, v), tol, `dv ${tag}`);
  }
});

Deno.test("wasm attention forward/backward match the reference (both variants)", () => {
  const shapes: Shape[] = [
    { T: 1, Hq: 1, Hkv: 1, hd: 8 },
    { T: 3, Hq: 2, Hkv: 1, hd: 16 },
    { T: 17, Hq: 4, Hkv: 2, hd: 64 },
    { T: 64, Hq: 4, Hkv: 1, hd: 8 },
    { T: 33, Hq: 2, Hkv: 2, hd: 36 }, // hd with a 4-wide tail after the 32-wide passes
    // Sliding windows: aligned and unaligned starts, windows of 1, around 4 and past T.
    { T: 37, Hq: 4, Hkv: 1, hd: 16, window: 5 },
    { T: 23, Hq: 2, Hkv: 1, hd: 36, window: 8 },
    { T: 19, Hq: 4, Hkv: 2, hd: 8, window: 1 },
    { T: 9, Hq: 2, Hkv: 1, hd: 8, window: 3 },
    { T: 12, Hq: 1, Hkv: 1, hd: 8, window: 64 },
  ];
  for (const s of shapes) {
    const rand = makeRandom(50 + s.T * 7 + s.hd);
    const scale = 1 / Math.sqrt(s.hd);
    const nq = s.T * s.Hq * s.hd, nkv = s.T * s.Hkv * s.hd;
    const q = randomArray(rand, nq, 2), k = randomArray(rand, nkv, 2), v = randomArray(rand, nkv);
    const dout = randomArray(rand, nq);
    const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
      const pq = putF32(arena, q), pk = putF32(arena, k), pv = putF32(arena, v);
      const po = arena.allocF32(nq), pl = arena.allocF32(s.Hq * s.T);
      kernels.attentionForward(po, pl, pq, pk, pv, s.T, s.Hq, s.Hkv, s.hd, scale, s.window ?? 0);
      // Backward from the same saved out/lse (the reference's own) so only the backward differs.
      const dq = putF32(arena, new Float64Array(nq).fill(9));
      const dk = putF32(arena, new Float64Array(nkv).fill(9));
      const dv = putF32(arena, new Float64Array(nkv).fill(9));
      kernels.attentionBackward(
        dq,
        dk,
        dv,
        putF32(arena, dout),
        pq,
        pk,
        pv,
        po,
        pl,
        s.T,
        s.Hq,
        s.Hkv,
        s.hd,
        scale,
        s.window ?? 0,
      );
      return {
        out: getF32(arena, po, nq),
        lse: getF32(arena, pl, s.Hq * s.T),
        dq: getF32(arena, dq, nq),
        dk: getF32(arena, dk, nkv),
        dv: getF32(arena, dv, nkv),
      };
    });
    for (const { build, out } of wasm) {
      const tag = `${build} ${JSON.stringify(s)}`;
      // Scores are f32 dot products over hd (|q·k| scale <= ~2.7 here): absolute error ~1e-6,
      // which exp turns into ~1e-6 relative error in each probability; out and lse inherit it.
      assertClose(out.lse, ref.out.lse, { rtol: 1e-6, atol: 2e-6 }, `lse ${tag}`);
      assertClose(out.out, ref.out.out, { atol: 2e-6 * maxAbs(ref.out.out) }, `out ${tag}`);
      // Gradients sum up to T * Hq/Hkv such terms in f32: 1e-5 of the largest magnitude. With a
      // window of 1, dq and dk are exactly 0 (p = 1, ds = dout·v - dout·out) in f64 and the f32
      // cancellation leaves ~1e-7 of dout·v, so dv's magnitude is the floor.
      for (const name of ["dq", "dk", "dv"] as const) {
        assertClose(
          out[name],
          ref.out[name],
          { atol: 1e-5 * Math.max(maxAbs(ref.out[name]), s.window === 1 ? maxAbs(ref.out.dv) : 0) },
          `${name} ${tag}`,
        );
      }
    }
  }
});

Deno.test("wasm attention: large scores stay finite and exact (max-subtraction)", () => {
  const s = { T: 2, Hq: 1, Hkv: 1, hd: 4 };
  const q = [10, 10, 0, 0, 10, 10, 0, 0];
  const k = [5, 0, 0, 0, 0, 6, 0, 0];
  const v = [1, 0, 0, 0, 0, 2, 0, 0];
  for (
    const { build, out } of onEveryBuild(({ kernels, arena }) => {
      const po = arena.allocF32(8), pl = arena.allocF32(2);
      kernels.attentionForward(
        po,
        pl,
        putF32(arena, q),
        putF32(arena, k),
        putF32(arena, v),
        s.T,
        1,
        1,
        4,
        20,
        0,
      );
      return { out: getF32(arena, po, 8), lse: getF32(arena, pl, 2) };
    })
  ) {
    // Row 1 scores: 1000 and 1200 (exp overflows without max-subtraction); e^-200 vanishes.
    assertClose(out.lse, [1000, 1200], { rtol: 1e-7 }, `${build} lse`);
    assertClose(out.out, [1, 0, 0, 0, 0, 2, 0, 0], { atol: 0 }, `${build} out`);
  }
});

Deno.test("wasm attention at T=2048, hd=128 (largest scratch use): sampled rows vs f64", () => {
  const s = { T: 2048, Hq: 2, Hkv: 1, hd: 128 };
  const rand = makeRandom(90);
  const scale = 1 / Math.sqrt(s.hd);
  const nq = s.T * s.Hq * s.hd, nkv = s.T * s.Hkv * s.hd;
  const q = Float64Array.from(randomArray(rand, nq, 2), Math.fround);
  const k = Float64Array.from(randomArray(rand, nkv, 2), Math.fround);
  const v = Float64Array.from(randomArray(rand, nkv), Math.fround);
  const dout = Float64Array.from(randomArray(rand, nq), Math.fround);
  const row = (a: Float64Array | Float32Array, t: number, h: number, H: number) =>
    a.subarray((t * H + h) * s.hd, (t * H + h + 1) * s.hd);
  /** f64 probabilities of query row t, head h, and its output and lse. */
  const softmaxRow = (t: number, h: number) => {
    const sc = Array.from(
      { length: t + 1 },
      (_, j) => scale * dotAll(row(q, t, h, 2), row(k, j, 0, 1)),
    );
    const m = Math.max(...sc);
    const z = sc.reduce((acc, x) => acc + Math.exp(x - m), 0);
    const p = sc.map((x) => Math.exp(x - m) / z);
    const o = new Float64Array(s.hd);
    p.forEach((pj, j) => row(v, j, 0, 1).forEach((vi, i) => o[i] += pj * vi));
    return { p, o, lse: m + Math.log(z) };
  };
  for (const b of wasmBuilds()) {
    const { kernels, arena } = b;
    const pq = putF32(arena, q), pk = putF32(arena, k), pv = putF32(arena, v);
    const po = arena.allocF32(nq), pl = arena.allocF32(s.Hq * s.T);
    kernels.attentionForward(po, pl, pq, pk, pv, s.T, s.Hq, s.Hkv, s.hd, scale, 0);
    const dq = arena.allocF32(nq), dk = arena.allocF32(nkv), dv = arena.allocF32(nkv);
    kernels.attentionBackward(
      dq,
      dk,
      dv,
      putF32(arena, dout),
      pq,
      pk,
      pv,
      po,
      pl,
      s.T,
      s.Hq,
      s.Hkv,
      s.hd,
      scale,
      0,
    );
    const out = getF32(arena, po, nq), lse = getF32(arena, pl, s.Hq * s.T);
    const dqv = getF32(arena, dq, nq), dkv = getF32(arena, dk, nkv), dvv = getF32(arena, dv, nkv);
    for (const [t, h] of [[0, 0], [777, 1], [2047, 0], [2047, 1]]) {
      const ref = softmaxRow(t, h);
      const tag = `${b.name} t=${t} h=${h}`;
      assertClose([lse[h * s.T + t]], [ref.lse], { rtol: 1e-6, atol: 2e-6 }, `lse ${tag}`);
      assertClose(row(out, t, h, 2), ref.o, { atol: 2e-6 * maxAbs(ref.o) }, `out ${tag}`);
      // dq_t = scale Σ_j p_j (dout_t·v_j - dout_t·out_t) k_j
      const g = row(dout, t, h, 2);
      const delta = dotAll(g, ref.o);
      const dqRef = new Float64Array(s.hd);
      // dout·v_j - delta cancels (exactly, at t = 0): f32 error ~1e-6 of the terms' size.
      let termScale = 0;
      ref.p.forEach((pj, j) => {
        const dpj = dotAll(g, row(v, j, 0, 1));
        const dsj = pj * (dpj - delta);
        termScale += scale * pj * (Math.abs(dpj) + Math.abs(delta)) * maxAbs(row(k, j, 0, 1));
        row(k, j, 0, 1).forEach((ki, i) => dqRef[i] += scale * dsj * ki);
      });
      const atol = 1e-5 * maxAbs(dqRef) + 1e-6 * termScale;
      assertClose(row(dqv, t, h, 2), dqRef, { atol }, `dq ${tag}`);
    }
    // The last key is seen only by the last query row of each head.
    const dkLast = new Float64Array(s.hd), dvLast = new Float64Array(s.hd);
    for (const h of [0, 1]) {
      const ref = softmaxRow(s.T - 1, h);
      const g = row(dout, s.T - 1, h, 2);
      const pl = ref.p[s.T - 1];
      const dsl = pl * (dotAll(g, row(v, s.T - 1, 0, 1)) - dotAll(g, ref.o));
      row(q, s.T - 1, h, 2).forEach((qi, i) => dkLast[i] += scale * dsl * qi);
      g.forEach((gi, i) => dvLast[i] += pl * gi);
    }
    assertClose(
      row(dkv, s.T - 1, 0, 1),
      dkLast,
      { atol: 1e-5 * maxAbs(dkLast) },
      `${b.name} dk last`,
    );
    assertClose(
      row(dvv, s.T - 1, 0, 1),
      dvLast,
      { atol: 1e-5 * maxAbs(dvLast) },
      `${b.name} dv last`,
    );
  }
});
