import { assertClose } from "../kernels/_testing.ts";
import { ropeInverseFrequencies, ropeTables } from "./rope_tables.ts";
import type { RopeScalingLlama3 } from "./config.ts";

/** The llama3 rule written out in f64, straight from its definition. */
function llama3InvFreqF64(hd: number, theta: number, s: RopeScalingLlama3): number[] {
  const out: number[] = [];
  for (let i = 0; i < hd / 2; i++) {
    const f = theta ** (-2 * i / hd);
    const wavelen = 2 * Math.PI / f;
    const low = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const high = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    if (wavelen < high) out.push(f);
    else if (wavelen > low) out.push(f / s.factor);
    else {
      const a = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) /
        (s.highFreqFactor - s.lowFreqFactor);
      out.push((1 - a) * f / s.factor + a * f);
    }
  }
  return out;
}

const llama32: RopeScalingLlama3 = {
  type: "llama3",
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositionEmbeddings: 8192,
};

Deno.test("rope inverse frequencies: theta^(-2i/hd) to f32 precision", () => {
  const inv = ropeInverseFrequencies({ headDim: 64, ropeTheta: 1e6, ropeScaling: null });
  assertClose(inv, Array.from({ length: 32 }, (_, i) => 1e6 ** (-i / 32)), { rtol: 3e-7 }, "inv");
  assertClose([inv[0], inv[16]], [1, 1e-3], { rtol: 1e-7 }, "hand values");
});

Deno.test("rope llama3 scaling matches the formula (Llama-3.2: factor 32, 1/4, 8192)", () => {
  const rope = { headDim: 64, ropeTheta: 5e5, ropeScaling: llama32 };
  const inv = ropeInverseFrequencies(rope);
  const want = llama3InvFreqF64(64, 5e5, llama32);
  assertClose(inv, want, { rtol: 1e-6 }, "llama3 inv_freq");
  // All three bands occur for these settings: untouched, blended and divided by factor.
  const plain = Array.from({ length: 32 }, (_, i) => 5e5 ** (-i / 32));
  const untouched = plain.filter((f, i) => Math.abs(inv[i] / f - 1) < 1e-6).length;
  const divided = plain.filter((f, i) => Math.abs(inv[i] * 32 / f - 1) < 1e-6).length;
  if (untouched === 0 || divided === 0 || untouched + divided === 32) {
    throw new Error(`bands: ${untouched} untouched, ${divided} divided of 32`);
  }
  assertClose([inv[0]], [1], { rtol: 0 }, "highest frequency untouched");
  assertClose([inv[31]], [5e5 ** (-31 / 32) / 32], { rtol: 1e-6 }, "lowest frequency / factor");
});

Deno.test("rope tables: cos/sin of position * inv_freq, llama3 included", () => {
  const positions = [0, 1, 2, 7, 30, 1000];
  for (
    const rope of [
      { headDim: 16, ropeTheta: 1e4, ropeScaling: null },
      { headDim: 64, ropeTheta: 5e5, ropeScaling: llama32 },
    ]
  ) {
    const { cos, sin } = ropeTables(rope, positions);
    const half = rope.headDim / 2;
    const inv = rope.ropeScaling
      ? llama3InvFreqF64(rope.headDim, rope.ropeTheta, rope.ropeScaling)
      : Array.from({ length: half }, (_, i) => rope.ropeTheta ** (-2 * i / rope.headDim));
    positions.forEach((p, t) => {
      const angles = inv.map((f) => p * f);
      // The tables use HF's f32 angle: error up to ~1 ulp of the angle (plus f32 cos rounding).
      const atol = 2 ** -23 * Math.max(1, p) * 2 + 2 ** -24;
      const row = (a: Float32Array) => a.subarray(t * half, (t + 1) * half);
      assertClose(row(cos), angles.map(Math.cos), { atol }, `cos p=${p}`);
      assertClose(row(sin), angles.map(Math.sin), { atol }, `sin p=${p}`);
    });
    assertClose(cos.subarray(0, half), new Array(half).fill(1), { rtol: 0 }, "cos at 0");
    assertClose(sin.subarray(0, half), new Array(half).fill(0), { rtol: 0 }, "sin at 0");
  }
});

Deno.test("rope tables reject bad settings with a message naming the field", () => {
  const bad = [
    () => ropeInverseFrequencies({ headDim: 63, ropeTheta: 1e4, ropeScaling: null }),
    () => ropeInverseFrequencies({ headDim: 64, ropeTheta: 0, ropeScaling: null }),
    () =>
      ropeInverseFrequencies({
        headDim: 64,
        ropeTheta: 1e4,
        ropeScaling: { ...llama32, highFreqFactor: 1 },
      }),
    () => ropeTables({ headDim: 8, ropeTheta: 1e4, ropeScaling: null }, [0, -1]),
  ];
  const names = ["head_dim", "rope_theta", "high_freq_factor", "position -1"];
  bad.forEach((f, i) => {
    try {
      f();
    } catch (e) {
      if (!(e instanceof RangeError) || !e.message.includes(names[i])) throw e;
      return;
    }
    throw new Error(`case ${i} did not throw`);
  });
});
