/**
 * Decoding speed on a random Qwen2.5-0.5B-shaped int4 model: a 31-token prompt (prefill), then
 * 128 greedy tokens, at each thread count, against llama.cpp (node-llama-cpp's prebuilt CPU
 * binary, run by Node on bench/llama_decode.mjs) on the same model written as a Q4_0 GGUF
 * (bench/gguf_q4_0.ts), all interleaved in rounds so that other load on the machine falls on
 * every configuration alike. A second reference is this process's own limit: the int4 weights a
 * decode step reads (every linear and the tied head, with their group scales and biases) against
 * the memory read bandwidth of one wasm thread measured between the rounds
 * (bench/read_bandwidth.ts).
 *
 *   deno run -A bench/decode.ts [--threads 1,2] [--rounds 3] [--layers 24] [--new-tokens 128]
 *                               [--no-llama] [--baseline REV]
 *
 * `--baseline REV` adds, at each thread count, the same decoder on the kernels committed at REV
 * (bench/baseline_kernels.ts), in the same rounds, and prints this tree's speed-up over it: by
 * the best round, and by the median and the fastest tenth of the single decode steps (a step is
 * ~50 ms: on a shared machine fewer of them than of the multi-second rounds are disturbed).
 *
 * Prints a markdown table: per thread count slimtune's and llama.cpp's prefill and decode tok/s
 * (best round each), their decode ratio, slimtune's weight GB/s per thread and its share of the
 * read bandwidth.
 */
import { parseArgs } from "node:util";
import { type LoadedKernels, loadKernels } from "../src/kernels/wasm.ts";
import { createRandomWeightStore } from "../src/model/random_weights.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { presetModelConfig } from "../src/io/presets.ts";
import type { WeightStore } from "../src/model/weights.ts";
import { Decoder } from "../src/generate/decoder.ts";
import { generate } from "../src/generate/loop.ts";
import { Rng } from "../src/runtime/rng.ts";
import { readBandwidth } from "./read_bandwidth.ts";
import { writeQwen2GgufQ4_0 } from "./gguf_q4_0.ts";
import { bundledQwenTokenizerDir } from "../src/deno/tokenizer.ts";
import { loadBaselineKernels } from "./baseline_kernels.ts";
import { runWithDeadline } from "../scripts/harness.ts";

/**
 * One llama.cpp round's whole life (Node start, model load, prefill, decode): seconds on a
 * quiet machine, so minutes mean it hangs.
 */
const LLAMA_ROUND_MS = 300_000;

/** One llama.cpp round at `threads`: prefill and decode tok/s and the tokens. */
async function llamaRound(
  gguf: string,
  threads: number,
  newTokens: number,
  prompt: number[],
): Promise<{ prefill: number; decode: number; ids: number[] }> {
  const script = new URL("./llama_decode.mjs", import.meta.url).pathname;
  const r = await runWithDeadline(
    "node",
    [script, gguf, String(threads), String(newTokens), "1", prompt.join(",")],
    { timeoutMs: LLAMA_ROUND_MS, what: `llama.cpp decode round (${threads} threads)` },
  );
  const out = r.stdout.trim().split("\n").at(-1) ?? "";
  if (!r.success || !out.startsWith("{")) {
    throw new Error(`llama.cpp run failed: ${r.stderr.slice(-2000)}`);
  }
  const j = JSON.parse(out) as { prefillMs: number; decodeMs: number; ids: number[] };
  return {
    prefill: prompt.length / (j.prefillMs / 1000),
    decode: (j.ids.length - 1) / (j.decodeMs / 1000),
    ids: j.ids,
  };
}

function config(layers: number): ModelConfig {
  return presetModelConfig("qwen2.5-0.5b", { numLayers: layers });
}

/** Bytes of int4 weights one decode step reads: nibbles plus an f32 scale and bias per 64. */
function weightBytesPerToken(c: ModelConfig): number {
  const d = c.hiddenSize, I = c.intermediateSize, kv = c.numKvHeads * c.headDim;
  const q = c.numHeads * c.headDim;
  const perLayer = q * d + 2 * kv * d + d * q + 3 * I * d;
  const weights = c.numLayers * perLayer + c.vocabSize * d;
  return weights / 2 + (weights / 64) * 8;
}

