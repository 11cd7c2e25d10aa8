/**
 * One method's training steps on a real-shaped checkpoint: memory (arena high-water, JS bytes
 * held, working set, VmHWM, the plan) and time per step, with a per-phase / per-kernel breakdown.
 *
 *   npx deno run -A tools/make_checkpoint.ts --preset qwen2.5-0.5b --out /tmp/q05 --dtype bf16
 *   npx deno run -A bench/step_profile.ts --model /tmp/q05 --method mesp --weights streamed \
 *     [--steps 2] [--seq 256] [--rank 8] [--head-chunk 1024] [--mlp-rows 32] [--no-profile]
 *
 * Run ONE method per process: VmHWM is the whole process's peak. `--no-profile` leaves the
 * kernels unwrapped (the profile's per-call `performance.now()` costs a little).
 *
 * Phases: `embed`, `fwd` (forward of blocks before the head; for mezo every forward), `head`
 * (final norm + LM head + CE, forward and backward), `bwd` (block backward incl. recompute),
 * `optim` (optimizer kernels), `io` (time inside the store's block / head-chunk reads).
 * Kernel rows: `int4MatmulXWt`/`int4MatmulGW` are the base weights (decompressed inside the
 * GEMM); `matmul*[lora]` are GEMMs with a dimension equal to the LoRA rank.
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { openModelDir } from "../src/deno/model_source.ts";
import type { Kernels } from "../src/kernels/abi.ts";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import { planMemory } from "../src/methods/memory_plan.ts";
import type { BlockWeights, HeadChunk, WeightStore } from "../src/model/weights.ts";
import { LINEAR_NAMES } from "../src/model/weights.ts";
import { LoraTrainingSession, type MethodName } from "../src/methods/session.ts";
import { processPeakBytes } from "../src/deno/process_memory.ts";
import { Rng } from "../src/runtime/rng.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "/tmp/q05" },
    method: { type: "string", default: "mesp" },
    weights: { type: "string", default: "streamed" },
    steps: { type: "string", default: "2" },
    seq: { type: "string", default: "256" },
    batch: { type: "string", default: "1" },
    rank: { type: "string", default: "8" },
    "head-chunk": { type: "string" },
    "mlp-rows": { type: "string" },
    "no-profile": { type: "boolean", default: false },
    json: { type: "string" },
  },
});
const method = values.method as MethodName;
const steps = Number(values.steps);
const seqLen = Number(values.seq);
const batchSize = Number(values.batch);
const rank = Number(values.rank);
const headChunkRows = values["head-chunk"] ? Number(values["head-chunk"]) : undefined;
const mlpChunkRows = values["mlp-rows"] ? Number(values["mlp-rows"]) : undefined;
const profile = !values["no-profile"];

// ---- profiling wrappers ---------------------------------------------------------------------
let phase = "open";
interface Row {
  calls: number;
  ms: number;
}
const rows = new Map<string, Row>();
const add = (key: string, ms: number) => {
  const r = rows.get(key) ?? { calls: 0, ms: 0 };
  r.calls++;
  r.ms += ms;
  rows.set(key, r);
};

function wrapKernels(k: Kernels, loraRank: number): Kernels {
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(k) as [string, (...a: number[]) => number][]) {
    if (typeof f !== "function") continue;
    const isMatmul = name === "matmulABt" || name === "matmulAB" || name === "matmulAtB";
    out[name] = (...args: number[]) => {
      const t0 = performance.now();
      const r = f(...args);
      const ms = performance.now() - t0;
      let label = name;
      if (isMatmul && (args[3] === loraRank || args[4] === loraRank || args[5] === loraRank)) {
        label += "[lora]";
      }
      const ph = name === "sgdStep" || name === "adamwStep" ? "optim" : phase;
      add(`${ph}\t${label}`, ms);
      return r;
    };
  }
  return out as unknown as Kernels;
}

/** Delegates to `s`, setting the phase and timing the reads. */
function wrapStore(s: WeightStore): WeightStore {
  let headSeen = false;
  return {
    get config() {
      return s.config;
    },
    get quant() {
      return s.quant;
    },
    get finalNorm() {
      return s.finalNorm;
    },
    async acquireBlock(i: number): Promise<BlockWeights> {
      phase = method === "mezo" || !headSeen ? "fwd" : "bwd";
      const t0 = performance.now();
      const bw = await s.acquireBlock(i);
      add(`io\tacquireBlock`, performance.now() - t0);
      return bw;
    },
    releaseBlock: (i: number) => s.releaseBlock(i),
    async embed(out, ids, T) {
      phase = "embed";
      headSeen = false;
      await s.embed(out, ids, T);
    },
    async *headChunks(r: number): AsyncIterable<HeadChunk> {
      const prev = phase;
      headSeen = true;
      const it = s.headChunks(r)[Symbol.asyncIterator]();
      for (;;) {
        const t0 = performance.now();
        const n = await it.next();
        add(`io\theadChunk`, performance.now() - t0);
        if (n.done) break;
        phase = "head";
        yield n.value;
      }
      phase = prev;
    },
    jsBytesHeld: () => s.jsBytesHeld(),
    close: () => s.close(),
  };
}

