import {
  assertClose,
  finiteDifferences,
  getF32,
  makeRandom,
  maxAbs,
  onEveryBuild,
  putF32,
  randomArray,
} from "./_testing.ts";
import { rmsnormBackwardArrays, rmsnormForwardArrays } from "./reference/norm.ts";

function refForward(x: Float64Array, w: Float64Array, T: number, D: number, eps: number) {
  const out = new Float64Array(T * D);
  const rstd = new Float64Array(T);
  rmsnormForwardArrays(out, rstd, x, w, T, D, eps);
  return { out, rstd };
}

Deno.test("rmsnorm reference forward matches the definition on a hand example", () => {
  const x = Float64Array.of(1, 2, 3, 4, -2, 0, 0, 0);
  const w = Float64Array.of(1, 0.5, 2, -1);
  const eps = 1e-6;
  const { out, rstd } = refForward(x, w, 2, 4, eps);
  const r0 = 1 / Math.sqrt(30 / 4 + eps);
  const r1 = 1 / Math.sqrt(4 / 4 + eps);
  assertClose(rstd, [r0, r1], { rtol: 1e-15 }, "rstd");
  assertClose(out, [r0, r0, 6 * r0, -4 * r0, -2 * r1, 0, 0, 0], { rtol: 1e-15 }, "out");
});

Deno.test("rmsnorm reference backward matches finite differences (f64)", () => {
  const rand = makeRandom(1);
  for (const [T, D] of [[1, 5], [3, 17], [4, 64]]) {
    const eps = 1e-5;
    const x = randomArray(rand, T * D, 2);
    const w = randomArray(rand, D, 1.5);
    const r = randomArray(rand, T * D);
    const loss = () => {
      const { out } = refForward(x, w, T, D, eps);
      let s = 0;
      for (let i = 0; i < out.length; i++) s += out[i] * r[i];
      return s;
    };
    const { rstd } = refForward(x, w, T, D, eps);
    const dx = new Float64Array(T * D);
    const dw = new Float64Array(D);
    rmsnormBackwardArrays(dx, dw, r, x, w, rstd, T, D, 0);
    assertClose(dx, finiteDifferences(loss, x), { rtol: 1e-6, atol: 1e-8 }, `dx T=${T} D=${D}`);
    assertClose(dw, finiteDifferences(loss, w), { rtol: 1e-6, atol: 1e-8 }, `dw T=${T} D=${D}`);
    // acc = 1 adds onto what is there; dw accumulates too.
    const dx2 = dx.slice();
    const dw2 = dw.slice();
    rmsnormBackwardArrays(dx2, dw2, r, x, w, rstd, T, D, 1);
    assertClose(dx2, dx.map((v) => 2 * v), { rtol: 1e-15 }, "dx acc");
    assertClose(dw2, dw.map((v) => 2 * v), { rtol: 1e-15 }, "dw acc");
  }
});

Deno.test("wasm rmsnorm forward/backward match the reference (ragged D, both variants)", () => {
  for (const [T, D] of [[1, 3], [3, 17], [4, 64], [2, 1003]]) {
    const rand = makeRandom(20 + D);
    const x = randomArray(rand, T * D, 3);
    const w = randomArray(rand, D, 1.5);
    const dout = randomArray(rand, T * D);
    const dx0 = randomArray(rand, T * D);
    const eps = 1e-6;
    const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
      const px = putF32(arena, x), pw = putF32(arena, w), po = arena.allocF32(T * D);
      const pr = arena.allocF32(T);
      kernels.rmsnormForward(po, pr, px, pw, T, D, eps);
      const pdx = putF32(arena, dx0), pdw = putF32(arena, new Float64Array(D).fill(0.5));
      kernels.rmsnormBackward(pdx, pdw, putF32(arena, dout), px, pw, pr, T, D, 1);
      const pdx2 = putF32(arena, dx0);
      kernels.rmsnormBackward(pdx2, 0, putF32(arena, dout), px, pw, pr, T, D, 0);
      return {
        out: getF32(arena, po, T * D),
        rstd: getF32(arena, pr, T),
        dxAcc: getF32(arena, pdx, T * D),
        dw: getF32(arena, pdw, D),
        dx: getF32(arena, pdx2, T * D),
      };
    });
    for (const { build, out: o } of wasm) {
      const tag = `${build} T=${T} D=${D}`;
      // rstd: both computed in f64 and rounded once; only the summation order differs.
      assertClose(o.rstd, ref.out.rstd, { rtol: 1.2e-7 }, `rstd ${tag}`);
      // out: x*r*w rounded twice in f32 vs once from f64 -> within 2 ulp.
      assertClose(o.out, ref.out.out, { rtol: 2.4e-7, atol: 1e-30 }, `out ${tag}`);
      // dx = r (dout w - x k): f32 evaluation with cancellation -> a few ulp of the largest term
      // (|dout w| and |x k| are O(3) here, so 2e-6 absolute).
      const atol = 2e-6 * maxAbs(ref.out.dx);
      assertClose(o.dx, ref.out.dx, { rtol: 1e-6, atol }, `dx ${tag}`);
      assertClose(o.dxAcc, ref.out.dxAcc, { rtol: 1e-6, atol }, `dx acc ${tag}`);
      assertClose(o.dw, ref.out.dw, { rtol: 1e-6, atol: 1e-6 * maxAbs(ref.out.dw) }, `dw ${tag}`);
    }
  }
});

Deno.test("rmsnorm in place (out = x; dx = dout with dw = 0) equals out of place, every build", () => {
  // Qwen3's head norms run in place on q / k and on their gradients: T = rows of head_dim.
  for (const [T, D] of [[6, 24], [5, 17], [8, 128]]) {
    const rand = makeRandom(40 + D);
    const x = randomArray(rand, T * D, 3);
    const w = randomArray(rand, D, 1.5);
    const dout = randomArray(rand, T * D);
    const dx0 = randomArray(rand, T * D);
    onEveryBuild(({ kernels, arena }) => {
      const px = putF32(arena, x), pw = putF32(arena, w);
      const po = arena.allocF32(T * D), pr = arena.allocF32(T);
      kernels.rmsnormForward(po, pr, px, pw, T, D, 1e-6);
      const pin = putF32(arena, x), pr2 = arena.allocF32(T);
      kernels.rmsnormForward(pin, pr2, pin, pw, T, D, 1e-6);
      assertClose(getF32(arena, pin, T * D), getF32(arena, po, T * D), { rtol: 0 }, "forward");
      assertClose(getF32(arena, pr2, T), getF32(arena, pr, T), { rtol: 0 }, "rstd");
      for (const acc of [0, 1]) {
        const pdx = putF32(arena, dx0);
        kernels.rmsnormBackward(pdx, 0, putF32(arena, dout), px, pw, pr, T, D, acc);
        const pd = putF32(arena, dout);
        // acc 1 in place adds into what is there: dout itself.
        kernels.rmsnormBackward(pd, 0, pd, px, pw, pr, T, D, acc);
        const want = getF32(arena, pdx, T * D);
        if (acc) {
          const g = new Float64Array(T * D);
          for (let i = 0; i < g.length; i++) g[i] = want[i] - Math.fround(dx0[i]);
          const got = getF32(arena, pd, T * D).map((v, i) => v - Math.fround(dout[i]));
          assertClose(got, g, { rtol: 1e-6, atol: 1e-6 * maxAbs(g) }, `backward acc ${D}`);
        } else {
          assertClose(getF32(arena, pd, T * D), want, { rtol: 0 }, `backward ${D}`);
        }
      }
      return 0;
    });
  }
});
