/**
 * tools/export.ts for whole models: the merged Hugging Face checkpoint computes what base +
 * adapter computes (through slimtune's own forward), from a float base and from an MLX 4-bit one;
 * the GGUF model's tensors and keys as an independent reader sees them; and the refusals: an
 * adapter of another shape, an unknown architecture, an MLX base that is not 4-bit or not of the
 * config's shape, a failure midway (no complete-looking file is left, an earlier output stays).
 *
 * Every test reads one shared fixture per preset (the tiny checkpoint, its tokenizer, an adapter,
 * the MLX 4-bit version), built on first use and removed when the tests end; a test that needs
 * a broken input writes it beside the fixture, never into it.
 */
import { deepStrictEqual, match, ok, strictEqual } from "node:assert/strict";
import { Decoder, type DecoderAdapter } from "../src/generate/decoder.ts";
import { openModelDir } from "../src/deno/model_source.ts";
import { readGguf } from "../src/io/gguf_testing.ts";
import { SafetensorsFile } from "../src/io/safetensors.ts";
import { serializeSafetensors, type TensorData } from "../src/io/safetensors_writer.ts";
import { openFileSource } from "../src/deno/file_source.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { tinyTokenizerFiles } from "../src/data/tiny_tokenizer_testing.ts";
import { linearShape, peftName } from "../src/model/lora.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { parseModelConfig } from "../src/io/config.ts";
import { LINEAR_NAMES, type LinearName } from "../src/model/weights.ts";
import { Rng } from "../src/runtime/rng.ts";
import type { LoraTensors } from "../src/model/lora.ts";
import { writeAdapterDir } from "../src/deno/peft_adapter.ts";
import { main } from "../tools/export.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { mlxQuantizedCheckpoint } from "./mlx_fixture.ts";

async function tool(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  return { code, out, err };
}

/** Where every fixture and every test's output lives; removed when the tests end. */
const ROOT = Deno.makeTempDirSync({ prefix: "export_model_test_" });
globalThis.addEventListener("unload", () => Deno.removeSync(ROOT, { recursive: true }));

/** A fresh directory under {@link ROOT} for one test's outputs and broken inputs. */
const scratch = () => Deno.makeTempDir({ dir: ROOT });

function randomAdapter(config: ModelConfig, r: number, seed: number): LoraTensors {
  const rng = new Rng(seed);
  const t: LoraTensors = new Map();
  for (let b = 0; b < config.numLayers; b++) {
    for (const name of LINEAR_NAMES) {
      const [out, inF] = linearShape(config, name);
      const a = new Float32Array(r * inF);
      const bb = new Float32Array(out * r);
      rng.fillNormal(a, 0.3);
      rng.fillNormal(bb, 0.3);
      t.set(peftName(b, name, "A"), { shape: [r, inF], data: a });
      t.set(peftName(b, name, "B"), { shape: [out, r], data: bb });
    }
  }
  return t;
}

/** One preset's shared inputs. */
interface Fixture {
  /** The tiny random checkpoint (`tinyModel` dtype) with the tiny tokenizer. */
  model: string;
  config: ModelConfig;
  /** A rank-4 adapter on q, v, o, up, down (k and gate left alone), `base_model` = `model`. */
  adapter: string;
  lora: DecoderAdapter;
  /** `model` as an mlx-community 4-bit checkpoint (group size 32). */
  mlx: string;
  /** The same adapter with `base_model` = `mlx`. */
  mlxAdapter: string;
}

const fixtures = new Map<string, Promise<Fixture>>();

/** The fixture of `preset` in `dtype`, built on first use. */
function fixture(preset: string, dtype: "f32" | "bf16" = "f32"): Promise<Fixture> {
  const key = `${preset}-${dtype}`;
  let f = fixtures.get(key);
  if (!f) {
    f = buildFixture(`${ROOT}/${key}`, preset, dtype);
    fixtures.set(key, f);
  }
  return f;
}