// ---- set-up ----------------------------------------------------------------------------------
const loaded = loadKernelsSync();
const { arena, variant } = loaded;
const kernels = profile ? wrapKernels(loaded.kernels, rank) : loaded.kernels;
const tOpen = performance.now();
const rawStore = await openModelDir({
  source: values.model,
  quant: "int4",
  weights: values.weights as "resident" | "streamed",
  kernels,
  arena,
  headChunkRows,
});
const store = profile ? wrapStore(rawStore) : rawStore;
const openS = (performance.now() - tOpen) / 1e3;
const afterOpenHigh = arena.highWater;
const storeUsed = arena.used;
const c = store.config;
const lora = { rank, alpha: 2 * rank, targets: [...LINEAR_NAMES] };
const session = new LoraTrainingSession({
  store,
  kernels,
  arena,
  method,
  lora,
  optimizer: { kind: "sgd", lr: 1e-4, weightDecay: 0 },
  maxGradNorm: 0,
  seed: 1,
  headChunkRows,
  mlpChunkRows,
});
const rng = new Rng(7);
const ids = Int32Array.from({ length: batchSize * seqLen }, () => rng.nextU32() % c.vocabSize);
const batch = { inputIds: ids, labels: ids, batchSize, seqLen };

console.log(
  `${values.model}: ${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}; ` +
    `${values.weights} int4, kernels ${variant}${
      profile ? " (profiled)" : ""
    }; method ${method}, ` +
    `seq ${seqLen} x ${batchSize}, rank ${rank}, head chunk ${session.model.headChunkRows}, ` +
    `mlp rows ${session.model.mlpChunkRows}; opened in ${openS.toFixed(1)} s`,
);
rows.clear();
const times: number[] = [];
const cpuTimes: number[] = [];
let grew = false;
for (let s = 0; s < steps; s++) {
  if (s === steps - 1) rows.clear();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const r = await session.step([batch], 1e-4);
  const dt = (performance.now() - t0) / 1e3;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  times.push(dt);
  cpuTimes.push(cpu);
  if (s > 0) grew ||= session.memory().grewLastStep;
  console.log(
    `step ${s + 1}: ${dt.toFixed(2)} s (CPU ${cpu.toFixed(2)} s), loss ${
      r.loss.toFixed(4)
    }, grad norm ${r.gradNorm?.toExponential(3) ?? "-"}`,
  );
}
const mem = session.memory();
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const plan = planMemory({
  config: c,
  method,
  seqLen,
  batchSize,
  lora,
  optimizer: "sgd",
  headChunkRows: session.model.headChunkRows,
  mlpChunkRows: session.model.mlpChunkRows,
  gradAccum: 1,
  maxGradNorm: 0,
});
const sessionHigh = arena.highWater - storeUsed;
const peak = processPeakBytes();
console.log(
  `memory: arena high-water ${mib(arena.highWater)} (store + kernels ${mib(storeUsed)}, ` +
    `open peak ${mib(afterOpenHigh)}; session ${mib(sessionHigh)} vs plan ${mib(plan.total)}: ` +
    `lora ${mib(plan.lora)} grads ${mib(plan.grads)} optimizer ${mib(plan.optimizer)} ` +
    `step ${mib(plan.step)}), committed ${mib(arena.committed)}, JS held ${mib(mem.jsBytes)}, ` +
    `working set ${mib(arena.highWater + mem.jsBytes)}, VmHWM ${
      peak === null ? "n/a" : mib(peak)
    }, ` +
    `grew after step 1: ${grew}, plan >= real: ${plan.total >= sessionHigh}`,
);
const last = times[times.length - 1];
console.log(`seconds per step (last): ${last.toFixed(2)}`);
if (profile) {
  const total = last * 1e3;
  const byPhase = new Map<string, number>();
  const byKernel = new Map<string, Row>();
  let kernelMs = 0;
  for (const [key, r] of rows) {
    const [ph, name] = key.split("\t");
    byPhase.set(ph, (byPhase.get(ph) ?? 0) + r.ms);
    if (ph !== "io") {
      kernelMs += r.ms;
      const k = byKernel.get(name) ?? { calls: 0, ms: 0 };
      k.calls += r.calls;
      k.ms += r.ms;
      byKernel.set(name, k);
    }
  }
  const pct = (ms: number) => `${(100 * ms / total).toFixed(1).padStart(5)}%`;
  console.log(`last step ${total.toFixed(0)} ms; by phase (kernels + io):`);
  for (const [ph, ms] of [...byPhase].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${ph.padEnd(8)} ${(ms / 1e3).toFixed(2).padStart(7)} s ${pct(ms)}`);
  }
  const io = byPhase.get("io") ?? 0;
  const other = total - kernelMs - io;
  console.log(
    `  ${"js/other".padEnd(8)} ${(other / 1e3).toFixed(2).padStart(7)} s ${pct(other)}`,
  );
  console.log("by kernel:");
  for (const [name, r] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(
      `  ${name.padEnd(20)} ${String(r.calls).padStart(6)} calls ${
        (r.ms / 1e3).toFixed(2).padStart(7)
      } s ${pct(r.ms)}`,
    );
  }
  console.log("by phase and kernel (top 25):");
  for (const [key, r] of [...rows].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) {
    const [ph, name] = key.split("\t");
    console.log(
      `  ${ph.padEnd(6)} ${name.padEnd(20)} ${String(r.calls).padStart(6)} calls ${
        (r.ms / 1e3).toFixed(2).padStart(7)
      } s ${pct(r.ms)}`,
    );
  }
}
if (values.json) {
  await Deno.writeTextFile(
    values.json,
    JSON.stringify({
      method,
      weights: values.weights,
      seconds: times,
      cpuSeconds: cpuTimes,
      arenaHighWater: arena.highWater,
      jsBytes: mem.jsBytes,
      workingSet: arena.highWater + mem.jsBytes,
      vmHWM: peak,
      plan,
      sessionHigh,
      grew,
    }) + "\n",
  );
}
await store.close();
