/**
 * Multi-threaded kernels: 1 vs N threads on the big kernels and on a whole training step.
 *
 *   npx deno run -A bench/threads.ts                      # 1 vs 2 threads, markdown table
 *   npx deno run -A bench/threads.ts --threads 1,2,4 --steps 3 --vocab 151936 --json
 *
 * Rows: f32 GEMM 1024³ (matmulABt), int4 x·Wᵀ at M = 256, K = 896, N = 4864 (the 0.5B MLP up /
 * gate projection over a 256-token sequence), and a whole training step (mesp, int4 base, LoRA
 * rank 8 on all 7 projections, AdamW, seq 256, batch 1) of a Qwen2.5-0.5B-shaped model cut to
 * `--layers` blocks (hidden 896, 14/2 heads, intermediate 4864, vocab `--vocab`; random weights).
 * Kernel rows report the best call after a warm-up (least disturbed by other load); step rows the
 * median of `--steps` steps after one warm-up step. Speed-ups are relative to 1 thread. Other
 * processes share the cores: /proc/loadavg is printed before and after.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { fillRandom } from "./random_fill.ts";
import { type LoadedKernels, loadKernels } from "../src/kernels/wasm.ts";
import { createRandomWeightStore } from "../src/model/random_weights.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { presetModelConfig } from "../src/io/presets.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { createTrainingSession } from "../src/methods/session.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    threads: { type: "string", default: "1,2" },
    steps: { type: "string", default: "3" },
    layers: { type: "string", default: "4" },
    seq: { type: "string", default: "256" },
    vocab: { type: "string", default: "151936" },
    seconds: { type: "string", default: "1.5" },
    skip: { type: "string", default: "" },
    json: { type: "boolean", default: false },
  },
});
const threadCounts = values.threads.split(",").map(Number);
const steps = Number(values.steps);
const seqLen = Number(values.seq);
const minSeconds = Number(values.seconds);
const skip = new Set(values.skip.split(",").filter((s) => s));

function loadavg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").trim().split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

/** Best milliseconds of `f` over calls for at least `minSeconds` (after 2 warm-up calls). */
function bestMs(f: () => void): number {
  f();
  f();
  let best = Infinity;
  const until = performance.now() + minSeconds * 1000;
  for (let i = 0; i < 3 || performance.now() < until; i++) {
    const t = performance.now();
    f();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

interface Row {
  bench: string;
  shape: string;
  threads: number;
  ms: number;
  gflops: number | null;
}

function gemmRow(L: LoadedKernels): Row {
  const n = 1024;
  const mark = L.arena.mark();
  const a = fillRandom(L.arena, n * n, 1);
  const b = fillRandom(L.arena, n * n, 2);
  const out = L.arena.allocF32(n * n);
  const ms = bestMs(() => L.kernels.matmulABt(out, a, b, n, n, n, 1, 0));
  L.arena.release(mark);
  return {
    bench: "matmulABt",
    shape: "1024³",
    threads: L.threads,
    ms,
    gflops: 2 * n ** 3 / ms / 1e6,
  };
}

function int4Row(L: LoadedKernels): Row {
  const [M, K, N, gs] = [256, 896, 4864, 64];
  const k = L.kernels;
  const mark = L.arena.mark();
  const w = fillRandom(L.arena, N * K, 3);
  const q = L.arena.alloc(N * K / 2);
  const scales = L.arena.allocF32(N * K / gs);
  const biases = L.arena.allocF32(N * K / gs);
  k.int4Quantize(q, scales, biases, w, N, K, gs);
  const x = fillRandom(L.arena, M * K, 4);
  const out = L.arena.allocF32(M * N);
  const ms = bestMs(() => k.int4MatmulXWt(out, x, q, scales, biases, M, N, K, gs, 1, 0));
  L.arena.release(mark);
  return {
    bench: "int4MatmulXWt",
    shape: `M=${M} K=${K} N=${N}`,
    threads: L.threads,
    ms,
    gflops: 2 * M * N * K / ms / 1e6,
  };
}

function stepConfig(): ModelConfig {
  return presetModelConfig("qwen2.5-0.5b", {
    numLayers: Number(values.layers),
    vocabSize: Number(values.vocab),
  });
}

async function stepRow(L: LoadedKernels): Promise<Row> {
  const config = stepConfig();
  const { kernels, arena } = L;
  const store = createRandomWeightStore({ config, kernels, arena, seed: 1, quant: "int4" });
  const session = await createTrainingSession({
    store,
    kernels,
    arena,
    method: "mesp",
    seed: 2,
    maxGradNorm: 0,
    lora: { rank: 8, alpha: 16, targets: [...LINEAR_NAMES] },
    optimizer: { kind: "adamw", lr: 1e-4, weightDecay: 0 },
  });
  let s = 7;
  const ids = Int32Array.from({ length: seqLen }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % config.vocabSize;
  });
  const batch = { inputIds: ids, labels: ids, batchSize: 1, seqLen };
  await session.step([batch], 1e-4); // warm-up
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await session.step([batch], 1e-4);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return {
    bench: "training step (mesp)",
    shape: `hidden 896, ${config.numLayers} layers, vocab ${config.vocabSize}, seq ${seqLen}`,
    threads: L.threads,
    ms: times[Math.floor(times.length / 2)],
    gflops: null,
  };
}

const before = loadavg();
const rows: Row[] = [];
for (const threads of threadCounts) {
  using L = await loadKernels({ threads });
  if (L.threads !== threads) console.error(`asked for ${threads} threads, got ${L.threads}`);
  if (!skip.has("gemm")) rows.push(gemmRow(L));
  if (!skip.has("int4")) rows.push(int4Row(L));
  if (!skip.has("step")) rows.push(await stepRow(L));
  const split = L.parallel
    ? `; calls split from ${(L.parallel.minWork / 1e6).toFixed(2)}M multiply-adds (round trip ` +
      `${L.parallel.roundTripUs.toFixed(1)} µs, wake ${L.parallel.wakeUs.toFixed(0)} µs)`
    : "";
  if (!values.json) console.error(`threads ${L.threads} done (load ${loadavg()})${split}`);
}
const after = loadavg();

if (values.json) {
  for (const r of rows) console.log(JSON.stringify({ ...r, loadBefore: before, loadAfter: after }));
} else {
  const base = new Map<string, number>();
  for (const r of rows) if (r.threads === 1) base.set(r.bench, r.ms);
  console.log(
    `cores: ${navigator.hardwareConcurrency}, loadavg before ${before}, after ${after}\n`,
  );
  console.log("| benchmark | shape | threads | ms | GFLOP/s | speed-up |");
  console.log("|---|---|---|---|---|---|");
  for (const r of rows) {
    const b = base.get(r.bench);
    const speedup = b ? `${(b / r.ms).toFixed(2)}x` : "";
    const gf = r.gflops === null ? "" : r.gflops.toFixed(1);
    console.log(
      `| ${r.bench} | ${r.shape} | ${r.threads} | ${r.ms.toFixed(1)} | ${gf} | ${speedup} |`,
    );
  }
}
