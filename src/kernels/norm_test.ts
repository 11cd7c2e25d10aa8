import { assertClose, finiteDifferences, makeRandom, randomArray } from "./_testing.ts";
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
