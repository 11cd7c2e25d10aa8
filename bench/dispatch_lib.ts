/**
 * The measurements of bench/dispatch.ts, runtime-neutral (Deno, or a browser Worker through
 * bench/dispatch_worker.ts): what one dispatch to a kernel worker costs, and from which work size
 * splitting a GEMM over 2 threads pays.
 *
 * - `ping`: round trips of an empty job (WorkerPool.ping: post, the worker wakes, stores done,
 *   the caller wakes), back to back (the worker still spinning) and after the caller kept busy
 *   or slept for a gap (the worker has gone to sleep in Atomics.wait once its spin ran out).
 * - `demo`: steps/s of the browser demo's training (examples/browser/train_worker.ts: random
 *   Qwen2-shaped model, hidden 128, 4 layers, int4 base, mesp, LoRA rank 8 on all 7 projections,
 *   seq 64) on 1 and 2 kernel threads, without the page's UI.
 * - `gemm`: matmulABt and int4MatmulXWt at the browser demo's shapes and up, on 1 thread and
 *   forced split over 2 (`minParallelWork: 0`), medians per call, back to back and with a busy
 *   gap before each call (as in training, where other kernels run between two big calls).
 *
 * @module
 */
import { kernelModuleBytes, loadKernels, supportsRelaxedSimd } from "../src/kernels/wasm.ts";
import { createTrainingSession, memoryFiles, openModel } from "../mod.ts";
import {
  byteRows,
  randomCheckpointFiles,
  randomModelShape,
} from "../examples/shared/random_checkpoint.ts";
import { presetModelConfig } from "../src/io/presets.ts";
import type { Kernels } from "../src/kernels/abi.ts";
import { fillRandom } from "./random_fill.ts";
import { type ParallelSettings, WORKER_OPS } from "../src/kernels/parallel.ts";
import { WorkerPool } from "../src/runtime/worker_pool.ts";
import type { Arena } from "../src/runtime/arena.ts";

/** Median, 10th and 90th percentile (µs). */
export interface Stats {
  median: number;
  p10: number;
  p90: number;
}

export interface PingRow {
  /** "back-to-back", "busy N µs" or "sleep N ms" before each ping. */
  mode: string;
  us: Stats;
}

export interface GemmRow {
  kernel: string;
  M: number;
  N: number;
  K: number;
  /** Multiply-adds. */
  work: number;
  /** "back-to-back" or "busy N µs". */
  mode: string;
  oneUs: number;
  twoUs: number;
  /** oneUs / twoUs. */
  speedup: number;
}

export interface DispatchReport {
  runtime: string;
  /** `loads` fresh 2-thread loads: what each measured and chose. */
  settings: ParallelSettings[];
  demo: DemoRow[];
  variant: string;
  cores: number;
  /** What the loader chose for 2 threads (LoadedKernels.parallel), if it says. */
  chosen: unknown;
  ping: PingRow[];
  gemm: GemmRow[];
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { median: at(0.5), p10: at(0.1), p90: at(0.9) };
}

/** Keeps this thread busy for `us` microseconds (as other kernels would between two calls). */
function busy(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) { /* spin */ }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** Puts this thread to sleep for `ms` (Atomics.wait: Deno and browser workers only). */
function sleep(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

async function pingRows(reps: number): Promise<PingRow[]> {
  const variant = supportsRelaxedSimd() ? "relaxed" : "simd";
  const module = new WebAssembly.Module(
    kernelModuleBytes(`${variant}-threads`) as BufferSource,
  );
  const memory = new WebAssembly.Memory({ initial: 80, maximum: 256, shared: true });
  const pool = await WorkerPool.create({
    module,
    memory,
    scratch: [65536],
    scratchBytes: 4 << 20,
    ops: WORKER_OPS,
  });
  try {
    const rows: PingRow[] = [];
    const measure = (mode: string, n: number, before: () => void) => {
      for (let i = 0; i < 20; i++) pool.ping(0); // warm (JIT, worker awake)
      const t: number[] = [];
      for (let i = 0; i < n; i++) {
        before();
        const t0 = performance.now();
        pool.ping(0);
        t.push((performance.now() - t0) * 1000);
      }
      rows.push({ mode, us: stats(t) });
    };
    measure("back-to-back", reps, () => {});
    for (const us of [20, 100, 500, 2000]) measure(`busy ${us} µs`, reps >> 2, () => busy(us));
    measure("sleep 5 ms", reps >> 4, () => sleep(5));
    return rows;
  } finally {
    pool.close();
  }
}

/** Median µs of `f` over `n` calls (after warm-up), with `gapUs` of busy time before each. */
function timeCall(f: () => void, n: number, gapUs: number): number {
  for (let i = 0; i < 5; i++) f();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    if (gapUs > 0) busy(gapUs);
    const t0 = performance.now();
    f();
    t.push((performance.now() - t0) * 1000);
  }
  return stats(t).median;
}

