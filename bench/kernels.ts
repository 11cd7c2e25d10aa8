/**
 * Kernel throughput table: every row of `ROWS` timed on each wasm build.
 *
 *   deno run -A bench/kernels.ts            markdown table (kernel, shape, variant, GFLOP/s, ms)
 *   deno run -A bench/kernels.ts --json     one {"kernel","shape","gflops","limitGflops",
 *                                           "percentOfLimit","variant","ms"} a line
 *   deno run -A bench/kernels.ts --filter int4 --variant relaxed
 *   deno run -A bench/kernels.ts --filter "LM head"   the decoding GEMV streaming 85 MB of weights
 *   deno run -A bench/kernels.ts --variant relaxed --baseline /tmp/old.relaxed.wasm
 *                                           also times that module (a build of the same variant,
 *                                           e.g. `git show HEAD~1:wasm/kernels.relaxed.wasm`)
 *                                           right after each row of the current one: a before/after
 *                                           ratio from one run on a busy machine
 *
 * Each row is timed single-threaded: a few warm-up calls (so V8 tiers the module up), then calls
 * until MIN_SECONDS have passed; the best call is reported (the least disturbed by other load on
 * the machine). Right before each row the 128-bit limit of the same variant is measured in this
 * process (bench/simd_peak.ts: a register-only f32x4 multiply-add loop) and the row's GFLOP/s is
 * also given as a share of it, so the table reads the same on a machine shared with other work. To add a kernel family, append rows: `setup` allocates from the arena and returns
 * the call to time; `flops` is the useful floating-point work of one call (0 when not meaningful).
 */
import { Arena } from "../src/runtime/arena.ts";
import type { Kernels } from "../src/kernels/abi.ts";
import type { BenchBuild, BenchRow } from "./types.ts";
import { kernelModuleBytes } from "../src/kernels/wasm.ts";
import { OPS_ROWS } from "./ops_rows.ts";
import { fillRandom } from "./random_fill.ts";
import { type PeakLoop, peakLoop } from "./simd_peak.ts";

/** An f32 matmul row: out[M,N] = a · b in the given orientation. */
function matmulRow(
  kernel: "matmulABt" | "matmulAB" | "matmulAtB",
  M: number,
  N: number,
  K: number,
  label = "",
): BenchRow {
  return {
    kernel,
    shape: `M=${M} N=${N} K=${K}${label}`,
    flops: 2 * M * N * K,
    needs: [kernel],
    setup({ kernels, arena }) {
      const a = fillRandom(arena, M * K, 1);
      const b = fillRandom(arena, K * N, 2);
      const out = arena.allocF32(M * N);
      return () => kernels[kernel](out, a, b, M, N, K, 1, 0);
    },
  };
}

/** An int4 weight W [N,K] quantized from random values. */
function int4Weight(build: BenchBuild, N: number, K: number, groupSize: number) {
  const { kernels, arena } = build;
  const mark = arena.mark();
  const w = fillRandom(arena, N * K, 3);
  const q = arena.alloc(N * K / 2);
  const scales = arena.allocF32(N * K / groupSize);
  const biases = arena.allocF32(N * K / groupSize);
  kernels.int4Quantize(q, scales, biases, w, N, K, groupSize);
  // Move the packed weight down over the f32 one so the arena does not keep 4x the bytes.
  const size = N * K / 2 + 2 * 4 * (N * K / groupSize);
  const packed = arena.u8(q, size).slice();
  arena.release(mark);
  const p = arena.alloc(size);
  arena.u8(p, size).set(packed);
  return { q: p, scales: p + N * K / 2, biases: p + N * K / 2 + 4 * (N * K / groupSize) };
}

function int4XWtRow(M: number, N: number, K: number, groupSize = 64, label = ""): BenchRow {
  return {
    kernel: "int4MatmulXWt",
    shape: `M=${M} N=${N} K=${K} g${groupSize}${label}`,
    flops: 2 * M * N * K,
    needs: ["int4MatmulXWt", "int4Quantize"],
    setup(build) {
      const { q, scales, biases } = int4Weight(build, N, K, groupSize);
      const x = fillRandom(build.arena, M * K, 4);
      const out = build.arena.allocF32(M * N);
      return () => build.kernels.int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, 1, 0);
    },
  };
}

