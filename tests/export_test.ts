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
import { writeAdapterDir } from "../src/deno/peft_adapter.ts";
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

Deno.test("tools/export.ts: every flag mistake is one line naming the flag, exit 2 (the shared tool flags)", async () => {
  const help = await tool(["--help"]);
  strictEqual(help.code, 0);
  strictEqual((await tool(["-h"])).out, help.out);
  match(
    help.out,
    /^usage: npx deno run -A tools\/export\.ts --format gguf\|safetensors --out PATH/,
  );
  for (
    const [argv, err] of [
      [[], "error: --adapter: required (or --model DIR alone to export the base model)\n"],
      [["--bogus"], "error: --bogus: unknown option (see --help)\n"],
      [["-x"], "error: -x: unknown option (see --help)\n"],
      [["--adapter"], "error: --adapter: needs a value\n"],
      [
        ["--adapter", "--format"],
        'error: --adapter: a value starting with "-" must be written --adapter=VALUE\n',
      ],
      [["stray"], "error: stray: unexpected argument (see --help)\n"],
      [["--merge=yes"], "error: --merge: Option '--merge' does not take an argument\n"],
      [["--help=1"], "error: --help: Option '--help' does not take an argument\n"],
      [["--adapter", ""], "error: --adapter: must not be empty\n"],
      [["--model", "x"], "error: --format: required\n"],
      [["--model", "x", "--format", ""], "error: --format: must not be empty\n"],
      [["--model", "x", "--format", "gguf"], "error: --out: required\n"],
      [["--model", "x", "--format", "gguf", "--out", ""], "error: --out: must not be empty\n"],
      [
        ["--model", "x", "--format", "onnx", "--out", "y"],
        'error: --format: must be gguf or safetensors, got "onnx"\n',
      ],
      [["--merge", "--model", "x"], "error: --merge: needs --adapter DIR\n"],
      [
        ["--model", "x", "--format", "safetensors", "--out", "y"],
        "error: --format: safetensors is for --merge (an adapter is already safetensors, and so is the base)\n",
      ],
      [
        ["--adapter", "nonexistent-dir", "--format", "gguf", "--out", "y"],
        "error: --adapter: nonexistent-dir: no adapter_config.json (not a PEFT adapter)\n",
      ],
      [
        ["--model", "nonexistent-dir", "--format", "gguf", "--out", "y"],
        "error: --model: nonexistent-dir: no config.json (expected a local checkpoint directory)\n",
      ],
      [
        ["--model", "x", "--tokenizer", "", "--format", "gguf", "--out", "y"],
        "error: --tokenizer: must not be empty\n",
      ],
      [["--model", "x", "--", "y"], "error: y: unexpected argument (see --help)\n"],
      [["--model=", "x"], "error: x: unexpected argument (see --help)\n"],
    ] as const
  ) {
    const r = await tool([...argv]);
    deepStrictEqual([r.code, r.out, r.err], [2, "", err], argv.join(" "));
  }
});
