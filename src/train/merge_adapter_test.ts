import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { peftName } from "../model/lora.ts";
import { tinyConfig } from "../model/random_weights.ts";
import { linearOfWeight, mergedTensor, mergeLoraInto } from "./merge_adapter.ts";

Deno.test("mergeLoraInto adds scale·B·A, as nested sums in f64 say", () => {
  const rows = 3, cols = 5, r = 2, scale = 0.75;
  const w = Float32Array.from({ length: rows * cols }, (_, i) => i * 0.1 - 0.7);
  const a = Float32Array.from({ length: r * cols }, (_, i) => Math.sin(i + 1));
  const b = Float32Array.from({ length: rows * r }, (_, i) => Math.cos(i + 2));
  const want = Float32Array.from(w, (x, at) => {
    const i = Math.floor(at / cols), j = at % cols;
    let s = 0;
    for (let k = 0; k < r; k++) s += b[i * r + k] * a[k * cols + j];
    return x + scale * s;
  });
  deepStrictEqual(mergeLoraInto(w.slice(), rows, cols, a, b, r, scale), want);
  throws(() => mergeLoraInto(w, rows, cols, a, b.subarray(1), r, scale), /B 5 for \[3, 2\]/);
});

Deno.test("mergedTensor merges targeted linears only, and refuses an adapter of another shape", () => {
  const config = tinyConfig("qwen2", 1);
  deepStrictEqual(linearOfWeight("model.layers.0.self_attn.q_proj.weight"), {
    block: 0,
    linear: "q",
  });
  strictEqual(linearOfWeight("model.layers.0.self_attn.q_proj.bias"), null);
  strictEqual(linearOfWeight("model.embed_tokens.weight"), null);
  const d = config.hiddenSize;
  const tensors = new Map([
    [peftName(0, "q", "A"), {
      shape: [1, d] as [number, number],
      data: new Float32Array(d).fill(1),
    }],
    [peftName(0, "q", "B"), {
      shape: [d, 1] as [number, number],
      data: new Float32Array(d).fill(2),
    }],
  ]);
  const adapter = { info: { r: 1, alpha: 0.5, targets: ["q" as const], baseModel: "" }, tensors };
  const q = mergedTensor(
    "model.layers.0.self_attn.q_proj.weight",
    new Float32Array(d * d),
    [d, d],
    adapter,
    config,
  );
  ok(q.every((x) => x === 1), "0 + 0.5·2·1");
  const k = new Float32Array(4);
  strictEqual(
    mergedTensor("model.layers.0.self_attn.k_proj.weight", k, [2, 2], adapter, config),
    k,
  );
  throws(
    () =>
      mergedTensor(
        "model.layers.0.self_attn.q_proj.weight",
        new Float32Array(2 * d),
        [2, d],
        adapter,
        config,
      ),
    /q_proj\.weight is \[2,\d+\] but the adapter's A is \[1,\d+\] and B \[\d+,1\]: .*another shape/,
  );
});