function int4GWRow(M: number, N: number, K: number, groupSize = 64): BenchRow {
  return {
    kernel: "int4MatmulGW",
    shape: `M=${M} N=${N} K=${K} g${groupSize}`,
    flops: 2 * M * N * K,
    needs: ["int4MatmulGW", "int4Quantize"],
    setup(build) {
      const { q, scales, biases } = int4Weight(build, N, K, groupSize);
      const g = fillRandom(build.arena, M * N, 5);
      const out = build.arena.allocF32(M * K);
      return () => build.kernels.int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, 1, 0);
    },
  };
}

/**
 * Each fused kernel beside the two calls it replaces, on the step's shapes: the q projection's
 * bias (int4, 256 x 896 x 896) and o's LoRA up GEMM with the residual add (256 x 896 x 8).
 */
function fusedRows(): BenchRow[] {
  const [T, D, r] = [256, 896, 8];
  const bias = (fused: boolean): BenchRow => ({
    kernel: fused ? "int4MatmulXWtBias" : "int4MatmulXWt + addBias",
    shape: `M=${T} N=${D} K=${D} g64 (q with its bias)`,
    flops: 2 * T * D * D,
    needs: ["int4MatmulXWtBias", "int4Quantize"],
    setup(build) {
      const { q, scales, biases } = int4Weight(build, D, D, 64);
      const x = fillRandom(build.arena, T * D, 4);
      const b = fillRandom(build.arena, D, 5);
      const out = build.arena.allocF32(T * D);
      const k = build.kernels;
      return fused ? () => k.int4MatmulXWtBias(out, x, q, scales, biases, b, T, D, D, 64) : () => {
        k.int4MatmulXWt(out, x, q, scales, biases, T, D, D, 64, 1, 0);
        k.addBias(out, b, T, D);
      };
    },
  });
  const residual = (fused: boolean): BenchRow => ({
    kernel: fused ? "matmulABtResidual" : "matmulABt + add",
    shape: `M=${T} N=${D} K=${r} (o: y += h·Bᵀ, x += y)`,
    flops: 2 * T * D * r,
    needs: ["matmulABtResidual"],
    setup({ kernels: k, arena }) {
      const h = fillRandom(arena, T * r, 1);
      const b = fillRandom(arena, D * r, 2);
      const y = fillRandom(arena, T * D, 3);
      const x = fillRandom(arena, T * D, 4);
      return fused ? () => k.matmulABtResidual(y, x, h, b, T, D, r, 2, 1, 1) : () => {
        k.matmulABt(y, h, b, T, D, r, 2, 1);
        k.add(x, x, y, T * D);
      };
    },
  });
  return [bias(true), bias(false), residual(true), residual(false)];
}

/**
 * x·Wᵀ over a W too big for the caches (the tied LM head of Qwen2.5: 151936 x 896, 85 MB packed):
 * random nibbles and group scales / biases written straight into the arena (quantizing an f32
 * source would need 545 MB), so the row measures the GEMV streaming its weights from memory.
 */
function int4StreamRow(
  M: number,
  N: number,
  K: number,
  groupSize: number,
  label: string,
): BenchRow {
  return {
    kernel: "int4MatmulXWt",
    shape: `M=${M} N=${N} K=${K} g${groupSize}${label}`,
    flops: 2 * M * N * K,
    needs: ["int4MatmulXWt"],
    setup(build) {
      const { arena } = build;
      const groups = N * (K / groupSize);
      const q = arena.alloc(N * K / 2);
      const words = arena.u32(q, N * K / 8);
      let s = 12345;
      for (let i = 0; i < words.length; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        words[i] = s;
      }
      const scales = fillRandom(arena, groups, 5);
      const biases = fillRandom(arena, groups, 6);
      const x = fillRandom(arena, M * K, 4);
      const out = arena.allocF32(M * N);
      return () => build.kernels.int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, 1, 0);
    },
  };
}

