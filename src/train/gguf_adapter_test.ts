import { deepStrictEqual, strictEqual, throws } from "node:assert/strict";
import { concatChunks as concat, readGguf } from "../io/gguf_testing.ts";
import { linearShape, peftName } from "../model/lora.ts";
import { tinyConfig } from "../model/random_weights.ts";
import { LINEAR_NAMES } from "../model/weights.ts";
import { adapterGgufChunks, ggufLoraName, permuteHeadRows } from "./gguf_adapter.ts";
import type { LoraTensors } from "../model/lora.ts";
import type { AdapterInfo } from "../io/peft_adapter.ts";

/** The Llama converter's permute, as nested arrays: [heads][2][half][cols] -> [heads][half][2][cols]. */
function permuteByNesting(
  w: Float32Array,
  rows: number,
  cols: number,
  heads: number,
): Float32Array {
  const half = rows / heads / 2;
  const nested = Array.from(
    { length: heads },
    (_, h) =>
      Array.from({ length: 2 }, (_, i) =>
        Array.from({ length: half }, (_, j) => {
          const row = (h * 2 + i) * half + j;
          return Array.from(w.subarray(row * cols, (row + 1) * cols));
        })),
  );
  const swapped = nested.map((head) =>
    Array.from({ length: half }, (_, j) => [head[0][j], head[1][j]])
  );
  return Float32Array.from(swapped.flat(3));
}

function adapter(config: ReturnType<typeof tinyConfig>, r: number): LoraTensors {
  const t: LoraTensors = new Map();
  let s = 7;
  const fill = (n: number) =>
    Float32Array.from({ length: n }, () => ((s = (s * 69069 + 1) >>> 0) / 2 ** 32) - 0.5);
  for (let b = 0; b < config.numLayers; b++) {
    for (const name of LINEAR_NAMES) {
      const [out, inF] = linearShape(config, name);
      t.set(peftName(b, name, "A"), { shape: [r, inF], data: fill(r * inF) });
      t.set(peftName(b, name, "B"), { shape: [out, r], data: fill(out * r) });
    }
  }
  return t;
}

Deno.test("permuteHeadRows equals the converter's reshape-swap, and refuses odd head sizes", () => {
  const w = Float32Array.from({ length: 16 * 3 }, (_, i) => i);
  for (const heads of [1, 2, 4]) {
    deepStrictEqual(
      permuteHeadRows(w, 16, 3, heads),
      permuteByNesting(w, 16, 3, heads),
      `${heads}`,
    );
  }
  throws(() => permuteHeadRows(w, 16, 3, 16), /do not split into 16 heads of an even size/);
});

for (const arch of ["qwen2", "qwen3", "llama", "gemma3"] as const) {
  Deno.test(`GGUF LoRA adapter (${arch}): metadata, names, ggml shapes, exact F32 data, q/k permutation only for llama`, async () => {
    const config = tinyConfig(arch, 2);
    const r = 4;
    const tensors = adapter(config, r);
    const info: AdapterInfo = { r, alpha: 8, targets: [...LINEAR_NAMES], baseModel: "m" };
    const bytes = concat(adapterGgufChunks(tensors, info, config, "F32"));
    const g = await readGguf(bytes);
    strictEqual(g.metadata["general.architecture"], arch);
    strictEqual(g.metadata["general.type"], "adapter");
    strictEqual(g.metadata["adapter.type"], "lora");
    strictEqual(g.metadata["adapter.lora.alpha"], 8);
    strictEqual(g.tensorInfos.length, 2 * 7 * 2);
    const start = Number(g.tensorDataOffset);
    for (let b = 0; b < 2; b++) {
      for (const name of LINEAR_NAMES) {
        const [out, inF] = linearShape(config, name);
        for (const which of ["A", "B"] as const) {
          const info = g.tensorInfos.find((t) => t.name === ggufLoraName(b, name, which))!;
          deepStrictEqual(info.shape.map(Number), which === "A" ? [inF, r] : [r, out]);
          strictEqual(info.dtype, 0);
          const at = start + Number(info.offset);
          const n = r * (which === "A" ? inF : out);
          const got = new Float32Array(bytes.slice(at, at + 4 * n).buffer);
          const peft = tensors.get(peftName(b, name, which))!.data;
          const heads = name === "q" ? config.numHeads : name === "k" ? config.numKvHeads : 0;
          const want = which === "B" && heads > 0 && arch === "llama"
            ? permuteByNesting(peft, out, r, heads)
            : peft;
          deepStrictEqual(got, want, `${b} ${name} ${which}`);
        }
      }
    }
  });
}

Deno.test("GGUF LoRA adapter as Q8_0: lora_a quantized, lora_b (rank 4, not a multiple of 32) as F16", async () => {
  const config = tinyConfig("qwen2", 1);
  const info: AdapterInfo = { r: 4, alpha: 8, targets: ["q", "down"], baseModel: "m" };
  const g = await readGguf(concat(adapterGgufChunks(adapter(config, 4), info, config, "Q8_0")));
  deepStrictEqual(g.tensorInfos.map((t) => [t.name, t.dtype]), [
    ["blk.0.attn_q.weight.lora_a", 8],
    ["blk.0.attn_q.weight.lora_b", 1],
    ["blk.0.ffn_down.weight.lora_a", 8],
    ["blk.0.ffn_down.weight.lora_b", 1],
  ]);
});
