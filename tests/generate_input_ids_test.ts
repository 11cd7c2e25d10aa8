/**
 * generate.ts --input-ids: a pre-tokenized prompt (ids, or a file), with or without a tokenizer,
 * continues exactly as the decoder's greedy loop does; bad ids are refused by name.
 */
import { deepStrictEqual, match, strictEqual } from "node:assert/strict";
import { tinyTokenizerFiles } from "../src/data/tiny_tokenizer_testing.ts";
import { main } from "../src/deno/generate_cli.ts";
import { Decoder } from "../src/generate/decoder.ts";
import { argmax } from "../src/generate/sampling.ts";
import { openModelDir } from "../src/deno/model_source.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";

async function gen(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

Deno.test("generate.ts --input-ids continues a pre-tokenized prompt as the greedy decoder does", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/m`, seed: 4 });
    const prompt = [5, 77, 300, 12, 9];
    const steps = 6;
    const { kernels, arena } = loadKernelsSync();
    const store = await openModelDir({
      source: `${tmp}/m`,
      quant: "int4",
      weights: "resident",
      kernels,
      arena,
    });
    const dec = Decoder.create({ store, kernels, arena, maxLen: prompt.length + steps });
    const want: number[] = [];
    let logits = await dec.append(prompt);
    for (let i = 0; i < steps; i++) {
      want.push(argmax(logits));
      if (i < steps - 1) logits = await dec.append([want[i]]);
    }
    dec.dispose();
    await store.close();

    const flags = [
      "--model",
      `${tmp}/m`,
      "--temperature",
      "0",
      "--max-new-tokens",
      `${steps}`,
      "--quiet",
    ];
    // No tokenizer in the checkpoint: the new ids are printed.
    const a = await gen([...flags, "--input-ids", prompt.join(",")]);
    strictEqual(a.code, 0, a.err);
    deepStrictEqual(a.out.trim().split(" ").map(Number), want);
    await Deno.writeTextFile(`${tmp}/p.jsonl`, JSON.stringify({ input_ids: prompt }) + "\n{}\n");
    const b = await gen([...flags, "--input-ids", `${tmp}/p.jsonl`]);
    strictEqual(b.out, a.out);

    // With a tokenizer, the continuation is text: the same ids decoded.
    const files = tinyTokenizerFiles(512);
    await Deno.writeTextFile(`${tmp}/m/tokenizer.json`, files.tokenizerJson);
    await Deno.writeTextFile(`${tmp}/m/tokenizer_config.json`, files.tokenizerConfig);
    const c = await gen([...flags, "--input-ids", `[${prompt}]`.replace(/[[\]]/g, "")]);
    strictEqual(c.code, 0, c.err);
    const { loadTokenizerDir } = await import("../src/deno/tokenizer.ts");
    strictEqual(c.out, (await loadTokenizerDir(`${tmp}/m`)).decode(want) + "\n");

    for (
      const [value, want] of [
        ["5,512", /^error: --input-ids: 512 is not a token id of the model \(0 \.\. 511\)/],
        [`${tmp}/none.json`, /--input-ids: .*none\.json: no such file/],
      ] as const
    ) {
      const e = await gen([...flags, "--input-ids", value]);
      strictEqual(e.code, 2);
      match(e.err, want);
    }
    const both = await gen([...flags, "--input-ids", "1", "--prompt", "x"]);
    strictEqual(both.code, 2);
    match(both.err, /^error: --input-ids: give one of/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
