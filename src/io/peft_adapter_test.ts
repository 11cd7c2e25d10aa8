import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { MemorySource } from "./byte_source.ts";
import { SafetensorsFile } from "./safetensors.ts";
import { serializeSafetensors } from "./safetensors_writer.ts";
import { linearShape, type LoraTensors, peftName } from "../model/lora.ts";
import { tinyConfig } from "../model/random_weights.ts";
import type { LinearName } from "../model/weights.ts";
import {
  type AdapterInfo,
  decodeAdapter,
  encodeAdapter,
  encodeAdapterChunks,
  parseAdapterConfig,
} from "./peft_adapter.ts";
import { readAdapterDir, writeAdapterDir } from "../deno/peft_adapter.ts";

const model = tinyConfig("qwen2", 2);
const info: AdapterInfo = { r: 4, alpha: 8, targets: ["q", "down"], baseModel: "tiny" };

function randomTensors(targets: LinearName[], r: number): LoraTensors {
  const out: LoraTensors = new Map();
  let x = 1;
  for (let i = 0; i < model.numLayers; i++) {
    for (const n of targets) {
      const [o, inF] = linearShape(model, n);
      for (const [which, shape] of [["A", [r, inF]], ["B", [o, r]]] as const) {
        const data = new Float32Array(shape[0] * shape[1]).map(() =>
          (x = (x * 48271) % 2147483647) / 2e9 - 0.5
        );
        out.set(peftName(i, n, which), { shape: [shape[0], shape[1]], data });
      }
    }
  }
  return out;
}

Deno.test("adapter_config.json has the fields PEFT writes for a causal-LM LoRA", () => {
  const c = JSON.parse(encodeAdapter(randomTensors(info.targets, 4), info).configJson);
  strictEqual(c.peft_type, "LORA");
  strictEqual(c.task_type, "CAUSAL_LM");
  strictEqual(c.r, 4);
  strictEqual(c.lora_alpha, 8);
  deepStrictEqual(c.target_modules, ["q_proj", "down_proj"]);
  strictEqual(c.lora_dropout, 0);
  strictEqual(c.bias, "none");
  strictEqual(c.use_rslora, false);
  strictEqual(c.fan_in_fan_out, false);
  strictEqual(c.inference_mode, true);
  strictEqual(c.base_model_name_or_path, "tiny");
});

Deno.test("adapter safetensors holds F32 tensors under PEFT names with [r,in] / [out,r] shapes", async () => {
  const files = encodeAdapter(randomTensors(info.targets, 4), info);
  const f = await SafetensorsFile.open(new MemorySource("a.safetensors", files.safetensors));
  const a = f.info("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight");
  strictEqual(a.dtype, "F32");
  deepStrictEqual(a.shape, [4, 64]);
  deepStrictEqual(f.info("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").shape, [
    64,
    4,
  ]);
  strictEqual(f.names().length, 8);
});

