import assert from "node:assert/strict";
import { checkpointConfig, makeCheckpoint, PRESETS } from "../../tools/make_checkpoint.ts";
import { parseModelConfig } from "./config.ts";
import { SafetensorsFile } from "./safetensors.ts";
import { openFileSource } from "../deno/file_source.ts";
import { runWithDeadline } from "../../scripts/harness.ts";

// The shape table of docs/design.md ("Model shapes"), written out here independently of the presets.
const TABLE: Record<
  string,
  [number, number, number, number, number, number, number, number, boolean]
> = {
  // hidden, intermediate, layers, heads, kv, head_dim, vocab, theta, qkv bias
  "qwen2.5-0.5b": [896, 4864, 24, 14, 2, 64, 151936, 1e6, true],
  "qwen2.5-1.5b": [1536, 8960, 28, 12, 2, 128, 151936, 1e6, true],
  "qwen2.5-3b": [2048, 11008, 36, 16, 2, 128, 151936, 1e6, true],
  "qwen3-0.6b": [1024, 3072, 28, 16, 8, 128, 151936, 1e6, false],
  "qwen3-1.7b": [2048, 6144, 28, 16, 8, 128, 151936, 1e6, false],
  "qwen3-4b": [2560, 9728, 36, 32, 8, 128, 151936, 1e6, false],
  "llama-3.2-1b": [2048, 8192, 16, 32, 8, 64, 128256, 5e5, false],
  "smollm2-135m": [576, 1536, 30, 9, 3, 64, 49152, 1e5, false],
  "gemma3-270m": [640, 2048, 18, 4, 1, 256, 262144, 1e6, false],
  "gemma3-1b": [1152, 6912, 26, 4, 1, 256, 262144, 1e6, false],
};

Deno.test("presets reproduce the design shape table through the config parser", () => {
  for (const [preset, row] of Object.entries(TABLE)) {
    const c = parseModelConfig(checkpointConfig({ preset }));
    const [h, inter, layers, heads, kv, hd, vocab, theta, bias] = row;
    assert.deepEqual(
      [
        c.hiddenSize,
        c.intermediateSize,
        c.numLayers,
        c.numHeads,
        c.numKvHeads,
        c.headDim,
        c.vocabSize,
        c.ropeTheta,
        c.qkvBias,
      ],
      [h, inter, layers, heads, kv, hd, vocab, theta, bias],
      preset,
    );
    assert.equal(c.tieWordEmbeddings, true, preset);
    assert.equal(c.rmsNormEps, /^(qwen|gemma)/.test(preset) ? 1e-6 : 1e-5);
  }
  assert.equal(
    parseModelConfig(checkpointConfig({ preset: "llama-3.2-1b" })).ropeScaling?.factor,
    32,
  );
  assert.equal(
    parseModelConfig(checkpointConfig({ preset: "tiny-llama" })).ropeScaling?.type,
    "llama3",
  );
  assert.ok(Object.keys(PRESETS).includes("tiny-qwen2"));
  assert.equal(parseModelConfig(checkpointConfig({ preset: "qwen3-0.6b" })).qkNorm, true);
  assert.equal(parseModelConfig(checkpointConfig({ preset: "qwen2.5-0.5b" })).qkNorm, false);
  const tiny3 = parseModelConfig(checkpointConfig({ preset: "tiny-qwen3" }));
  assert.deepEqual(
    [tiny3.architecture, tiny3.headDim, tiny3.hiddenSize / tiny3.numHeads, tiny3.qkvBias],
    ["qwen3", 32, 16, false],
  );
  assert.throws(() => checkpointConfig({ preset: "gpt2" }), /unknown preset "gpt2"/);
  // Gemma 3: five sliding layers then a full one, window 512, the bf16-rounded √640.
  const g = parseModelConfig(checkpointConfig({ preset: "gemma3-270m" }));
  assert.deepEqual(
    [g.architecture, g.slidingWindow, g.ropeLocalTheta, g.embedScale, g.attentionScale],
    ["gemma3", 512, 1e4, 25.25, 1 / 16],
  );
  assert.deepEqual(g.layerTypes?.slice(0, 7), [
    "sliding",
    "sliding",
    "sliding",
    "sliding",
    "sliding",
    "full",
    "sliding",
  ]);
  const tg = parseModelConfig(checkpointConfig({ preset: "tiny-gemma3", dtype: "f32" }));
  assert.deepEqual(
    [tg.headDim, tg.hiddenSize / tg.numHeads, tg.numHeads / tg.numKvHeads, tg.slidingWindow],
    [32, 16, 4, 4],
  );
  assert.deepEqual(tg.layerTypes, ["sliding", "full", "sliding"]);
  assert.equal(tg.attentionScale, 24 ** -0.5);
  assert.equal(tg.embedScale, 8);
  // --layers keeps the layer types consistent.
  const g2 = parseModelConfig(checkpointConfig({ preset: "gemma3-1b", layers: 2 }));
  assert.deepEqual(g2.layerTypes, ["sliding", "sliding"]);
});