/** The q-quantile of `xs` (nearest rank). */
function quantile(xs: readonly number[], q: number): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(q * v.length))] : NaN;
}

function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

interface Setup {
  /** Whose kernels: "this tree" or `baseline (REV)`. */
  kernels: string;
  threads: number;
  store: WeightStore;
  loaded: LoadedKernels;
  decoder: Decoder;
  prefill: number[];
  decode: number[];
  llamaPrefill: number[];
  llamaDecode: number[];
  /** Every decode step's time (ms), from one generated token to the next, all rounds. */
  steps: number[];
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      threads: { type: "string", default: "1,2" },
      rounds: { type: "string", default: "3" },
      layers: { type: "string", default: "24" },
      "new-tokens": { type: "string", default: "128" },
      "prompt-tokens": { type: "string", default: "31" },
      "no-llama": { type: "boolean", default: false },
      baseline: { type: "string" },
    },
  });
  const threadCounts = values.threads.split(",").map(Number);
  const rounds = Number(values.rounds);
  const newTokens = Number(values["new-tokens"]);
  const promptTokens = Number(values["prompt-tokens"]);
  const c = config(Number(values.layers));
  const rng = new Rng(7);
  const prompt = Array.from({ length: promptTokens }, () => rng.nextU32() % c.vocabSize);

  const setups: Setup[] = [];
  const builds: { label: string; load: (threads: number) => Promise<LoadedKernels> }[] = [
    { label: "this tree", load: (threads) => loadKernels({ threads }) },
  ];
  if (values.baseline) {
    const rev = values.baseline;
    builds.push({
      label: `baseline (${rev})`,
      load: (threads) => loadBaselineKernels(rev, { threads }),
    });
  }
  for (const threads of threadCounts) {
    for (const build of builds) {
      const loaded = await build.load(threads);
      const { kernels, arena } = loaded;
      const store = createRandomWeightStore({
        config: c,
        kernels,
        arena,
        seed: 1,
        quant: "int4",
      });
      const decoder = Decoder.create({ store, kernels, arena, maxLen: promptTokens + newTokens });
      setups.push({
        kernels: build.label,
        threads,
        store,
        loaded,
        decoder,
        prefill: [],
        decode: [],
        llamaPrefill: [],
        llamaDecode: [],
        steps: [],
      });
    }
  }
  // The same model for llama.cpp, in a temporary file removed at the end.
  let gguf: string | null = null;
  if (!values["no-llama"]) {
    gguf = await Deno.makeTempFile({ suffix: ".gguf" });
    const { loaded, store } = setups[0];
    const tokenizer = `${bundledQwenTokenizerDir()}/tokenizer.json`;
    await writeQwen2GgufQ4_0(gguf, store, loaded.kernels, loaded.arena, tokenizer);
  }
  let llamaIds: number[] | null = null;
  const bandwidth: number[] = [];
  let ids: number[] | null = null;
  for (let r = 0; r < rounds; r++) {
    bandwidth.push(readBandwidth());
    // Odd rounds run the setups in reverse order, so that whatever favours a place in the round
    // (a setup going first after the bandwidth probe, the other jobs' rhythm) falls on each alike.
    for (const s of r % 2 === 0 ? setups : [...setups].reverse()) {
      let last = NaN;
      const out = await generate(s.decoder, prompt, {
        maxNewTokens: newTokens,
        temperature: 0,
        topP: 1,
        seed: 0,
      }, () => {
        const now = performance.now();
        if (!Number.isNaN(last)) s.steps.push(now - last);
        last = now;
      });
      // Every thread count must decode the same tokens (the threaded kernels are bit-identical).
      if (ids === null) ids = out.ids;
      else if (out.ids.join() !== ids.join()) {
        // Another revision's kernels may round differently; this tree's must agree with itself.
        if (s.kernels !== "this tree") console.error(`note: ${s.kernels} decodes other tokens`);
        else throw new Error(`threads ${s.threads}: other tokens`);
      }
      s.prefill.push(promptTokens / (out.prefillMs / 1000));
      // The first token comes from the prefill's logits; the others from decode steps.
      s.decode.push((out.ids.length - 1) / (out.decodeMs / 1000));
      if (gguf !== null && s.kernels === "this tree") {
        const l = await llamaRound(gguf, s.threads, newTokens, prompt);
        if (llamaIds === null) llamaIds = l.ids;
        else if (l.ids.join() !== llamaIds.join()) console.error("note: llama.cpp tokens differ");
        s.llamaPrefill.push(l.prefill);
        s.llamaDecode.push(l.decode);
      }
    }
  }
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(
    /model name\s*:\s*(.*)/,
  )?.[1] ?? "unknown CPU";
  const bw = Math.max(...bandwidth);
  const bytes = weightBytesPerToken(c);
  console.log(`CPU: ${cpu}; ${navigator.hardwareConcurrency} cores reported`);
  console.log(`load average: ${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")}`);
  console.log(
    `model: random Qwen2.5-0.5B shape, ${c.numLayers} layers, int4 g64; prompt ${promptTokens} ` +
      `tokens, ${newTokens} greedy tokens; best of ${rounds} interleaved rounds`,
  );
  console.log(
    `one-thread wasm read bandwidth (best of the rounds): ${bw.toFixed(1)} GB/s; int4 weights ` +
      `read per decode step: ${(bytes / 1e6).toFixed(0)} MB\n`,
  );
  const best = (v: number[]) => (v.length ? Math.max(...v) : NaN);
  console.log(
    "| kernels | threads | slimtune prefill tok/s | llama.cpp prefill tok/s | slimtune decode tok/s | " +
      "llama.cpp Q4_0 decode tok/s | decode ratio | slimtune weight GB/s per thread | " +
      "% of read bandwidth |",
  );
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const s of setups) {
    const dec = best(s.decode);
    const perThread = (dec * bytes) / 1e9 / s.threads;
    const ld = best(s.llamaDecode);
    // llama.cpp runs beside this tree's kernels only: "-" on baseline rows.
    const fmt = (v: number, d: number, unit = "") =>
      Number.isNaN(v) ? "-" : `${v.toFixed(d)}${unit}`;
    console.log(
      `| ${s.kernels} | ${s.threads} | ${best(s.prefill).toFixed(1)} | ${
        fmt(best(s.llamaPrefill), 1)
      } | ${dec.toFixed(1)} | ${fmt(ld, 1)} | ${fmt(dec / ld, 2, "x")} | ${
        perThread.toFixed(2)
      } | ${((100 * perThread) / bw).toFixed(0)} |`,
    );
  }
  for (const s of setups) {
    if (s.kernels === "this tree") continue;
    const mine = setups.find((m) => m.kernels === "this tree" && m.threads === s.threads)!;
    console.log(
      `\n${s.threads} thread(s): this tree / ${s.kernels}: decode ${
        (best(mine.decode) / best(s.decode)).toFixed(3)
      }x, prefill ${(best(mine.prefill) / best(s.prefill)).toFixed(3)}x; median decode step ${
        (median(s.steps) / median(mine.steps)).toFixed(3)
      }x, fastest tenth of the steps ${
        (quantile(s.steps, 0.1) / quantile(mine.steps, 0.1)).toFixed(3)
      }x (${mine.steps.length} steps each)`,
    );
  }
  if (llamaIds !== null && ids !== null) {
    const same = ids.findIndex((t, i) => t !== llamaIds![i]);
    console.log(
      `\nllama.cpp (Q4_0 re-quantization of the same weights) agrees with slimtune's greedy tokens ` +
        `for the first ${same < 0 ? ids.length : same} of ${ids.length}`,
    );
  }
  if (gguf !== null) await Deno.remove(gguf);
  for (const s of setups) {
    s.decoder.dispose();
    s.loaded[Symbol.dispose]();
  }
}