Deno.test("an adapter directory round-trips bit for bit", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tensors = randomTensors(info.targets, 4);
    await writeAdapterDir(`${dir}/ad`, tensors, info);
    const back = await readAdapterDir(`${dir}/ad`, model);
    deepStrictEqual(back.info, info);
    deepStrictEqual(back.tensors, tensors);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("decodeAdapter rejects wrong shapes, missing and unexpected tensors", async () => {
  const load = (tensors: LoraTensors, i = info) => {
    const f = encodeAdapter(tensors, i);
    return decodeAdapter(
      f.configJson,
      "c.json",
      new MemorySource("w.safetensors", f.safetensors),
      model,
    );
  };
  const t = randomTensors(info.targets, 4);
  const missing = new Map(t);
  missing.delete(peftName(1, "down", "B"));
  await rejects(
    load(missing),
    /w\.safetensors: missing tensor .*layers\.1\.mlp\.down_proj\.lora_B/,
  );
  await rejects(load(randomTensors(["q", "down", "k"], 4)), /unexpected tensor .*k_proj/);
  await rejects(
    load(randomTensors(info.targets, 2)),
    /lora_A.weight has shape \[2,128\], expected \[4,128\]/,
  );
  // A BF16 adapter (as PEFT saves from bf16 models) is accepted and widened.
  const bf = serializeSafetensors([...t].map(([name, v]) => ({
    name,
    dtype: "BF16" as const,
    shape: v.shape,
    data: new Uint8Array(v.data.length * 2),
  })));
  const cfg = encodeAdapter(t, info).configJson;
  const back = await decodeAdapter(cfg, "c.json", new MemorySource("w", bf), model);
  strictEqual(back.tensors.size, 8);
});

Deno.test("parseAdapterConfig refuses what slimtune cannot apply, naming the file", () => {
  const base = { peft_type: "LORA", r: 8, lora_alpha: 16, target_modules: ["q_proj"] };
  const bad = (extra: Record<string, unknown>, re: RegExp) =>
    throws(
      () => parseAdapterConfig(JSON.stringify({ ...base, ...extra }), "x/adapter_config.json"),
      re,
    );
  bad({ use_rslora: true }, /x\/adapter_config\.json: use_rslora/);
  bad({ peft_type: "IA3" }, /only "LORA"/);
  bad({ r: 0 }, /"r" must be a positive integer/);
  bad({ target_modules: ["lm_head"] }, /target module "lm_head"/);
  bad({ bias: "all" }, /bias/);
  bad({ layers_to_transform: [0] }, /layers_to_transform/);
  throws(() => parseAdapterConfig("{", "f.json"), /f\.json: not valid JSON/);
  deepStrictEqual(
    parseAdapterConfig(
      JSON.stringify({ ...base, target_modules: ["model.layers.0.mlp.up_proj", "q_proj"] }),
      "f",
    )
      .targets,
    ["q", "up"],
  );
});

Deno.test("encodeAdapterChunks streams encodeAdapter's exact bytes, one tensor view at a time", async () => {
  const tensors = randomTensors(["q", "k", "down"], 4);
  const streamed = encodeAdapterChunks(tensors, info);
  strictEqual(streamed.configJson, encodeAdapter(tensors, info).configJson);
  let biggestTensor = 0;
  for (const t of tensors.values()) biggestTensor = Math.max(biggestTensor, t.data.byteLength);
  // Tensors are read when pulled, not when the stream is made: a change made in between is
  // what gets written (so views of live memory are read at write time, one at a time).
  const first = [...tensors.keys()].sort()[0];
  tensors.get(first)!.data[0] = 12345;
  const chunks: Uint8Array[] = [];
  const buffers = new Set([...tensors.values()].map((t) => t.data.buffer));
  let views = 0;
  for await (const c of streamed.safetensors) {
    // Each data chunk is the tensor's own memory, not a copy left for the collector.
    if (buffers.has(c.buffer)) views++;
    chunks.push(c.slice());
    ok(c.byteLength <= Math.max(biggestTensor, 4096), `chunk of ${c.byteLength} bytes`);
  }
  strictEqual(views, tensors.size);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) (bytes.set(c, at), at += c.byteLength);
  deepStrictEqual(bytes, encodeAdapter(tensors, info).safetensors);
});

Deno.test("encodeAdapterChunks hands over ordinary memory as views and copies shared memory", async () => {
  const tensors = randomTensors(["q"], 4);
  const [nameA, nameB] = [...tensors.keys()].sort();
  // One tensor in shared memory (as a threads build's linear memory is), with the same values.
  const plain = tensors.get(nameA)!.data;
  const shared = new Float32Array(new SharedArrayBuffer(plain.byteLength));
  shared.set(plain);
  tensors.set(nameA, { ...tensors.get(nameA)!, data: shared });
  const chunks: Uint8Array[] = [];
  for await (const c of encodeAdapterChunks(tensors, info).safetensors) chunks.push(c);
  // Header, then the tensors in name order.
  const [, a, b] = chunks;
  ok(!(a.buffer instanceof SharedArrayBuffer), "a shared tensor handed over uncopied");
  deepStrictEqual(new Float32Array(a.slice().buffer), plain);
  const viewB = tensors.get(nameB)!.data;
  strictEqual(b.buffer, viewB.buffer, "an ordinary tensor copied");
  strictEqual(b.byteOffset, viewB.byteOffset);
  strictEqual(b.byteLength, viewB.byteLength);
});