async function gemmRows(calls: number): Promise<{ rows: GemmRow[]; chosen: unknown }> {
  const one = await loadKernels({ threads: 1 });
  const auto = await loadKernels({ threads: 2 });
  const two = await loadKernels({ threads: 2, minParallelWork: 0, minParallelRows: 6 });
  const chosen = auto.parallel;
  auto.close();
  try {
    if (two.threads !== 2) throw new Error(`2 threads unavailable here (got ${two.threads})`);
    const rows: GemmRow[] = [];
    // [M, N, K]: the demo's projections (64 tokens, hidden 128, MLP 384), then larger.
    const shapes = [
      [64, 64, 128],
      [64, 128, 128],
      [64, 384, 128],
      [64, 128, 384],
      [64, 512, 256],
      [128, 512, 512],
      [256, 1024, 512],
      [256, 896, 896],
    ];
    for (const [M, N, K] of shapes) {
      for (const kernel of ["matmulABt", "int4MatmulXWt"] as const) {
        const prep = (L: { kernels: Kernels; arena: Arena }) => {
          const a = fillRandom(L.arena, M * K, 1);
          const b = fillRandom(L.arena, N * K, 2);
          const out = L.arena.allocF32(M * N);
          if (kernel === "matmulABt") {
            return () => L.kernels.matmulABt(out, a, b, M, N, K, 1, 0);
          }
          const gs = 64;
          const q = L.arena.alloc((N * K) / 2);
          const sc = L.arena.allocF32((N * K) / gs);
          const bi = L.arena.allocF32((N * K) / gs);
          L.kernels.int4Quantize(q, sc, bi, b, N, K, gs);
          return () => L.kernels.int4MatmulXWt(out, a, q, sc, bi, M, N, K, gs, 1, 0);
        };
        const m1 = one.arena.mark(), m2 = two.arena.mark();
        const f1 = prep(one), f2 = prep(two);
        for (const gap of [0, 100]) {
          const n = Math.max(20, Math.min(calls, Math.round(2e8 / (M * N * K))));
          const oneUs = timeCall(f1, n, gap);
          const twoUs = timeCall(f2, n, gap);
          rows.push({
            kernel,
            M,
            N,
            K,
            work: M * N * K,
            mode: gap ? `busy ${gap} µs` : "back-to-back",
            oneUs,
            twoUs,
            speedup: oneUs / twoUs,
          });
        }
        one.arena.release(m1);
        two.arena.release(m2);
      }
    }
    return { rows, chosen };
  } finally {
    one.close();
    two.close();
  }
}

/** What to run: `parts` of "settings", "ping", "gemm", "demo" (default all). */
export interface DispatchOptions {
  runtime: string;
  parts?: string[];
  pings?: number;
  calls?: number;
  demoRuns?: number;
  demoSteps?: number;
  minParallelWork?: number;
  /** Fresh loads for "settings" (default 10). */
  loads?: number;
}

/** Runs the measurements (tens of seconds). */
export async function runDispatchBench(o: DispatchOptions): Promise<DispatchReport> {
  const parts = new Set(o.parts ?? ["settings", "ping", "gemm", "demo"]);
  const settings: ParallelSettings[] = [];
  for (let i = 0; parts.has("settings") && i < (o.loads ?? 10); i++) {
    using L = await loadKernels({ threads: 2 });
    if (L.parallel) settings.push(L.parallel);
  }
  const ping = parts.has("ping") ? await pingRows(o.pings ?? 2000) : [];
  const { rows, chosen } = parts.has("gemm")
    ? await gemmRows(o.calls ?? 400)
    : { rows: [], chosen: null };
  const demo = parts.has("demo")
    ? await demoRows({
      runs: o.demoRuns ?? 3,
      steps: o.demoSteps ?? 60,
      minParallelWork: o.minParallelWork,
    })
    : [];
  return {
    runtime: o.runtime,
    variant: supportsRelaxedSimd() ? "relaxed" : "simd",
    cores: navigator.hardwareConcurrency ?? 1,
    chosen,
    settings,
    ping,
    gemm: rows,
    demo,
  };
}