async function buildFixture(dir: string, preset: string, dtype: "f32" | "bf16"): Promise<Fixture> {
  const model = `${dir}/model`;
  await makeCheckpoint({ preset, out: model, seed: 9, dtype });
  const files = tinyTokenizerFiles(512);
  await Deno.writeTextFile(`${model}/tokenizer.json`, files.tokenizerJson);
  await Deno.writeTextFile(`${model}/tokenizer_config.json`, files.tokenizerConfig);
  const config = parseModelConfig(JSON.parse(await Deno.readTextFile(`${model}/config.json`)));
  const targets: LinearName[] = ["q", "v", "o", "up", "down"];
  const tensors: LoraTensors = new Map(
    [...randomAdapter(config, 4, 21)].filter(([name]) => !/k_proj|gate_proj/.test(name)),
  );
  const info = { r: 4, alpha: 8, targets };
  await writeAdapterDir(`${dir}/adapter`, tensors, { ...info, baseModel: model });
  const mlx = `${dir}/mlx`;
  await mlxQuantizedCheckpoint(model, mlx);
  await writeAdapterDir(`${dir}/mlx-adapter`, tensors, { ...info, baseModel: mlx });
  return {
    model,
    config,
    adapter: `${dir}/adapter`,
    lora: { ...info, tensors },
    mlx,
    mlxAdapter: `${dir}/mlx-adapter`,
  };
}

async function logitsOf(dir: string, ids: number[], adapter: DecoderAdapter | null) {
  const { kernels, arena } = loadKernelsSync();
  const store = await openModelDir({
    source: dir,
    quant: "none",
    weights: "resident",
    kernels,
    arena,
  });
  try {
    const dec = Decoder.create({ store, kernels, arena, maxLen: ids.length, adapter });
    const out = (await dec.append(ids, "all")).slice();
    dec.dispose();
    return out;
  } finally {
    await store.close();
  }
}

/**
 * How far `merged`'s logits are from `base` + adapter's (`worst`), and how far the adapter moves
 * `base`'s (`moved`), on 24 random tokens.
 */
async function mergedAgainstBase(merged: string, base: string, lora: DecoderAdapter, seed: number) {
  const rng = new Rng(seed);
  const ids = Array.from({ length: 24 }, () => Math.floor(rng.uniform() * 512));
  const want = await logitsOf(base, ids, lora);
  const got = await logitsOf(merged, ids, null);
  const plain = await logitsOf(base, ids, null);
  let worst = 0;
  let moved = 0;
  for (let i = 0; i < want.length; i++) {
    worst = Math.max(worst, Math.abs(got[i] - want[i]));
    moved = Math.max(moved, Math.abs(plain[i] - want[i]));
  }
  return { worst, moved };
}

