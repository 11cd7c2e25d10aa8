import { gatedActivationTests } from "./gated_activation_testing.ts";
import { gegluTanhBackwardArrays, gegluTanhForwardArrays } from "./reference/geglu.ts";

gatedActivationTests({
  name: "geglu-tanh",
  reference: { forward: gegluTanhForwardArrays, backward: gegluTanhBackwardArrays },
  wasm: { forward: "gegluTanhForward", backward: "gegluTanhBackward" },
  handValues: {
    title: "geglu-tanh reference forward: hand values of gelu_tanh(gate) * up",
    gate: [0, 1, -2, 30, -30, 0.5],
    up: [1, 2, 3, 0.5, 1, -1],
    expected: [{
      label: "out",
      // gelu_tanh(1) = 0.8411919906082768, gelu_tanh(-2) = -0.04540230591222494,
      // gelu_tanh(0.5) = 0.34571400982514394 (torch.nn.functional.gelu(approximate="tanh"), f64).
      values: [0, 2 * 0.8411919906082768, 3 * -0.04540230591222494, 15, -0, -0.34571400982514394],
      tol: { rtol: 1e-14, atol: 1e-300 },
    }],
  },
  finiteDifferences: { seed: 5, n: 41, gateScale: 5 },
  // exp within 1.4e-7 relative plus a handful of f32 operations; absolute floors for results that
  // are small differences of O(1) terms (gelu' near its zero at z ≈ -0.75).
  builds: {
    seedBase: 70,
    gateScale: 8,
    out: { rtol: 2e-6, atol: 1e-7 },
    dgate: { rtol: 2e-6, atol: 5e-7 },
    dup: { rtol: 2e-6, atol: 1e-7 },
  },
});
