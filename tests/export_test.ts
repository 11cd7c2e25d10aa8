/**
 * tools/export.ts: a PEFT adapter of a Llama-family checkpoint exported as a GGUF LoRA adapter
 * (read back with an independent parser), and its refusals.
 */
import { deepStrictEqual, match, strictEqual } from "node:assert/strict";
import { readGguf } from "../src/io/gguf_testing.ts";
import { parseModelConfig } from "../src/io/config.ts";
import { linearShape, peftName } from "../src/model/lora.ts";
import { permuteHeadRows } from "../src/train/gguf_adapter.ts";
import type { LoraTensors } from "../src/model/lora.ts";
import { writeAdapterDir } from "../src/io/peft_adapter_deno.ts";
import { main } from "../tools/export.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";

async function tool(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

Deno.test("tools/export.ts writes a GGUF LoRA adapter of a llama checkpoint; bad flags exit 2 and change nothing", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-llama", out: `${tmp}/model`, seed: 1 });
    const config = parseModelConfig(
      JSON.parse(await Deno.readTextFile(`${tmp}/model/config.json`)),
    );
    const r = 2;
    const tensors: LoraTensors = new Map();
    for (let b = 0; b < config.numLayers; b++) {
      for (const name of ["q", "k", "v"] as const) {
        const [out, inF] = linearShape(config, name);
        const fill = (n: number, k: number) =>
          Float32Array.from({ length: n }, (_, i) => i * 0.01 + k);
        tensors.set(peftName(b, name, "A"), { shape: [r, inF], data: fill(r * inF, b) });
        tensors.set(peftName(b, name, "B"), { shape: [out, r], data: fill(out * r, b + 0.5) });
      }
    }
    await writeAdapterDir(`${tmp}/ad`, tensors, {
      r,
      alpha: 4,
      targets: ["q", "k", "v"],
      baseModel: `${tmp}/model`,
    });
    // The base comes from the adapter's base_model_name_or_path, a local directory here.
    const x = await tool(["--adapter", `${tmp}/ad`, "--format", "gguf", "--out", `${tmp}/a.gguf`]);
    strictEqual(x.code, 0, x.err);
    match(x.out, /a\.gguf: GGUF LoRA adapter, \d+ tensors, \d+ bytes/);
    const bytes = await Deno.readFile(`${tmp}/a.gguf`);
    const g = await readGguf(bytes);
    strictEqual(g.metadata["general.architecture"], "llama");
    strictEqual(g.metadata["adapter.lora.alpha"], 4);
    const q = g.tensorInfos.find((t) => t.name === "blk.0.attn_q.weight.lora_b")!;
    const [qOut] = linearShape(config, "q");
    const at = Number(g.tensorDataOffset) + Number(q.offset);
    deepStrictEqual(
      new Float32Array(bytes.slice(at, at + 4 * qOut * r).buffer),
      permuteHeadRows(tensors.get(peftName(0, "q", "B"))!.data, qOut, r, config.numHeads),
    );

    const before = await Deno.readFile(`${tmp}/ad/adapter_model.safetensors`);
    for (
      const [argv, want] of [
        [["--adapter", `${tmp}/ad`, "--format", "onnx", "--out", "x"], /--format: must be gguf/],
        [["--format", "gguf", "--out", "x"], /--adapter: required/],
        [["--adapter", tmp, "--format", "gguf", "--out", "x"], /--adapter: .*no adapter_config/],
        [
          [
            "--adapter",
            `${tmp}/ad`,
            "--format",
            "gguf",
            "--out",
            `${tmp}/ad/adapter_model.safetensors`,
          ],
          /--out: .* is the adapter's adapter_model\.safetensors/,
        ],
        [["--adapter", `${tmp}/ad`, "--format", "gguf", "--out", tmp], /--out: .* is a directory/],
        [
          ["--adapter", `${tmp}/ad`, "--format", "gguf", "--out", "x", "--type", "q4"],
          /--type: must be/,
        ],
      ] as const
    ) {
      const e = await tool([...argv]);
      strictEqual(e.code, 2, e.err);
      match(e.err, new RegExp(`^error: ${want.source}`));
    }
    deepStrictEqual(await Deno.readFile(`${tmp}/ad/adapter_model.safetensors`), before);

    // A base model that is not a local directory needs --model.
    const cfg = JSON.parse(await Deno.readTextFile(`${tmp}/ad/adapter_config.json`));
    cfg.base_model_name_or_path = "meta-llama/Llama-3.2-1B";
    await Deno.writeTextFile(`${tmp}/ad/adapter_config.json`, JSON.stringify(cfg));
    const m = await tool(["--adapter", `${tmp}/ad`, "--format", "gguf", "--out", `${tmp}/b.gguf`]);
    strictEqual(m.code, 2);
    match(m.err, /^error: --model: required: the adapter's base model "meta-llama\/Llama-3.2-1B"/);
    const withModel = await tool([
      "--adapter",
      `${tmp}/ad`,
      "--format",
      "gguf",
      "--out",
      `${tmp}/b.gguf`,
      "--model",
      `${tmp}/model`,
      "--type",
      "q8_0",
    ]);
    strictEqual(withModel.code, 0, withModel.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