/** Copies `from` to a new checkpoint `to`, its config changed and its tensors passed through `swap`. */
async function alteredCheckpoint(
  from: string,
  to: string,
  config: Record<string, unknown>,
  swap: (t: TensorData) => TensorData = (t) => t,
): Promise<void> {
  await Deno.mkdir(to);
  await Deno.copyFile(`${from}/tokenizer.json`, `${to}/tokenizer.json`);
  await Deno.writeTextFile(`${to}/config.json`, JSON.stringify(config));
  const src = await SafetensorsFile.open(await openFileSource(`${from}/model.safetensors`));
  const tensors: TensorData[] = [];
  for (const name of src.names()) {
    const { dtype, shape } = src.info(name);
    tensors.push(swap({ name, dtype, shape, data: await src.read(name) }));
  }
  await src.close();
  await Deno.writeFile(`${to}/model.safetensors`, serializeSafetensors(tensors));
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

for (const preset of ["tiny-qwen2", "tiny-llama"]) {
  Deno.test(`a merged safetensors checkpoint computes base + adapter to 1e-5 (${preset})`, async () => {
    const fx = await fixture(preset);
    const tmp = await scratch();
    // --model defaults to the adapter's base_model_name_or_path (a local directory here).
    const x = await tool([
      ...["--adapter", fx.adapter, "--merge", "--format", "safetensors", "--type", "f32"],
      ...["--out", `${tmp}/merged`],
    ]);
    strictEqual(x.code, 0, x.err);
    match(x.out, /merged checkpoint \(\w+, f32, LoRA r=4 merged\)/);
    ok(!x.out.includes("note:"), x.out);
    for (
      const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    ) {
      ok((await Deno.stat(`${tmp}/merged/${f}`)).isFile, f);
    }
    strictEqual(
      JSON.parse(await Deno.readTextFile(`${tmp}/merged/config.json`)).torch_dtype,
      "float32",
    );
    const { worst, moved } = await mergedAgainstBase(`${tmp}/merged`, fx.model, fx.lora, 4);
    ok(worst <= 1e-5, `merged vs base + adapter: ${worst}`);
    ok(moved > 0.1, `the adapter moves the logits (${moved})`);

    // bf16: every tensor of the base, in bf16.
    const y = await tool([
      ...["--model", fx.model, "--adapter", fx.adapter, "--merge", "--format", "safetensors"],
      ...["--out", `${tmp}/merged16`],
    ]);
    strictEqual(y.code, 0, y.err);
    const f = await SafetensorsFile.open(await openFileSource(`${tmp}/merged16/model.safetensors`));
    const orig = await SafetensorsFile.open(await openFileSource(`${fx.model}/model.safetensors`));
    deepStrictEqual(f.names().sort(), orig.names().sort());
    ok(f.names().every((n) => f.info(n).dtype === "BF16"));
    await f.close();
    await orig.close();
  });

  Deno.test(`an MLX 4-bit base merges into a float checkpoint that computes base + adapter to 1e-5 (${preset})`, async () => {
    const fx = await fixture(preset);
    const tmp = await scratch();
    const x = await tool([
      ...["--model", fx.mlx, "--adapter", fx.mlxAdapter, "--merge"],
      ...["--format", "safetensors", "--type", "f32", "--out", `${tmp}/merged`],
    ]);
    strictEqual(x.code, 0, x.err);
    // Every linear of every layer, the embedding, and an untied LM head.
    const c = fx.config;
    const matrices = c.numLayers * 7 + 1 + (c.tieWordEmbeddings ? 0 : 1);
    match(
      x.out,
      new RegExp(
        `\\nnote: the base is MLX 4-bit; its ${matrices} quantized matrices are written ` +
          `dequantized as f32, so the output's \\d+ bytes are \\d+\\.\\dx the input's \\d+ bytes ` +
          `of tensors\\n$`,
      ),
    );
    const raw = JSON.parse(await Deno.readTextFile(`${tmp}/merged/config.json`));
    strictEqual(raw.quantization, undefined);
    strictEqual(raw.torch_dtype, "float32");
    const f = await SafetensorsFile.open(await openFileSource(`${tmp}/merged/model.safetensors`));
    const float = await SafetensorsFile.open(await openFileSource(`${fx.model}/model.safetensors`));
    // The float checkpoint's tensors, names and shapes: no scales, no biases, no packed words.
    deepStrictEqual(f.names().sort(), float.names().sort());
    for (const n of f.names()) {
      strictEqual(f.info(n).dtype, "F32", n);
      deepStrictEqual(f.info(n).shape, float.info(n).shape, n);
    }
    await f.close();
    await float.close();
    const { worst, moved } = await mergedAgainstBase(`${tmp}/merged`, fx.mlx, fx.lora, 8);
    ok(worst <= 1e-5, `merged vs MLX base + adapter: ${worst}`);
    ok(moved > 0.1, `the adapter moves the logits (${moved})`);
  });
}

Deno.test("a GGUF model's q8_0/q4_0 matrices, f32 vectors and file type, read back independently", async () => {
  const fx = await fixture("tiny-qwen2", "bf16");
  const tmp = await scratch();
  for (const [type, fileType, ggml] of [["q8_0", 7, 8], ["q4_0", 2, 2], ["f16", 1, 1]] as const) {
    const x = await tool([
      ...["--model", fx.model, "--format", "gguf", "--type", type, "--out", `${tmp}/m.gguf`],
    ]);
    strictEqual(x.code, 0, x.err);
    match(x.out, new RegExp(`GGUF model \\(qwen2, 2 layers, ${type}\\)`));
    const g = await readGguf(await Deno.readFile(`${tmp}/m.gguf`));
    strictEqual(g.metadata["general.file_type"], fileType);
    strictEqual(g.metadata["general.quantization_version"], type === "f16" ? undefined : 2);
    const byName = new Map(g.tensorInfos.map((t) => [t.name, t]));
    strictEqual(byName.get("blk.0.ffn_up.weight")!.dtype, ggml);
    strictEqual(byName.get("blk.0.attn_q.bias")!.dtype, 0);
    strictEqual(byName.get("blk.0.attn_norm.weight")!.dtype, 0);
    // Tied embedding: no output.weight; llama.cpp reuses token_embd.
    ok(!byName.has("output.weight"));
    strictEqual(g.tensorInfos.length, 1 + fx.config.numLayers * 12 + 1);
  }
});

Deno.test("a GGUF model from an MLX 4-bit base: the same tensors as from the float base, and the note says what q4_0 does", async () => {
  const fx = await fixture("tiny-qwen2");
  const tmp = await scratch();
  for (const type of ["f16", "q4_0"] as const) {
    const x = await tool([
      "--model",
      fx.mlx,
      "--format",
      "gguf",
      "--type",
      type,
      "--out",
      `${tmp}/m.gguf`,
    ]);
    strictEqual(x.code, 0, x.err);
    match(
      x.out,
      new RegExp(
        `note: the base is MLX 4-bit; its 15 quantized matrices are written dequantized as ${type}`,
      ),
    );
    strictEqual(
      x.out.includes("q4_0 requantizes them: llama.cpp's blocks are not MLX's groups"),
      type === "q4_0",
      x.out,
    );
    const y = await tool([
      "--model",
      fx.model,
      "--format",
      "gguf",
      "--type",
      type,
      "--out",
      `${tmp}/f.gguf`,
    ]);
    strictEqual(y.code, 0, y.err);
    const g = await readGguf(await Deno.readFile(`${tmp}/m.gguf`));
    const h = await readGguf(await Deno.readFile(`${tmp}/f.gguf`));
    const shapes = (t: typeof g) =>
      t.tensorInfos.map((i) => [i.name, i.dtype, i.shape.map(Number)]);
    deepStrictEqual(shapes(g), shapes(h));
    deepStrictEqual(g.metadata, { ...h.metadata, "general.name": "mlx" });
  }
});

Deno.test("export refuses an adapter of another shape and an unknown architecture in one line; a failed export leaves no file", async () => {
  const fx = await fixture("tiny-llama");
  // Another shape: the tiny Qwen3 (same hidden size, but head_dim 32: q is [128, 64], not
  // [64, 64]).
  const other = (await fixture("tiny-qwen3")).model;
  const tmp = await scratch();
  for (
    const argv of [
      [
        "--model",
        other,
        "--adapter",
        fx.adapter,
        "--merge",
        "--format",
        "gguf",
        "--out",
        `${tmp}/o.gguf`,
      ],
      [
        "--model",
        other,
        "--adapter",
        fx.adapter,
        "--merge",
        "--format",
        "safetensors",
        "--out",
        `${tmp}/o`,
      ],
      ["--model", other, "--adapter", fx.adapter, "--format", "gguf", "--out", `${tmp}/o.gguf`],
    ]
  ) {
    const e = await tool(argv);
    strictEqual(e.code, 1, argv.join(" "));
    match(e.err, /^error: .*adapter_model\.safetensors: .*(has shape|unexpected tensor).*\n$/);
    strictEqual(e.err.split("\n").length, 2, e.err);
  }
  ok(!(await exists(`${tmp}/o.gguf`)), "o.gguf written");
  ok(!(await exists(`${tmp}/o`)), "o/ written");

  for (
    const [argv, want] of [
      [
        ["--model", fx.model, "--merge", "--format", "gguf", "--out", "x"],
        /^error: --merge: needs --adapter DIR\n$/,
      ],
      [
        ["--model", fx.model, "--format", "safetensors", "--out", "x"],
        /^error: --format: safetensors is for --merge/,
      ],
      [
        ["--adapter", fx.adapter, "--format", "gguf", "--out", "x", "--tokenizer", tmp],
        /^error: --tokenizer: is for a GGUF model/,
      ],
      [
        ["--model", fx.model, "--format", "gguf", "--out", "x", "--type", "bf16"],
        /^error: --type: must be one of f32\|f16\|q8_0\|q4_0, got "bf16"/,
      ],
      [
        ["--model", fx.model, "--format", "gguf", "--out", `${fx.model}/model.safetensors`],
        /^error: --out: .* is one of the model's files/,
      ],
      [
        [
          ...["--model", fx.model, "--adapter", fx.adapter, "--merge", "--format", "safetensors"],
          ...["--out", fx.model],
        ],
        /^error: --out: .* is the input/,
      ],
      [
        ["--model", tmp, "--format", "gguf", "--out", "x"],
        /^error: --model: .*: no config\.json/,
      ],
    ] as const
  ) {
    const e = await tool([...argv]);
    strictEqual(e.code, 2, argv.join(" "));
    match(e.err, want);
  }

  const mistral = JSON.parse(await Deno.readTextFile(`${other}/config.json`));
  mistral.architectures = ["MistralForCausalLM"];
  mistral.model_type = "mistral";
  await Deno.mkdir(`${tmp}/mistral`);
  await Deno.writeTextFile(`${tmp}/mistral/config.json`, JSON.stringify(mistral));
  const u = await tool(["--model", `${tmp}/mistral`, "--format", "gguf", "--out", `${tmp}/g.gguf`]);
  strictEqual(u.code, 1);
  match(
    u.err,
    /^error: .*mistral\/config\.json: unsupported architecture "MistralForCausalLM".*\n$/,
  );
  // A Gemma 3 whose layer types llama.cpp's sliding_window_pattern (every n-th layer full)
  // cannot express: full, sliding, sliding.
  await makeCheckpoint({
    preset: "tiny-gemma3",
    out: `${tmp}/gemma`,
    seed: 1,
    configOverrides: {
      layer_types: ["full_attention", "sliding_attention", "sliding_attention"],
    },
  });
  await Deno.copyFile(`${fx.model}/tokenizer.json`, `${tmp}/gemma/tokenizer.json`);
  const g = await tool(["--model", `${tmp}/gemma`, "--format", "gguf", "--out", `${tmp}/g.gguf`]);
  strictEqual(g.code, 1);
  match(
    g.err,
    /^error: .*gemma\/config\.json: layer types \[full,sliding,sliding\] have no llama\.cpp sliding_window_pattern .*\n$/,
  );
  ok(!(await exists(`${tmp}/g.gguf`)), "g.gguf written");

  // A failure midway: one tensor is not a float, found only when its turn comes.
  const ok1 = await tool(["--model", fx.model, "--format", "gguf", "--out", `${tmp}/m.gguf`]);
  strictEqual(ok1.code, 0, ok1.err);
  const before = await Deno.readFile(`${tmp}/m.gguf`);
  const raw = JSON.parse(await Deno.readTextFile(`${fx.model}/config.json`));
  await alteredCheckpoint(
    fx.model,
    `${tmp}/broken`,
    raw,
    (t) => t.name === "model.layers.1.mlp.down_proj.weight" ? { ...t, dtype: "I32" } : t,
  );
  for (const out of [`${tmp}/m.gguf`, `${tmp}/new.gguf`]) {
    const e = await tool(["--model", `${tmp}/broken`, "--format", "gguf", "--out", out]);
    strictEqual(e.code, 1);
    match(
      e.err,
      /^error: .*model\.safetensors: tensor model\.layers\.1\.mlp\.down_proj\.weight is I32: only float checkpoints/,
    );
  }
  deepStrictEqual(await Deno.readFile(`${tmp}/m.gguf`), before, "the earlier export is untouched");
  ok(!(await exists(`${tmp}/new.gguf`)), "new.gguf written");
  const left = [];
  for await (const e of Deno.readDir(tmp)) left.push(e.name);
  deepStrictEqual(left.filter((n) => n.endsWith(".tmp")), [], "no temporary file is left");
});

Deno.test("an MLX base that is not 4-bit, or whose packed shape is not the config's, is refused in one line naming the tensor", async () => {
  const fx = await fixture("tiny-llama");
  const tmp = await scratch();
  const cfg = JSON.parse(await Deno.readTextFile(`${fx.mlx}/config.json`));
  const variant = async (
    dir: string,
    config: Record<string, unknown>,
    swap?: (t: TensorData) => TensorData,
  ) => {
    await alteredCheckpoint(fx.mlx, `${tmp}/${dir}`, config, swap);
    // An adapter of the shapes the config gives, so that only the base's tensors are wrong.
    await writeAdapterDir(`${tmp}/${dir}-ad`, randomAdapter(parseModelConfig(config), 2, 3), {
      r: 2,
      alpha: 4,
      targets: [...LINEAR_NAMES],
      baseModel: `${tmp}/${dir}`,
    });
  };
  // An 8-bit checkpoint says so in its config.
  await variant("eight", { ...cfg, quantization: { group_size: 32, bits: 8 } });
  // One matrix packed 8-bit (four values per word) under a 4-bit config.
  const up = "model.layers.1.mlp.up_proj";
  await variant(
    "mixed",
    cfg,
    (t) =>
      t.name === `${up}.weight`
        ? { ...t, shape: [128, 16], data: new Uint8Array(128 * 16 * 4) }
        : t,
  );
  // A config whose MLP is wider than the packed weights.
  await variant("wide", { ...cfg, intermediate_size: 256 });
  for (
    const [dir, want] of [
      ["eight", /^error: .*eight\/config\.json: unsupported quantization bits 8 \(only 4\)\n$/],
      [
        "mixed",
        /^error: .*mixed\/model\.safetensors: tensor model\.layers\.1\.mlp\.up_proj\.weight is U32 \[128,16\] with 2 groups per row: as 4-bit that is a group size of 64, not the config's 32 \(only MLX 4-bit checkpoints are read\)\n$/,
      ],
      [
        "wide",
        /^error: .*wide\/model\.safetensors: tensor model\.layers\.\d\.mlp\.(gate|up|down)_proj\.weight has shape \[\d+, \d+\] \(U32\), expected \[\d+, \d+\] U32 \(MLX 4-bit: 8 nibbles per u32\)\n$/,
      ],
    ] as const
  ) {
    for (const format of ["gguf", "safetensors"]) {
      const out = `${tmp}/out-${dir}-${format}`;
      const e = await tool([
        ...["--model", `${tmp}/${dir}`, "--format", format, "--out", out],
        ...(format === "safetensors" ? ["--adapter", `${tmp}/${dir}-ad`, "--merge"] : []),
      ]);
      strictEqual(e.code, 1, `${dir} ${format}: ${e.err}`);
      match(e.err, want);
      ok(!(await exists(out)), `${out} written`);
    }
  }
});
