import {
  assertClose,
  finiteDifferences,
  getF32,
  makeRandom,
  onEveryBuild,
  putF32,
  randomArray,
} from "./_testing.ts";
import { gegluTanhBackwardArrays, gegluTanhForwardArrays } from "./reference/geglu.ts";

Deno.test("geglu-tanh reference forward: hand values of gelu_tanh(gate) * up", () => {
  const gate = Float64Array.of(0, 1, -2, 30, -30, 0.5);
  const up = Float64Array.of(1, 2, 3, 0.5, 1, -1);
  const out = new Float64Array(6);
  gegluTanhForwardArrays(out, gate, up, 6);
  // gelu_tanh(1) = 0.8411919906082768, gelu_tanh(-2) = -0.04540230591222494,
  // gelu_tanh(0.5) = 0.34571400982514394 (torch.nn.functional.gelu(approximate="tanh"), f64).
  assertClose(
    out,
    [0, 2 * 0.8411919906082768, 3 * -0.04540230591222494, 15, -0, -0.34571400982514394],
    { rtol: 1e-14, atol: 1e-300 },
    "out",
  );
});

Deno.test("geglu-tanh reference backward matches finite differences (f64)", () => {
  const rand = makeRandom(5);
  const n = 41;
  const gate = randomArray(rand, n, 5);
  const up = randomArray(rand, n, 2);
  const r = randomArray(rand, n);
  const loss = () => {
    const out = new Float64Array(n);
    gegluTanhForwardArrays(out, gate, up, n);
    let s = 0;
    for (let i = 0; i < n; i++) s += out[i] * r[i];
    return s;
  };
  const dgate = new Float64Array(n);
  const dup = new Float64Array(n);
  gegluTanhBackwardArrays(dgate, dup, r, gate, up, n);
  assertClose(dgate, finiteDifferences(loss, gate), { rtol: 1e-6, atol: 1e-9 }, "dgate");
  assertClose(dup, finiteDifferences(loss, up), { rtol: 1e-6, atol: 1e-9 }, "dup");
});

Deno.test("wasm geglu-tanh forward/backward match the reference (ragged n, both variants)", () => {
  for (const n of [1, 3, 17, 64, 1003]) {
    const rand = makeRandom(70 + n);
    const gate = randomArray(rand, n, 8);
    if (n > 4) gate.set([-100, 100, -Infinity], 0); // saturated sigmoid, exp overflow
    const up = randomArray(rand, n, 2);
    const dout = randomArray(rand, n);
    const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
      const pg = putF32(arena, gate), pu = putF32(arena, up), po = arena.allocF32(n);
      kernels.gegluTanhForward(po, pg, pu, n);
      const dg = arena.allocF32(n), du = arena.allocF32(n);
      kernels.gegluTanhBackward(dg, du, putF32(arena, dout), pg, pu, n);
      return { out: getF32(arena, po, n), dg: getF32(arena, dg, n), du: getF32(arena, du, n) };
    });
    for (const { build, out } of wasm) {
      // exp within 1.4e-7 relative plus a handful of f32 operations; absolute floors for
      // results that are small differences of O(1) terms (gelu' near its zero at z ≈ -0.75).
      const tag = `${build} n=${n}`;
      assertClose(out.out, ref.out.out, { rtol: 2e-6, atol: 1e-7 }, `out ${tag}`);
      assertClose(out.dg, ref.out.dg, { rtol: 2e-6, atol: 5e-7 }, `dgate ${tag}`);
      assertClose(out.du, ref.out.du, { rtol: 2e-6, atol: 1e-7 }, `dup ${tag}`);
    }
  }
});
