import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { Rng } from "../runtime/rng.ts";
import { createRandomWeightStore, tinyConfig } from "./random_weights.ts";

Deno.test("int4 random weights are quantized in row chunks: same bytes, no whole f32 matrix", () => {
  // A 60000 x 64 embedding is 3.84 M floats (15 MB in f32): four 1 M-float quantization chunks.
  const config = { ...tinyConfig("llama", 1), vocabSize: 60000, tieWordEmbeddings: true };
  const { kernels, arena } = loadKernelsSync({ variant: "relaxed" });
  const before = arena.used;
  const store = createRandomWeightStore({ config, kernels, arena, quant: "int4", seed: 5 });
  const storeBytes = arena.used - before;
  const wholeF32 = config.vocabSize * config.hiddenSize * 4;
  // The high-water never held the embedding in f32 on top of the store.
  ok(arena.highWater - before < storeBytes + wholeF32 / 2, `${arena.highWater - before}`);

  // Independent: draw the same stream whole and quantize it in one call.
  const head = (store as unknown as { embedding: { q: number; scales: number; biases: number } })
    .embedding;
  const n = config.vocabSize * config.hiddenSize;
  const g = 64;
  const w = arena.allocF32(n);
  new Rng(5).fillNormal(arena.f32(w, n), 2 / Math.sqrt(config.hiddenSize));
  const q = arena.alloc(n / 2);
  const scales = arena.allocF32(n / g);
  const biases = arena.allocF32(n / g);
  kernels.int4Quantize(q, scales, biases, w, config.vocabSize, config.hiddenSize, g);
  const mine = arena.u8(q, n / 2);
  const theirs = arena.u8(head.q, n / 2);
  let firstDiff = -1;
  for (let i = 0; i < mine.length && firstDiff < 0; i++) if (mine[i] !== theirs[i]) firstDiff = i;
  strictEqual(firstDiff, -1, "packed nibbles differ");
  deepStrictEqual(arena.f32(head.scales, n / g), arena.f32(scales, n / g));
  deepStrictEqual(arena.f32(head.biases, n / g), arena.f32(biases, n / g));
});
