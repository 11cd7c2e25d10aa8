import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
import type { HeadChunk, WeightStore } from "../model/weights.ts";
import { Decoder } from "./decoder.ts";

Deno.test("decoder: planned memory, cache bounds, bad ids, dispose", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 1 });
  const before = arena.mark();
  const dec = Decoder.create({ store, kernels, arena, maxLen: 8 });
  const c = store.config;
  // 3 layers x K,V x 8 rows x (2 kv heads x 16) floats.
  strictEqual(dec.cache.bytes, 3 * 2 * 8 * 32 * 4);
  const planned = arena.mark();
  await dec.append([1, 2, 3]);
  strictEqual(arena.mark(), planned, "append releases what it allocates");
  const grows = arena.grows;
  for (let t = 3; t < 8; t++) {
    const logits = await dec.append([t]);
    strictEqual(logits.length, c.vocabSize);
    ok(logits.every(Number.isFinite));
  }
  strictEqual(arena.grows, grows, "decode steps never grow the memory");
  strictEqual(dec.position, 8);
  await rejects(dec.append([1]), /KV cache full: 8 \+ 1 positions exceed its 8/);
  dec.reset();
  await rejects(dec.append([c.vocabSize]), /token id 300 outside the vocabulary 0..299/);
  await rejects(dec.append([]), /at least one token/);
  strictEqual(dec.position, 0);
  dec.dispose();
  strictEqual(arena.mark(), before);
  await rejects(dec.append([1]), /after dispose/);
  throws(() => Decoder.create({ store, kernels, arena, maxLen: 0 }), RangeError);
  strictEqual(arena.mark(), before);
});

Deno.test("decoder: an adapter with a missing or misshapen tensor is refused", () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createRandomWeightStore({
    config: tinyConfig("llama", 1),
    kernels,
    arena,
    seed: 1,
  });
  const before = arena.mark();
  const a = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
  const b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
  const tensors = new Map([
    [a, { shape: [2, 64] as [number, number], data: new Float32Array(128) }],
  ]);
  const adapter = { r: 2, alpha: 4, targets: ["q" as const], tensors };
  throws(
    () => Decoder.create({ store, kernels, arena, maxLen: 4, adapter }),
    /missing tensor .*q_proj\.lora_B/,
  );
  tensors.set(b, { shape: [32, 2], data: new Float32Array(64) });
  throws(
    () => Decoder.create({ store, kernels, arena, maxLen: 4, adapter }),
    /q_proj\.lora_B\.weight has shape \[32,2\], expected \[64,2\]/,
  );
  strictEqual(arena.mark(), before, "a failed create frees what it allocated");
});

Deno.test("decoder: truncate keeps a prefix; appending after it equals decoding it fresh", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 3 });
  const V = store.config.vocabSize;
  const a = [5, 17, 200, 3, 99, 42, 7, 150, 11, 64];
  const b = [8, 120, 33, 250, 1];
  const dec = Decoder.create({ store, kernels, arena, maxLen: 16 });
  await dec.append(a);
  await dec.append([77, 78, 79]);
  dec.truncate(7);
  strictEqual(dec.position, 7);
  const got = await dec.append(b, "all");
  throws(() => dec.truncate(13), /cannot truncate 12 positions to 13/);
  throws(() => dec.truncate(-1), RangeError);
  dec.reset();
  const want = await dec.append([...a.slice(0, 7), ...b], "all");
  dec.dispose();
  let diff = 0;
  for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[7 * V + i]));
  ok(diff < 1e-4, `max diff ${diff}`);
});

Deno.test("decoder: logits written into a given buffer equal a fresh array's; a wrong size is refused", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 4 });
  const V = store.config.vocabSize;
  const dec = Decoder.create({ store, kernels, arena, maxLen: 8 });
  const fresh = [await dec.append([5, 6, 7]), await dec.append([8]), await dec.append([9])];
  dec.reset();
  const buf = new Float32Array(V).fill(Number.NaN);
  for (const [i, ids] of [[5, 6, 7], [8], [9]].entries()) {
    const got = await dec.append(ids, "last", buf);
    strictEqual(got, buf, "the given buffer is returned");
    deepStrictEqual(got, fresh[i], `step ${i}`);
  }
  dec.reset();
  await rejects(dec.append([1, 2], "all", buf), /holds 300 floats, not 600/);
  strictEqual(dec.position, 0, "a refused append caches nothing");
  dec.dispose();
});

Deno.test("decoder: a head chunk with a bias adds it to the logits (fused GEMM epilogue)", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 5 });
  const V = store.config.vocabSize;
  const headBias = Float32Array.from({ length: V }, (_, i) => Math.fround(Math.sin(i) * 3));
  const biasPtr = arena.allocF32(V);
  arena.f32(biasPtr, V).set(headBias);
  // The same store, its head chunks carrying their rows of headBias.
  const biased: WeightStore = {
    config: store.config,
    quant: store.quant,
    finalNorm: store.finalNorm,
    acquireBlock: (i) => store.acquireBlock(i),
    releaseBlock: (i) => store.releaseBlock(i),
    embed: (out, ids, T) => store.embed(out, ids, T),
    async *headChunks(rows: number): AsyncIterable<HeadChunk> {
      for await (const { v0, weight } of store.headChunks(rows)) {
        yield { v0, weight: { ...weight, bias: biasPtr + v0 * 4 } };
      }
    },
    jsBytesHeld: () => store.jsBytesHeld(),
    close: () => store.close(),
  };
  const plain = Decoder.create({ store, kernels, arena, maxLen: 8 });
  const want = await plain.append([5, 6, 7], "all");
  plain.dispose();
  const dec = Decoder.create({ store: biased, kernels, arena, maxLen: 8 });
  const got = await dec.append([5, 6, 7], "all");
  dec.dispose();
  for (let i = 0; i < got.length; i++) {
    const w = Math.fround(want[i] + headBias[i % V]);
    if (got[i] !== w) throw new Error(`logit ${i}: ${got[i]}, want ${w}`);
  }
});