/** The rows, in print order. Qwen2.5-0.5B shapes: hidden 896, intermediate 4864, seq 256. */
export const ROWS: BenchRow[] = [
  matmulRow("matmulABt", 1024, 1024, 1024),
  matmulRow("matmulAB", 1024, 1024, 1024),
  matmulRow("matmulAtB", 1024, 1024, 1024),
  // The int4 targets and their f32 counterparts on the same shapes.
  int4XWtRow(256, 4864, 896),
  matmulRow("matmulABt", 256, 4864, 896, " (f32 of x·Wᵀ)"),
  int4GWRow(256, 4864, 896),
  matmulRow("matmulAB", 256, 896, 4864, " (f32 of g·W)"),
  // GEMV (generation) and a few-row batch.
  int4XWtRow(1, 4864, 896),
  int4XWtRow(4, 4864, 896),
  int4XWtRow(32, 4864, 896, 64, " (few rows, tiled)"),
  int4XWtRow(1, 896, 4864, 64, " (down)"),
  int4StreamRow(1, 151936, 896, 64, " (LM head, from memory)"),
  // LoRA, rank 8 on a 896-wide linear, 256 tokens.
  matmulRow("matmulABt", 256, 8, 896, " (h = x·Aᵀ)"),
  matmulRow("matmulABt", 256, 896, 8, " (y += h·Bᵀ)"),
  matmulRow("matmulAB", 256, 8, 896, " (dh = g·B)"),
  matmulRow("matmulAB", 256, 896, 8, " (dx += dh·A)"),
  matmulRow("matmulAtB", 8, 896, 256, " (dA = dhᵀ·x)"),
  matmulRow("matmulAtB", 896, 8, 256, " (dB = gᵀ·h)"),
  // Fused epilogues against the product and the separate element-wise kernel (same bits).
  ...fusedRows(),
  {
    kernel: "int4Quantize",
    shape: "N=4864 K=896 g64",
    flops: 0,
    needs: ["int4Quantize"],
    setup({ kernels, arena }) {
      const [N, K] = [4864, 896];
      const w = fillRandom(arena, N * K, 6);
      const q = arena.alloc(N * K / 2);
      const scales = arena.allocF32(N * K / 64);
      const biases = arena.allocF32(N * K / 64);
      return () => kernels.int4Quantize(q, scales, biases, w, N, K, 64);
    },
  },
  {
    kernel: "int4GatherRows",
    shape: "T=256 K=896 g64",
    flops: 0,
    needs: ["int4GatherRows", "int4Quantize"],
    setup(build) {
      const V = 4096;
      const K = 896;
      const { q, scales, biases } = int4Weight(build, V, K, 64);
      const ids = build.arena.allocI32(256);
      build.arena.i32(ids, 256).set(Array.from({ length: 256 }, (_, i) => (i * 2654435761) % V));
      const out = build.arena.allocF32(256 * K);
      return () => build.kernels.int4GatherRows(out, ids, q, scales, biases, 256, K, 64);
    },
  },
  // Norm, RoPE, SwiGLU, attention, embedding, cross-entropy, element-wise, optimizers.
  ...OPS_ROWS,
];

/** Instantiates a build directly, binding whatever kernels it exports. */
export function benchBuild(
  variant: "simd" | "relaxed",
  moduleBytes: Uint8Array = kernelModuleBytes(variant),
  label: string = variant,
): BenchBuild {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const module = new WebAssembly.Module(moduleBytes as BufferSource);
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const kernels = exports as unknown as Kernels;
  const arena = new Arena(memory, kernels.heapBase());
  const bytes = kernels.scratchBytes();
  kernels.init(arena.alloc(bytes), bytes);
  return {
    variant,
    label,
    kernels,
    arena,
    has: (name) => typeof exports[name] === "function",
  };
}

const MIN_SECONDS = 0.4;
const WARMUP_CALLS = 3;

