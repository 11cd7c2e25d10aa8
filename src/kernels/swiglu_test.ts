import {
  assertClose,
  finiteDifferences,
  getF32,
  makeRandom,
  onEveryBuild,
  putF32,
  randomArray,
} from "./_testing.ts";
import { swigluBackwardArrays, swigluForwardArrays } from "./reference/swiglu.ts";

Deno.test("swiglu reference forward is silu(gate) * up", () => {
  const gate = Float64Array.of(0, 1, -2, 30, -30);
  const up = Float64Array.of(1, 2, 3, 0.5, 1);
  const out = new Float64Array(5);
  swigluForwardArrays(out, gate, up, 5);
  const silu = (z: number) => z / (1 + Math.exp(-z));
  assertClose(out, Array.from(gate, (z, i) => silu(z) * up[i]), { rtol: 1e-15 }, "out");
  assertClose(out, [
    0,
    2 / (1 + Math.exp(-1)),
    -6 / (1 + Math.exp(2)),
    15 / (1 + Math.exp(-30)),
    -30 / (1 + Math.exp(30)),
  ], {
    rtol: 1e-14,
  }, "hand values");
});

Deno.test("swiglu reference backward matches finite differences (f64)", () => {
  const rand = makeRandom(3);
  const n = 37;
  const gate = randomArray(rand, n, 6);
  const up = randomArray(rand, n, 2);
  const r = randomArray(rand, n);
  const loss = () => {
    const out = new Float64Array(n);
    swigluForwardArrays(out, gate, up, n);
    let s = 0;
    for (let i = 0; i < n; i++) s += out[i] * r[i];
    return s;
  };
  const dgate = new Float64Array(n);
  const dup = new Float64Array(n);
  swigluBackwardArrays(dgate, dup, r, gate, up, n);
  assertClose(dgate, finiteDifferences(loss, gate), { rtol: 1e-6, atol: 1e-9 }, "dgate");
  assertClose(dup, finiteDifferences(loss, up), { rtol: 1e-6, atol: 1e-9 }, "dup");
});

Deno.test("wasm swiglu forward/backward match the reference (ragged n, both variants)", () => {
  for (const n of [1, 3, 17, 64, 1003]) {
    const rand = makeRandom(40 + n);
    const gate = randomArray(rand, n, 12);
    if (n > 4) gate.set([-100, 100, -Infinity], 0); // saturated sigmoid, exp overflow
    const up = randomArray(rand, n, 2);
    const dout = randomArray(rand, n);
    const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
      const pg = putF32(arena, gate), pu = putF32(arena, up), po = arena.allocF32(n);
      kernels.swigluForward(po, pg, pu, n);
      const dg = arena.allocF32(n), du = arena.allocF32(n);
      kernels.swigluBackward(dg, du, putF32(arena, dout), pg, pu, n);
      return { out: getF32(arena, po, n), dg: getF32(arena, dg, n), du: getF32(arena, du, n) };
    });
    for (const { build, out } of wasm) {
      // exp within 1.4e-7 relative plus three f32 operations: 1e-6 relative; absolute floor for
      // results that are tiny differences of O(1) terms (silu' near its zero at z ≈ -2.4).
      const tag = `${build} n=${n}`;
      assertClose(out.out, ref.out.out, { rtol: 1e-6, atol: 1e-7 }, `out ${tag}`);
      assertClose(out.dg, ref.out.dg, { rtol: 1e-6, atol: 2e-7 }, `dgate ${tag}`);
      assertClose(out.du, ref.out.du, { rtol: 1e-6, atol: 1e-7 }, `dup ${tag}`);
    }
  }
});
