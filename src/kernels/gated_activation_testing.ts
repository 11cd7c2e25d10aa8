/**
 * The tests every gated activation of the MLP (`out = act(gate) * up`: SwiGLU, GeGLU-tanh) gets,
 * from one table per activation: hand values of the reference forward, the reference backward
 * against f64 finite differences, and both wasm builds against the reference over ragged lengths
 * with saturating and infinite gates.
 */
import type { Kernels } from "./abi.ts";
import {
  assertClose,
  finiteDifferences,
  getF32,
  makeRandom,
  onEveryBuild,
  putF32,
  randomArray,
} from "./_testing.ts";

type Tolerance = { rtol?: number; atol?: number };
type ForwardArrays = (out: Float64Array, gate: Float64Array, up: Float64Array, n: number) => void;
type BackwardArrays = (
  dgate: Float64Array,
  dup: Float64Array,
  dout: Float64Array,
  gate: Float64Array,
  up: Float64Array,
  n: number,
) => void;

/** One gated activation's cases and tolerances. */
export interface GatedActivationCases {
  /** As the test names say it: "swiglu", "geglu-tanh". */
  name: string;
  reference: { forward: ForwardArrays; backward: BackwardArrays };
  wasm: {
    forward: "swigluForward" | "gegluTanhForward";
    backward: "swigluBackward" | "gegluTanhBackward";
  };
  /** The reference forward on fixed inputs, each expectation checked in turn. */
  handValues: {
    title: string;
    gate: number[];
    up: number[];
    expected: { label: string; values: number[]; tol: Tolerance }[];
  };
  /** The reference backward against finite differences: a seed, a length, the gates' range. */
  finiteDifferences: { seed: number; n: number; gateScale: number };
  /** The wasm builds against the reference: seed = seedBase + n, gates in ±gateScale. */
  builds: { seedBase: number; gateScale: number; out: Tolerance; dgate: Tolerance; dup: Tolerance };
}

/**
 * Central differences in f64 (see {@link finiteDifferences}): 1e-6 relative is far from both
 * their truncation and rounding errors; the floor is for gradients that are almost zero.
 */
const FD_TOLERANCE = { rtol: 1e-6, atol: 1e-9 };

/** Lengths for the wasm builds: below, at and across the SIMD width, and a ragged long tail. */
const BUILD_LENGTHS = [1, 3, 17, 64, 1003];

/** Registers the three tests of `c` (see the module doc). */
export function gatedActivationTests(c: GatedActivationCases): void {
  Deno.test(c.handValues.title, () => {
    const { gate, up } = c.handValues;
    const out = new Float64Array(gate.length);
    c.reference.forward(out, Float64Array.from(gate), Float64Array.from(up), gate.length);
    for (const e of c.handValues.expected) assertClose(out, e.values, e.tol, e.label);
  });

  Deno.test(`${c.name} reference backward matches finite differences (f64)`, () => {
    const { seed, n, gateScale } = c.finiteDifferences;
    const rand = makeRandom(seed);
    const gate = randomArray(rand, n, gateScale);
    const up = randomArray(rand, n, 2);
    const r = randomArray(rand, n);
    const loss = () => {
      const out = new Float64Array(n);
      c.reference.forward(out, gate, up, n);
      let s = 0;
      for (let i = 0; i < n; i++) s += out[i] * r[i];
      return s;
    };
    const dgate = new Float64Array(n);
    const dup = new Float64Array(n);
    c.reference.backward(dgate, dup, r, gate, up, n);
    assertClose(dgate, finiteDifferences(loss, gate), FD_TOLERANCE, "dgate");
    assertClose(dup, finiteDifferences(loss, up), FD_TOLERANCE, "dup");
  });

  Deno.test(`wasm ${c.name} forward/backward match the reference (ragged n, both variants)`, () => {
    const { forward, backward } = c.wasm;
    for (const n of BUILD_LENGTHS) {
      const rand = makeRandom(c.builds.seedBase + n);
      const gate = randomArray(rand, n, c.builds.gateScale);
      if (n > 4) gate.set([-100, 100, -Infinity], 0); // saturated sigmoid, exp overflow
      const up = randomArray(rand, n, 2);
      const dout = randomArray(rand, n);
      const [ref, ...wasm] = onEveryBuild(({ kernels, arena }) => {
        const k: Kernels = kernels;
        const pg = putF32(arena, gate), pu = putF32(arena, up), po = arena.allocF32(n);
        k[forward](po, pg, pu, n);
        const dg = arena.allocF32(n), du = arena.allocF32(n);
        k[backward](dg, du, putF32(arena, dout), pg, pu, n);
        return { out: getF32(arena, po, n), dg: getF32(arena, dg, n), du: getF32(arena, du, n) };
      });
      for (const { build, out } of wasm) {
        const tag = `${build} n=${n}`;
        assertClose(out.out, ref.out.out, c.builds.out, `out ${tag}`);
        assertClose(out.dg, ref.out.dg, c.builds.dgate, `dgate ${tag}`);
        assertClose(out.du, ref.out.du, c.builds.dup, `dup ${tag}`);
      }
    }
  });
}
