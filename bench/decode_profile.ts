/**
 * Where one decode step's time goes: the random Qwen2.5-0.5B-shaped int4 model of
 * bench/decode.ts, a prompt (prefill, not counted) then one token per step on one thread, every
 * kernel call timed (`performance.now()` around each, so the total is a little above an
 * unprofiled run). Prints the share of each kernel in the decode steps, the int4 GEMV calls split
 * into the block linears and the LM head.
 *
 *   deno run -A bench/decode_profile.ts [--layers 24] [--prompt-tokens 31] [--new-tokens 64]
 */
import { parseArgs } from "node:util";
import type { Kernels } from "../src/kernels/abi.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { createRandomWeightStore } from "../src/model/random_weights.ts";
import type { ModelConfig } from "../src/model/config.ts";
import type { HeadChunk, WeightStore } from "../src/model/weights.ts";
import { Decoder } from "../src/generate/decoder.ts";
import { generate } from "../src/generate/loop.ts";
import { Rng } from "../src/runtime/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    layers: { type: "string", default: "24" },
    "prompt-tokens": { type: "string", default: "31" },
    "new-tokens": { type: "string", default: "64" },
  },
});
const promptTokens = Number(values["prompt-tokens"]);
const newTokens = Number(values["new-tokens"]);
const c: ModelConfig = {
  architecture: "qwen2",
  hiddenSize: 896,
  intermediateSize: 4864,
  numLayers: Number(values.layers),
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

const rows = new Map<string, { calls: number; ms: number }>();
let recording = false;
/** Which part of the model the decoder is in: set by the store wrapper below. */
let phase: "block linears" | "LM head" = "block linears";
function wrap(k: Kernels): Kernels {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(k) as [string, (...a: number[]) => number][]) {
    if (typeof f !== "function") continue;
    out[name] = (...args: number[]) => {
      if (!recording) return f(...args);
      const t0 = performance.now();
      const r = f(...args);
      const ms = performance.now() - t0;
      const label = name.startsWith("int4MatmulXWt") ? `${name} [${phase}]` : name;
      const row = rows.get(label) ?? { calls: 0, ms: 0 };
      row.calls++;
      row.ms += ms;
      rows.set(label, row);
      return r;
    };
  }
  return out as unknown as Kernels;
}

const loaded = loadKernelsSync();
const kernels = wrap(loaded.kernels);
const { arena } = loaded;
const inner = createRandomWeightStore({ config: c, kernels, arena, seed: 1, quant: "int4" });
const store: WeightStore = {
  config: inner.config,
  quant: inner.quant,
  finalNorm: inner.finalNorm,
  acquireBlock(i) {
    phase = "block linears";
    return inner.acquireBlock(i);
  },
  releaseBlock: (i) => inner.releaseBlock(i),
  embed: (out, ids, T) => inner.embed(out, ids, T),
  async *headChunks(rowsPerChunk: number): AsyncIterable<HeadChunk> {
    phase = "LM head";
    yield* inner.headChunks(rowsPerChunk);
  },
  jsBytesHeld: () => inner.jsBytesHeld(),
  close: () => inner.close(),
};
const decoder = Decoder.create({ store, kernels, arena, maxLen: promptTokens + newTokens });
const rng = new Rng(7);
const prompt = Array.from({ length: promptTokens }, () => rng.nextU32() % c.vocabSize);
// A warm-up run, then the measured one: its prefill is excluded by recording only after it.
await generate(decoder, prompt, { maxNewTokens: 4, temperature: 0, topP: 1, seed: 0 });
decoder.reset();
await decoder.append(prompt);
recording = true;
const t0 = performance.now();
let next = 0;
for (let i = 0; i < newTokens - 1; i++) await decoder.append([next++ % c.vocabSize]);
const total = performance.now() - t0;
recording = false;
const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => "")).match(
  /model name\s*:\s*(.*)/,
)?.[1] ?? "unknown CPU";
const steps = newTokens - 1;
console.log(
  `CPU: ${cpu}; ${new Date().toISOString().slice(0, 10)}; load average ${
    Deno.loadavg().map((v) => v.toFixed(2)).join(" ")
  }; one thread, kernels ${loaded.variant}`,
);
console.log(
  `${c.numLayers} layers, prompt ${promptTokens}, ${steps} decode steps: ${
    (total / steps).toFixed(1)
  } ms per step (${(1000 * steps / total).toFixed(1)} tok/s, profiled)\n`,
);
console.log("| kernel | calls per step | ms per step | share |");
console.log("|---|---:|---:|---:|");
let kernelMs = 0;
for (const [name, r] of [...rows].sort((a, b) => b[1].ms - a[1].ms)) {
  kernelMs += r.ms;
  console.log(
    `| ${name} | ${(r.calls / steps).toFixed(0)} | ${(r.ms / steps).toFixed(3)} | ${
      (100 * r.ms / total).toFixed(1)
    } % |`,
  );
}
console.log(
  `| (outside kernels: JS, cache copies, sampling) | | ${
    ((total - kernelMs) / steps).toFixed(3)
  } | ${(100 * (total - kernelMs) / total).toFixed(1)} % |`,
);
decoder.dispose();
loaded[Symbol.dispose]();
