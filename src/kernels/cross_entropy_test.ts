import {
  assertClose,
  finiteDifferences,
  getF32,
  type KernelBuild,
  makeRandom,
  putF32,
  putI32,
  randomArray,
  referenceBuild,
  wasmBuilds,
} from "./_testing.ts";
import { ceChunkBackwardArrays, ceChunkForwardArrays } from "./reference/cross_entropy.ts";

/** Chunk boundaries covering [0, V) with sizes cycling through `sizes`. */
function chunking(V: number, sizes: number[]): [number, number][] {
  const out: [number, number][] = [];
  let v0 = 0;
  for (let i = 0; v0 < V; i++) {
    const vc = Math.min(sizes[i % sizes.length], V - v0);
    out.push([v0, vc]);
    v0 += vc;
  }
  return out;
}

function slice(logits: Float64Array, T: number, V: number, v0: number, vc: number) {
  const c = new Float64Array(T * vc);
  for (let t = 0; t < T; t++) c.set(logits.subarray(t * V + v0, t * V + v0 + vc), t * vc);
  return c;
}

/** Mean CE and dlogits through the chunked reference. */
function chunkedLoss(
  logits: Float64Array,
  targets: Int32Array,
  T: number,
  V: number,
  sizes: number[],
) {
  const rowMax = new Float64Array(T).fill(-Infinity);
  const rowSum = new Float64Array(T);
  const targetLogit = new Float64Array(T);
  const chunks = chunking(V, sizes);
  for (const [v0, vc] of chunks) {
    ceChunkForwardArrays(
      slice(logits, T, V, v0, vc),
      T,
      vc,
      v0,
      targets,
      rowMax,
      rowSum,
      targetLogit,
    );
  }
  const lse = rowMax.map((m, t) => m + Math.log(rowSum[t]));
  const valid = Array.from(targets).filter((y) => y >= 0).length;
  let loss = 0;
  for (let t = 0; t < T; t++) if (targets[t] >= 0) loss += lse[t] - targetLogit[t];
  loss /= valid;
  const dlogits = new Float64Array(T * V);
  for (const [v0, vc] of chunks) {
    const c = slice(logits, T, V, v0, vc);
    ceChunkBackwardArrays(c, T, vc, v0, targets, lse, 1 / valid);
    for (let t = 0; t < T; t++) dlogits.set(c.subarray(t * vc, (t + 1) * vc), t * V + v0);
  }
  return { loss, dlogits };
}

/** Mean CE and dlogits from one full softmax per row (independent of the chunk kernels). */
function fullSoftmaxLoss(logits: Float64Array, targets: Int32Array, T: number, V: number) {
  const valid = Array.from(targets).filter((y) => y >= 0).length;
  let loss = 0;
  const dlogits = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    if (targets[t] < 0) continue;
    const row = logits.subarray(t * V, (t + 1) * V);
    const m = Math.max(...row);
    let z = 0;
    for (const l of row) z += Math.exp(l - m);
    loss += m + Math.log(z) - row[targets[t]];
    for (let j = 0; j < V; j++) {
      dlogits[t * V + j] = (Math.exp(row[j] - m) / z - (j === targets[t] ? 1 : 0)) / valid;
    }
  }
  return { loss: loss / valid, dlogits };
}

Deno.test("cross-entropy reference: chunks of 7, 64, 1000 and mixed equal one full softmax", () => {
  const rand = makeRandom(6);
  const [T, V] = [5, 2500];
  const logits = randomArray(rand, T * V, 8);
  logits[2 * V + 2499] = 40; // a dominant logit in the last chunk of row 2
  const targets = Int32Array.of(0, 2499, 17, -100, 1234);
  const full = fullSoftmaxLoss(logits, targets, T, V);
  for (const sizes of [[7], [64], [1000], [7, 64, 1000], [V]]) {
    const c = chunkedLoss(logits, targets, T, V, sizes);
    assertClose([c.loss], [full.loss], { rtol: 1e-13 }, `loss sizes=${sizes}`);
    assertClose(c.dlogits, full.dlogits, { rtol: 1e-11, atol: 1e-17 }, `dlogits sizes=${sizes}`);
  }
  // Ignored row 3 contributes no gradient.
  for (let j = 0; j < V; j++) {
    if (full.dlogits[3 * V + j] !== 0) throw new Error("row 3 not ignored");
  }
});

