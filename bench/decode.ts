/**
 * Decoding speed on a random Qwen2.5-0.5B-shaped int4 model: a 31-token prompt (prefill), then
 * 128 greedy tokens, at each thread count, interleaved in rounds so that other load on the
 * machine falls on every configuration alike. The reference is this process's own limit: the
 * int4 weights a decode step reads (every linear and the tied head, with their group scales and
 * biases) against the memory read bandwidth of one wasm thread measured here between the rounds
 * (bench/read_bandwidth.ts), so the table says how close the GEMVs are to bandwidth-bound.
 *
 *   deno run -A bench/decode.ts [--threads 1,2] [--rounds 3] [--layers 24] [--new-tokens 128]
 *
 * Prints a markdown table (threads, prefill tok/s, decode tok/s, weight GB/s per thread, share of
 * the read bandwidth, speed-up over the first thread count).
 */
import { parseArgs } from "node:util";
import { type LoadedKernels, loadKernels } from "../src/kernels/wasm.ts";
import { createRandomWeightStore } from "../src/model/random_weights.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { Decoder } from "../src/generate/decoder.ts";
import { generate } from "../src/generate/loop.ts";
import { Rng } from "../src/runtime/rng.ts";
import { readBandwidth } from "./read_bandwidth.ts";

function config(layers: number): ModelConfig {
  return {
    architecture: "qwen2",
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: layers,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    vocabSize: 151936,
    ropeTheta: 1e6,
    ropeScaling: null,
    rmsNormEps: 1e-6,
    tieWordEmbeddings: true,
    qkvBias: true,
    maxPositionEmbeddings: 32768,
    bosTokenId: null,
    eosTokenId: null,
  };
}

/** Bytes of int4 weights one decode step reads: nibbles plus an f32 scale and bias per 64. */
function weightBytesPerToken(c: ModelConfig): number {
  const d = c.hiddenSize, I = c.intermediateSize, kv = c.numKvHeads * c.headDim;
  const q = c.numHeads * c.headDim;
  const perLayer = q * d + 2 * kv * d + d * q + 3 * I * d;
  const weights = c.numLayers * perLayer + c.vocabSize * d;
  return weights / 2 + (weights / 64) * 8;
}

interface Setup {
  threads: number;
  loaded: LoadedKernels;
  decoder: Decoder;
  prefill: number[];
  decode: number[];
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
  for (const threads of threadCounts) {
    const loaded = await loadKernels({ threads });
    const { kernels, arena } = loaded;
    const store = createRandomWeightStore({ config: c, kernels, arena, seed: 1, quant: "int4" });
    const decoder = Decoder.create({ store, kernels, arena, maxLen: promptTokens + newTokens });
    setups.push({ threads, loaded, decoder, prefill: [], decode: [] });
  }
  const bandwidth: number[] = [];
  let ids: number[] | null = null;
  for (let r = 0; r < rounds; r++) {
    bandwidth.push(readBandwidth());
    for (const s of setups) {
      const out = await generate(s.decoder, prompt, {
        maxNewTokens: newTokens,
        temperature: 0,
        topP: 1,
        seed: 0,
      });
      // Every thread count must decode the same tokens (the threaded kernels are bit-identical).
      if (ids === null) ids = out.ids;
      else if (out.ids.join() !== ids.join()) throw new Error(`threads ${s.threads}: other tokens`);
      s.prefill.push(promptTokens / (out.prefillMs / 1000));
      // The first token comes from the prefill's logits; the others from decode steps.
      s.decode.push((out.ids.length - 1) / (out.decodeMs / 1000));
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
  console.log(
    "| threads | prefill tok/s | decode tok/s | weight GB/s per thread | % of read bandwidth | " +
      "decode speed-up |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|");
  const base = Math.max(...setups[0].decode);
  for (const s of setups) {
    const dec = Math.max(...s.decode);
    const perThread = (dec * bytes) / 1e9 / s.threads;
    console.log(
      `| ${s.threads} | ${Math.max(...s.prefill).toFixed(1)} | ${dec.toFixed(1)} | ${
        perThread.toFixed(2)
      } | ${((100 * perThread) / bw).toFixed(0)} | ${(dec / base).toFixed(2)}x |`,
    );
  }
  for (const s of setups) {
    s.decoder.dispose();
    s.loaded[Symbol.dispose]();
  }
}