/** Best wall time of one call, in ms. */
export function timeCall(call: () => void): number {
  for (let i = 0; i < WARMUP_CALLS; i++) call();
  let best = Infinity;
  const start = performance.now();
  let calls = 0;
  while (calls < 5 || performance.now() - start < MIN_SECONDS * 1000) {
    const t0 = performance.now();
    call();
    best = Math.min(best, performance.now() - t0);
    calls++;
  }
  return best;
}

if (import.meta.main) {
  // A small parser: node:util's parseArgs needs @types/node to type-check, which is not installed.
  const values: { json: boolean; filter?: string; variant?: string; baseline?: string } = {
    json: false,
  };
  for (let i = 0; i < Deno.args.length; i++) {
    const arg = Deno.args[i];
    if (arg === "--json") values.json = true;
    else if (arg === "--filter") values.filter = Deno.args[++i];
    else if (arg === "--variant") values.variant = Deno.args[++i];
    else if (arg === "--baseline") values.baseline = Deno.args[++i];
    else throw new Error(`bench/kernels.ts: unknown argument ${arg}`);
  }
  const variants = (values.variant ? [values.variant] : ["relaxed", "simd"]) as (
    | "simd"
    | "relaxed"
  )[];
  const builds = variants.map((v) => benchBuild(v));
  if (values.baseline !== undefined) {
    if (variants.length !== 1) {
      console.error("bench/kernels.ts: --baseline needs --variant (the variant of that module)");
      Deno.exit(2);
    }
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(values.baseline);
    } catch (e) {
      console.error(`bench/kernels.ts: --baseline ${values.baseline}: ${(e as Error).message}`);
      Deno.exit(2);
    }
    builds.push(benchBuild(variants[0], bytes, `${variants[0]} (baseline)`));
  }
  const peaks = new Map<string, PeakLoop | null>(variants.map((v) => [v, peakLoop(v)]));
  if (!values.json) {
    // Timings share the machine with everything else running: say how busy it was.
    console.log(`load average at start: ${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")}\n`);
    for (const [v, loop] of peaks) {
      const g = loop ? `${loop.measure(0.5).toFixed(1)} GFLOP/s` : "not supported";
      console.log(`128-bit limit (${v}, register-only f32x4 multiply-add loop): ${g}`);
    }
    console.log("\n| kernel | shape | variant | GFLOP/s | % of limit | limit | ms |");
    console.log("|---|---|---|---:|---:|---:|---:|");
  }
  for (const row of ROWS) {
    if (values.filter && !`${row.kernel} ${row.shape}`.includes(values.filter)) continue;
    for (const build of builds) {
      if (!row.needs.every((n) => build.has(n))) continue;
      const mark = build.arena.mark();
      const call = row.setup(build);
      const limit = row.flops > 0 ? peaks.get(build.variant)?.measure() ?? null : null;
      const ms = timeCall(call);
      build.arena.release(mark);
      const gflops = row.flops > 0 ? row.flops / (ms * 1e6) : null;
      const share = gflops !== null && limit ? (100 * gflops) / limit : null;
      if (values.json) {
        console.log(JSON.stringify({
          kernel: row.kernel,
          shape: row.shape,
          gflops: gflops === null ? null : Number(gflops.toFixed(2)),
          limitGflops: limit === null ? null : Number(limit.toFixed(2)),
          percentOfLimit: share === null ? null : Number(share.toFixed(1)),
          variant: build.label,
          ms: Number(ms.toFixed(4)),
        }));
      } else {
        const g = gflops === null ? "" : gflops.toFixed(1);
        const pc = share === null ? "" : share.toFixed(0);
        const l = limit === null ? "" : limit.toFixed(1);
        console.log(
          `| ${row.kernel} | ${row.shape} | ${build.label} | ${g} | ${pc} | ${l} | ${
            ms.toFixed(3)
          } |`,
        );
      }
    }
  }
  if (!values.json) {
    console.log(`\nload average at end: ${Deno.loadavg().map((v) => v.toFixed(2)).join(" ")}`);
  }
}