Deno.test("makeCheckpoint: labelled random weights, seeded, norms 1, std ~0.02, sharding", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await makeCheckpoint({
      preset: "tiny-qwen2",
      out: `${dir}/a`,
      seed: 1,
      dtype: "f32",
    });
    await makeCheckpoint({
      preset: "tiny-qwen2",
      out: `${dir}/b`,
      seed: 1,
      dtype: "f32",
    });
    await makeCheckpoint({
      preset: "tiny-qwen2",
      out: `${dir}/c`,
      seed: 2,
      dtype: "f32",
    });
    assert.equal(a.config.slimtune_random_weights, true);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/a/config.json`));
    assert.equal(cfg.slimtune_random_weights, true);
    const read = async (d: string) => await Deno.readFile(`${d}/model.safetensors`);
    assert.deepEqual(await read(`${dir}/a`), await read(`${dir}/b`), "same seed, same bytes");
    assert.notDeepEqual(await read(`${dir}/a`), await read(`${dir}/c`));
    const file = await SafetensorsFile.open(await openFileSource(`${dir}/a/model.safetensors`));
    assert.equal(file.metadata.slimtune_random_weights, "true");
    const norm = new Float32Array(
      (await file.read("model.layers.0.input_layernorm.weight")).slice().buffer,
    );
    assert.ok(norm.every((x) => x === 1));
    const up = new Float32Array(
      (await file.read("model.layers.1.mlp.up_proj.weight")).slice().buffer,
    );
    const mean = up.reduce((s, x) => s + x, 0) / up.length;
    const std = Math.sqrt(up.reduce((s, x) => s + (x - mean) ** 2, 0) / up.length);
    assert.ok(Math.abs(mean) < 0.002 && Math.abs(std - 0.02) < 0.002, `mean ${mean} std ${std}`);
    assert.ok(!file.has("lm_head.weight"), "tied");
    assert.deepEqual(file.info("model.layers.0.self_attn.k_proj.bias").shape, [32]);
    await file.close();

    const s = await makeCheckpoint({
      preset: "tiny-llama",
      out: `${dir}/s`,
      shardMb: 0.05,
      layers: 3,
    });
    const index = JSON.parse(await Deno.readTextFile(`${dir}/s/model.safetensors.index.json`));
    const shards = new Set(Object.values(index.weight_map as Record<string, string>));
    assert.ok(shards.size >= 3, `${shards.size} shards`);
    assert.equal(index.metadata.total_size, s.dataBytes);
    assert.ok("lm_head.weight" in index.weight_map, "untied llama has lm_head");
    assert.ok("model.layers.2.mlp.down_proj.weight" in index.weight_map);
    assert.ok(!("model.layers.0.self_attn.q_proj.bias" in index.weight_map), "llama: no biases");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI writes a checkpoint and reports bad flags", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = new URL("../../tools/make_checkpoint.ts", import.meta.url).pathname;
    // A tiny checkpoint: seconds alone, a minute or more on a loaded machine.
    const run = (args: string[]) =>
      runWithDeadline(Deno.execPath(), ["run", "-A", "--no-check", script, ...args], {
        timeoutMs: 3 * 60_000,
        what: `make_checkpoint.ts ${args.join(" ")}`,
      });
    const ok = await run([
      "--preset",
      "tiny-llama",
      "--out",
      dir,
      "--dtype",
      "f16",
      "--layers",
      "1",
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
    assert.equal(cfg.num_hidden_layers, 1);
    assert.equal(cfg.torch_dtype, "float16");
    const bad = await run(["--preset", "nope", "--out", dir]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unknown preset "nope"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