/** The report as markdown tables. */
export function formatReport(r: DispatchReport): string {
  const f = (x: number) => x.toFixed(1);
  const out = [
    `### ${r.runtime} (${r.variant}, ${r.cores} cores)`,
    "",
    `chosen for 2 threads: ${JSON.stringify(r.chosen)}`,
    "",
    ...(r.settings.length
      ? [
        "| fresh load | round trip µs (spinning) | wake µs (asleep) | GEMM MACs/µs | minWork |",
        "|---|---:|---:|---:|---:|",
        ...r.settings.map((p, i) =>
          `| ${i + 1} | ${f(p.roundTripUs)} | ${f(p.wakeUs)} | ${p.macsPerUs.toFixed(0)} | ` +
          `${(p.minWork / 1e6).toFixed(2)}M |`
        ),
        "",
      ]
      : []),
    "| ping mode | median µs | p10 | p90 |",
    "|---|---:|---:|---:|",
    ...r.ping.map((p) => `| ${p.mode} | ${f(p.us.median)} | ${f(p.us.p10)} | ${f(p.us.p90)} |`),
    "",
    "| kernel | M×N×K | MACs | mode | 1 thread µs | 2 threads µs | speed-up |",
    "|---|---|---:|---|---:|---:|---:|",
    ...r.gemm.map((g) =>
      `| ${g.kernel} | ${g.M}×${g.N}×${g.K} | ${(g.work / 1e6).toFixed(2)}M | ${g.mode} | ` +
      `${f(g.oneUs)} | ${f(g.twoUs)} | ${g.speedup.toFixed(2)} |`
    ),
  ];
  if (r.demo.length) {
    const med = (t: number) => {
      const xs = r.demo.filter((d) => d.asked === t).map((d) => d.stepsPerS).sort((a, b) => a - b);
      return xs[xs.length >> 1];
    };
    const asked = [...new Set(r.demo.map((d) => d.asked))];
    const settings = r.demo.filter((d) => d.parallel).map((d) => d.parallel as ParallelSettings);
    const f0 = (x: number) => x.toFixed(0);
    if (settings.length) {
      out.push(
        "",
        "demo runs' split thresholds: minWork (round trip µs spinning / asleep, GEMM MACs/µs): " +
          settings.map((p) =>
            `${(p.minWork / 1e6).toFixed(2)}M (${p.roundTripUs.toFixed(1)} / ${f0(p.wakeUs)} µs, ${
              f0(p.macsPerUs)
            })`
          ).join(", "),
      );
    }
    out.push(
      "",
      "| demo training, threads | steps/s (runs) | median |",
      "|---|---|---:|",
      ...asked.map((t) =>
        `| ${t} | ${
          r.demo.filter((d) => d.asked === t).map((d) => d.stepsPerS.toFixed(1)).join(", ")
        } | ${med(t).toFixed(1)} |`
      ),
    );
  }
  return out.join("\n");
}

const DEMO_TEXT = "slimtune fine-tunes LoRA adapters of language models in a browser tab, with " +
  "the base weights kept 4-bit and the memory planned in advance.";

/** Steps/s of the demo's training (after one warm-up step) on `threads` kernel threads. */
export async function demoStepsPerS(
  o: { threads: number; steps: number; seqLen?: number; minParallelWork?: number },
): Promise<{ stepsPerS: number; threads: number; parallel: unknown }> {
  const seqLen = o.seqLen ?? 64;
  using loaded = await loadKernels({ threads: o.threads, minParallelWork: o.minParallelWork });
  const { kernels, arena } = loaded;
  const source = memoryFiles(
    "demo",
    randomCheckpointFiles(
      randomModelShape(presetModelConfig("slimtune-demo", { vocabSize: 512 })),
      2025,
    ),
  );
  const store = await openModel({ source, quant: "int4", kernels, arena });
  try {
    const session = await createTrainingSession({
      store,
      kernels,
      arena,
      method: "mesp",
      seed: 1,
      maxGradNorm: 1,
      lora: { rank: 8, alpha: 16, targets: ["q", "k", "v", "o", "gate", "up", "down"] },
      optimizer: { kind: "adamw", lr: 3e-3, weightDecay: 0 },
    });
    // Full-length rows only: every step the same shapes.
    const rows = byteRows(DEMO_TEXT.repeat(8), seqLen).filter((r) => r.inputIds.length === seqLen);
    const batch = (i: number) => {
      const r = rows[i % rows.length];
      return { inputIds: r.inputIds, labels: r.labels, batchSize: 1, seqLen };
    };
    await session.step([batch(0)], 3e-3);
    const t = performance.now();
    for (let i = 1; i <= o.steps; i++) await session.step([batch(i)], 3e-3);
    const stepsPerS = o.steps / ((performance.now() - t) / 1000);
    const parallel = loaded.parallel;
    return { stepsPerS, threads: loaded.threads, parallel };
  } finally {
    await store.close();
  }
}

/** One demo run per thread count, `runs` times (interleaved: 1, 2, 1, 2, ...). */
export async function demoRows(
  o: { runs: number; steps: number; threads?: number[]; minParallelWork?: number },
): Promise<DemoRow[]> {
  const rows: DemoRow[] = [];
  for (let r = 0; r < o.runs; r++) {
    for (const threads of o.threads ?? [1, 2]) {
      const x = await demoStepsPerS({
        threads,
        steps: o.steps,
        minParallelWork: o.minParallelWork,
      });
      rows.push({ asked: threads, ...x });
    }
  }
  return rows;
}

export interface DemoRow {
  asked: number;
  threads: number;
  stepsPerS: number;
  parallel: unknown;
}
