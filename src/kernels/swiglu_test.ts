import { gatedActivationTests } from "./gated_activation_testing.ts";
import { swigluBackwardArrays, swigluForwardArrays } from "./reference/swiglu.ts";

const gate = [0, 1, -2, 30, -30];
const up = [1, 2, 3, 0.5, 1];
const silu = (z: number) => z / (1 + Math.exp(-z));

gatedActivationTests({
  name: "swiglu",
  reference: { forward: swigluForwardArrays, backward: swigluBackwardArrays },
  wasm: { forward: "swigluForward", backward: "swigluBackward" },
  handValues: {
    title: "swiglu reference forward is silu(gate) * up",
    gate,
    up,
    expected: [
      { label: "out", values: gate.map((z, i) => silu(z) * up[i]), tol: { rtol: 1e-15 } },
      {
        label: "hand values",
        values: [
          0,
          2 / (1 + Math.exp(-1)),
          -6 / (1 + Math.exp(2)),
          15 / (1 + Math.exp(-30)),
          -30 / (1 + Math.exp(30)),
        ],
        tol: { rtol: 1e-14 },
      },
    ],
  },
  finiteDifferences: { seed: 3, n: 37, gateScale: 6 },
  // exp within 1.4e-7 relative plus three f32 operations: 1e-6 relative; absolute floor for
  // results that are tiny differences of O(1) terms (silu' near its zero at z ≈ -2.4).
  builds: {
    seedBase: 40,
    gateScale: 12,
    out: { rtol: 1e-6, atol: 1e-7 },
    dgate: { rtol: 1e-6, atol: 2e-7 },
    dup: { rtol: 1e-6, atol: 1e-7 },
  },
});