Deno.test("cross-entropy reference backward matches finite differences of the loss (f64)", () => {
  const rand = makeRandom(7);
  const [T, V] = [3, 23];
  const logits = randomArray(rand, T * V, 3);
  const targets = Int32Array.of(4, -100, 22);
  const { dlogits } = chunkedLoss(logits, targets, T, V, [5]);
  const fd = finiteDifferences(() => chunkedLoss(logits, targets, T, V, [5]).loss, logits);
  assertClose(dlogits, fd, { rtol: 1e-6, atol: 1e-10 }, "dlogits");
});

Deno.test("cross-entropy reference: -Infinity logits (masked vocabulary) give probability 0", () => {
  const [T, V] = [1, 6];
  const logits = Float64Array.of(-Infinity, -Infinity, -Infinity, 1, 2, -Infinity);
  const targets = Int32Array.of(4);
  const c = chunkedLoss(logits, targets, T, V, [3]);
  const expectedLoss = Math.log(Math.exp(1) + Math.exp(2)) - 2;
  assertClose([c.loss], [expectedLoss], { rtol: 1e-14 }, "loss");
  assertClose(
    c.dlogits,
    [0, 0, 0, Math.exp(1 - 2 - expectedLoss), Math.exp(-expectedLoss) - 1, 0],
    {
      rtol: 1e-14,
      atol: 1e-300,
    },
    "dlogits",
  );
});

/** Mean CE and dlogits through a kernel build, chunk by chunk over linear memory. */
function buildLoss(
  b: KernelBuild,
  logits: Float64Array,
  targets: Int32Array,
  T: number,
  V: number,
  sizes: number[],
) {
  const { kernels, arena } = b;
  const pt = putI32(arena, targets);
  const rowMax = putF32(arena, new Float64Array(T).fill(-Infinity));
  const rowSum = putF32(arena, new Float64Array(T));
  const targetLogit = putF32(arena, new Float64Array(T));
  const chunks = chunking(V, sizes);
  for (const [v0, vc] of chunks) {
    const pc = putF32(arena, slice(logits, T, V, v0, vc));
    kernels.ceChunkForward(pc, T, vc, v0, pt, rowMax, rowSum, targetLogit);
  }
  const m = getF32(arena, rowMax, T),
    s = getF32(arena, rowSum, T),
    tl = getF32(arena, targetLogit, T);
  const lse = Float64Array.from(m, (v, t) => v + Math.log(s[t]));
  const valid = Array.from(targets).filter((y) => y >= 0).length;
  let loss = 0;
  for (let t = 0; t < T; t++) if (targets[t] >= 0) loss += lse[t] - tl[t];
  const plse = putF32(arena, lse);
  const dlogits = new Float64Array(T * V);
  for (const [v0, vc] of chunks) {
    const pc = putF32(arena, slice(logits, T, V, v0, vc));
    kernels.ceChunkBackward(pc, T, vc, v0, pt, plse, 1 / valid);
    const c = getF32(arena, pc, T * vc);
    for (let t = 0; t < T; t++) dlogits.set(c.subarray(t * vc, (t + 1) * vc), t * V + v0);
  }
  return { loss: loss / valid, dlogits, rowSum: s };
}

Deno.test("wasm cross-entropy chunks (7, 64, 1000, mixed) equal one full softmax (both variants)", () => {
  const rand = makeRandom(80);
  const [T, V] = [5, 2500];
  const logits = Float64Array.from(randomArray(rand, T * V, 8), Math.fround);
  logits[2 * V + 2499] = 40;
  logits.fill(-Infinity, 4 * V, 4 * V + 1000); // row 4: a masked first chunk
  const targets = Int32Array.of(0, 2499, 17, -100, 1234);
  const full = fullSoftmaxLoss(logits, targets, T, V);
  for (const b of [referenceBuild(), ...wasmBuilds()]) {
    for (const sizes of [[7], [64], [1000], [7, 64, 1000]]) {
      const c = buildLoss(b, logits, targets, T, V, sizes);
      const tag = `${b.name} sizes=${sizes}`;
      // lse from f32 rowMax/rowSum (sum accumulated in f64, stored f32): ~1e-7 relative in the
      // sum, so ~1e-7 absolute in lse and in the loss (|loss| ~ 10).
      assertClose([c.loss], [full.loss], { rtol: 1e-7, atol: 2e-7 }, `loss ${tag}`);
      // dlogits: f32 exp of (logit - lse) with |logit - lse| up to ~50: the rounding of the
      // difference (ulp(50) = 4e-6) dominates the relative error of each probability.
      assertClose(c.dlogits, full.dlogits, { rtol: 5e-6, atol: 1e-12 }, `dlogits ${tag}`);
    }
  }
});
