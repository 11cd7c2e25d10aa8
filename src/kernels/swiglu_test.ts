import { assertClose, finiteDifferences, makeRandom, randomArray } from "./_testing.ts";
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
