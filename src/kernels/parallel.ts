/**
 * Multi-threaded kernels: a {@link Kernels} whose big entries split each call across a
 * {@link WorkerPool} (the calling thread takes the first share and then waits for the others),
 * and whose small entries run on the calling thread. `loadKernels({ threads: N })` builds it.
 *
 * Results are bit-identical to one thread: a call is split into sub-calls over disjoint OUTPUT
 * ranges, never over a reduction, and every output element is computed by the same instruction
 * sequence as in the whole call.
 * - f32 GEMMs `matmulABt` / `matmulAB` / `matmulABtBias` / `matmulABtResidual` (its residual
 *   cut with out), int4 `int4MatmulGW`, and
 *   `int4MatmulXWt` / `int4MatmulXWtBias` with M > 8:
 *   rows of out (= rows of a / x / g), by pointer offsets. The GEMM engine walks rows in slivers
 *   of 6 (a tail of 7 / 8 rows runs as 4 + 3 / 4 + 4, and a sliver of 1, 2, 3 or 5 rows goes
 *   through a scratch tile with a different final rounding), so cuts fall on multiples of 6 that
 *   the single-threaded walk also visits (at most M - 3): every non-last part is whole 6-row
 *   slivers, and the last part walks exactly as the whole call did from that row on. int4 parts
 *   keep more than 8 rows so none of them switches to the GEMV path.
 * - `int4MatmulXWt` with rows too few to split (decoding, M = 1; a short prompt's prefill):
 *   columns of out (= rows of W), cut at multiples of 8 so the GEMM path's 8-column panels are
 *   the same (the GEMV path is per column anyway); with M > 1 through the threads build's
 *   `int4MatmulXWtCols`, which writes a column range of the wider output. Each part dequantizes
 *   only its own rows of W. `int4MatmulXWtBias` with such rows runs that split and then addBias
 *   (the same bits as its fused epilogue).
 * - `attentionForward`: query heads; `attentionBackward`: kv heads (dk / dv sum over the query
 *   heads of a kv head in a fixed order, so a kv head's group is never split). A head range is
 *   strided, so these call the `attentionForwardHeads` / `attentionBackwardGroups` entry points of
 *   the threads build (assembly/attention.ts: the whole-call kernels are those over every head).
 * - `ceChunkForward` / `ceChunkBackward`: rows (every row is independent).
 * - `swigluForward` / `swigluBackward`, `gegluTanhForward` / `gegluTanhBackward`: elements, cut at multiples of 16 (the kernels run 4-wide
 *   vectors and a scalar tail: every element keeps its path).
 * `matmulAtB` (weight gradients; LoRA-rank-sized in training) stays on one thread: both of its
 * output axes are strided in its inputs.
 *
 * Calls whose work is below `minWork` multiply-adds run on the calling thread. `loadKernels`
 * derives it ({@link parallelSettings}) from the pool's measured dispatch round trip and the
 * calling thread's measured GEMM rate: a call is split only when the time it saves exceeds
 * {@link SPLIT_MARGIN} round trips, and never below {@link MIN_WORK_FLOOR}. The round trip is the
 * one to spinning workers (< 1 µs in Deno and in Chromium workers alike): within a training step
 * the workers stay awake from one call to the next. A worker that has not started its part when
 * the caller is done with its own (asleep and slow to wake, or its core taken by another thread
 * or process) is not waited for: the caller takes the part back and runs it (WorkerPool.reclaim;
 * the same sub-call, so the same bits), so a split call costs about the one-thread time at worst.
 */
import type { Kernels } from "./abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import { checkInt4Shape } from "./reference/int4.ts";
import type { WorkerPool } from "../runtime/worker_pool.ts";
import { GEMV_MAX_ROWS, MR, NR } from "./tile_shape.ts";

/** Export names workers run, by op index. */
export const WORKER_OPS = [
  "matmulABt",
  "matmulAB",
  "int4MatmulXWt",
  "int4MatmulGW",
  "attentionForwardHeads",
  "attentionBackwardGroups",
  "ceChunkForward",
  "ceChunkBackward",
  "swigluForward",
  "swigluBackward",
  "gegluTanhForward",
  "gegluTanhBackward",
  "int4MatmulXWtCols",
  "matmulABtBias",
  "int4MatmulXWtBias",
  "matmulABtResidual",
] as const;

const OP_ABT = 0;
const OP_AB = 1;
const OP_XWT = 2;
const OP_GW = 3;
const OP_ATTN_FWD = 4;
const OP_ATTN_BWD = 5;
const OP_CE_FWD = 6;
const OP_CE_BWD = 7;
const OP_SWIGLU_FWD = 8;
const OP_SWIGLU_BWD = 9;
const OP_GEGLU_FWD = 10;
const OP_GEGLU_BWD = 11;
const OP_XWT_COLS = 12;
const OP_ABT_BIAS = 13;
const OP_XWT_BIAS = 14;
const OP_ABT_RES = 15;

/**
 * Work threshold in multiply-adds where nothing was measured (a pool created without calibration,
 * or {@link createParallelKernels} called without `minWork`).
 */
export const DEFAULT_MIN_WORK = 1 << 20;
/**
 * A call is split when the time it saves is at least this many dispatch round trips: each split
 * also costs a packing of B per part and a wait for the slower part, and the round trip measured
 * at start is a good moment's.
 */
export const SPLIT_MARGIN = 2;
/**
 * Bounds of a derived threshold. Floor: below it a part is a few µs, and packing B once per part
 * and the dispatch itself take a visible share; a round trip under the timer's resolution (5 µs in
 * a cross-origin isolated page) reads as 0. Cap: a start-up measurement disturbed by other load
 * must not keep big GEMMs (the 0.5B model's projections are 200M+ multiply-adds) on one thread; at
 * that size splitting pays even with slow wakes.
 */
export const MIN_WORK_FLOOR = 1 << 18;
export const MIN_WORK_CAP = 1 << 25;
/**
 * Least GEMM rate (multiply-adds per µs) the threshold assumes: a rate measured before V8 has
 * optimized the kernel (a fresh Chromium worker still runs its baseline code, at a third of the
 * speed) would make the threshold too low. Assuming a faster core only raises the threshold,
 * the safe side. This Xeon: ~21800 (Deno), ~31500 (Chromium).
 */
export const MIN_ASSUMED_RATE = 16000;

/** How a threaded load splits its calls (LoadedKernels.parallel). */
export interface ParallelSettings {
  /** Multiply-adds from which a call is split. */
  minWork: number;
  /** Fewest rows per part of a split GEMM. */
  minPartRows: number;
  /** `option`: minParallelWork was given; `measured`: derived; `default`: nothing measured. */
  source: "option" | "measured" | "default";
  /** Dispatch round trip to spinning workers measured at start, µs (NaN: none). */
  roundTripUs: number;
  /** The same to sleeping workers (what a wake costs; for information), µs (NaN: none). */
  wakeUs: number;
  /** The calling thread's f32 GEMM rate measured at start, multiply-adds per µs (NaN: none). */
  macsPerUs: number;
  /**
   * Times the threshold was re-measured during training (`minWork` and `roundTripUs` are then the
   * smoothed threshold and the latest round trip).
   */
  remeasured: number;
  /** The thresholds measured (the newest {@link THRESHOLD_WINDOW}); `minWork` is their median. */
  minWorkSamples: readonly number[];
}

/**
 * Whether splitting a call of `work` multiply-adds over `threads` pays: the time it saves,
 * `work / rate · (1 - 1/threads)` with rate = max(`macsPerUs`, {@link MIN_ASSUMED_RATE}), is at
 * least `margin` round trips. Monotone in `work`. NaN measurements: falls back to
 * {@link DEFAULT_MIN_WORK}.
 */
export function splitPays(o: {
  work: number;
  threads: number;
  roundTripUs: number;
  macsPerUs: number;
  margin?: number;
}): boolean {
  if (o.threads < 2) return false;
  if (!(o.roundTripUs >= 0 && o.macsPerUs > 0)) return o.work >= DEFAULT_MIN_WORK;
  const savedUs = (o.work / Math.max(o.macsPerUs, MIN_ASSUMED_RATE)) * (1 - 1 / o.threads);
  return savedUs >= (o.margin ?? SPLIT_MARGIN) * o.roundTripUs;
}

/**
 * The threshold a threaded load uses: `minWork` if given (an override, e.g. 0 in tests), else the
 * smallest work {@link splitPays} accepts, clamped to [{@link MIN_WORK_FLOOR},
 * {@link MIN_WORK_CAP}]; {@link DEFAULT_MIN_WORK} where nothing was measured.
 */
export function parallelSettings(o: {
  threads: number;
  roundTripUs: number;
  wakeUs?: number;
  macsPerUs: number;
  minWork?: number;
  minPartRows?: number;
  margin?: number;
}): ParallelSettings {
  const common = {
    minPartRows: o.minPartRows ?? DEFAULT_MIN_PART_ROWS,
    roundTripUs: o.roundTripUs,
    wakeUs: o.wakeUs ?? NaN,
    macsPerUs: o.macsPerUs,
    remeasured: 0,
    minWorkSamples: [] as readonly number[],
  };
  if (o.minWork !== undefined) return { ...common, minWork: o.minWork, source: "option" };
  if (!(o.roundTripUs >= 0 && o.macsPerUs > 0) || o.threads < 2) {
    return { ...common, minWork: DEFAULT_MIN_WORK, source: "default" };
  }
  const rate = Math.max(o.macsPerUs, MIN_ASSUMED_RATE);
  const exact = ((o.margin ?? SPLIT_MARGIN) * o.roundTripUs * rate) / (1 - 1 / o.threads);
  const minWork = Math.min(MIN_WORK_CAP, Math.max(MIN_WORK_FLOOR, Math.ceil(exact)));
  return { ...common, minWork, source: "measured" };
}

/** The median of `xs` (the mean of the middle two for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const h = v.length >> 1;
  return v.length % 2 === 1 ? v[h] : (v[h - 1] + v[h]) / 2;
}

/** Threshold measurements the smoothed value is the median of (the newest kept). */
export const THRESHOLD_WINDOW = 5;
/** Split-eligible calls between two re-measurements during training. */
export const REMEASURE_EVERY_CALLS = 2000;

/**
 * A split threshold smoothed over repeated measurements: the median of the last
 * {@link THRESHOLD_WINDOW} derived thresholds. One measurement swings with a coarse timer (a
 * page's clock is rounded to 20 µs-1 ms, and a round trip of a few µs then reads 0 or a whole
 * tick: Firefox's threshold moved from 0.26M to 3.84M multiply-adds between runs), a single
 * preemption, or a CPU still ramping up; the median of several taken at start and again during
 * training follows the machine, not the moment.
 */
export class SplitThreshold {
  readonly #window: number;
  readonly #samples: number[] = [];

  constructor(window = THRESHOLD_WINDOW) {
    if (!(Number.isInteger(window) && window >= 1)) {
      throw new RangeError(`SplitThreshold window must be >= 1, got ${window}`);
    }
    this.#window = window;
  }

  /** Adds one measured threshold (NaN: ignored) and returns the smoothed value. */
  add(minWork: number): number {
    if (!Number.isNaN(minWork)) {
      this.#samples.push(minWork);
      if (this.#samples.length > this.#window) this.#samples.shift();
    }
    return this.value;
  }

  /** The median of the kept measurements ({@link DEFAULT_MIN_WORK} before the first). */
  get value(): number {
    return this.#samples.length === 0 ? DEFAULT_MIN_WORK : Math.ceil(median(this.#samples));
  }

  /** The kept measurements, oldest first. */
  get samples(): readonly number[] {
    return this.#samples;
  }
}

/**
 * The calling thread's f32 GEMM rate (multiply-adds per µs): the best 96×128×128 matmulABt call
 * (~1.6M multiply-adds) of those that fit in ~3 ms (at most 40: V8 moves the kernel from its
 * baseline to its optimizing compiler after the first 20 or so). Its operands (160 KiB) go in
 * `[at, at + bytes)` of `memory`, a region idle at the time (loadKernels lends a worker's scratch
 * before its first job, so the arena's high-water mark does not move); NaN if it does not fit.
 */
export function measureGemmRate(
  k: Kernels,
  memory: WebAssembly.Memory,
  at: number,
  bytes: number,
): number {
  const [M, N, K] = [96, 128, 128];
  const floats = M * K + N * K + M * N;
  if (floats * F > bytes || at + floats * F > memory.buffer.byteLength) return NaN;
  const a = at, b = a + M * K * F, out = b + N * K * F;
  new Float32Array(memory.buffer, a, M * K).fill(0.5);
  new Float32Array(memory.buffer, b, N * K).fill(0.25);
  let best = Infinity;
  const until = performance.now() + 3;
  for (let r = 0; r < 40 && (r < 5 || performance.now() < until); r++) {
    const t = performance.now();
    k.matmulABt(out, a, b, M, N, K, 1, 0);
    const us = (performance.now() - t) * 1000;
    if (us > 0) best = Math.min(best, us);
  }
  return best < Infinity ? (M * N * K) / best : NaN;
}

/** Bytes {@link measureThreadSpeedups} needs for its operands. */
export const SPEEDUP_PROBE_BYTES = (288 * 256 + 256 * 256 + 288 * 256) * 4;

/**
 * How much faster a 288×256×256 matmulABt (~19M multiply-adds, about a millisecond on one core)
 * runs split by rows over 1, 2, …, `pool.size + 1` threads (the caller and the first workers)
 * than on the caller alone: entry t-1 is the speed-up of t threads (entry 0 is 1). Each count's
 * time is the best of `reps`, the counts taken in turn, after a warm-up. Threads beyond the cores that really run at once
 * (an engine's `hardwareConcurrency` counts what it likes; other processes hold cores) show no
 * gain. The operands go in `[at, at + SPEEDUP_PROBE_BYTES)` of `memory`, a region idle now.
 */
export function measureThreadSpeedups(
  k: Kernels,
  pool: Pick<WorkerPool, "size" | "post" | "wait">,
  memory: WebAssembly.Memory,
  at: number,
  reps = 7,
): number[] {
  const [M, N, K] = [288, 256, 256];
  if (at + SPEEDUP_PROBE_BYTES > memory.buffer.byteLength) return [1];
  const a = at, b = a + M * K * F, out = b + N * K * F;
  new Float32Array(memory.buffer, a, M * K).fill(0.5);
  new Float32Array(memory.buffer, b, N * K).fill(0.25);
  const run = (threads: number) => {
    const cuts = gemmRowCuts(M, threads, MR);
    for (let p = 1; p < cuts.length - 1; p++) {
      const r0 = cuts[p], rows = cuts[p + 1] - r0;
      pool.post(p - 1, OP_ABT, [out + r0 * N * F, a + r0 * K * F, b, rows, N, K, 1, 0]);
    }
    k.matmulABt(out, a, b, cuts[1], N, K, 1, 0);
    for (let p = 1; p < cuts.length - 1; p++) pool.wait(p - 1);
  };
  const n = pool.size + 1;
  // Warm-up on every thread (the engine compiles hot code in tiers: a count timed on code not
  // yet optimized would look slow), then the counts interleaved, so that a change in the
  // machine's load falls on all of them alike; the best time of each.
  for (let r = 0; r < 4; r++) for (let t = 1; t <= n; t++) run(t);
  const best = new Array<number>(n).fill(Infinity);
  for (let r = 0; r < reps; r++) {
    for (let t = 1; t <= n; t++) {
      const t0 = performance.now();
      run(t);
      best[t - 1] = Math.min(best[t - 1], performance.now() - t0);
    }
  }
  return best.map((ms) => best[0] / Math.max(ms, 1e-6));
}

/**
 * The fewest threads whose measured speed-up is within `tolerance` (default 10%) of the best:
 * threads that do not make the kernels faster only cost memory and contend for cores.
 */
export function threadsThatPay(speedups: readonly number[], tolerance = 0.1): number {
  const top = Math.max(...speedups.filter(Number.isFinite), 1);
  for (let i = 0; i < speedups.length; i++) {
    if (speedups[i] >= (1 - tolerance) * top) return i + 1;
  }
  return 1;
}

/** Elementwise cuts fall on 16 floats: whole SIMD vectors (the scalar tail stays last), whole cache lines. */
const ELEMENT_ALIGN = 16;

const F = 4;

/**
 * Row cuts [0, c1, ..., M] for up to `parts` parts of an M-row GEMM: interior cuts are multiples
 * of 6 no larger than M - 3 (rows the single-threaded walk starts a 6-row sliver at), each part
 * has at least `minRows` rows. Fewer parts (down to one: [0, M]) when M is too small.
 */
export function gemmRowCuts(M: number, parts: number, minRows: number): number[] {
  const cuts = [0];
  const maxCut = Math.floor((M - 3) / MR) * MR;
  for (let i = 1; i < parts; i++) {
    const c = Math.min(Math.round((i * M) / parts / MR) * MR, maxCut);
    const last = cuts[cuts.length - 1];
    if (c - last >= minRows && M - c >= minRows) cuts.push(c);
  }
  cuts.push(M);
  return cuts;
}

/** Cuts [0, ..., n] into up to `parts` near-equal ranges whose interior cuts are multiples of `align`. */
export function evenCuts(n: number, parts: number, align: number): number[] {
  const cuts = [0];
  for (let i = 1; i < parts; i++) {
    const c = Math.round((i * n) / parts / align) * align;
    if (c > cuts[cuts.length - 1] && c < n) cuts.push(c);
  }
  cuts.push(n);
  return cuts;
}

/** Raw exports of the calling thread's instance of the threads build. */
// deno-lint-ignore ban-types
export type RawExports = Record<string, Function>;

export interface ParallelKernelsOptions {
  /** Work (multiply-adds) below which a call runs on the calling thread. */
  minWork?: number;
  /** Fewest rows a GEMM part gets (default {@link DEFAULT_MIN_PART_ROWS}). */
  minPartRows?: number;
  /**
   * Re-measures the threshold during training: called every {@link REMEASURE_EVERY_CALLS}
   * split-eligible calls (between calls, when the workers are idle), it returns the new smoothed
   * threshold, which the kernels use from then on. Absent: `minWork` stays.
   */
  remeasure?: () => number;
  /**
   * Take back parts a worker has not started once the caller's own part is done (default true).
   * Tests turn it off so that every part runs on a worker.
   */
  reclaim?: boolean;
}

/**
 * Default fewest rows per GEMM part: every part packs (int4: dequantizes) the whole B / W, about
 * the work of one or two rows, so parts of at least 24 rows keep that under ~10 %. With many
 * threads and few rows (e.g. 64-row MLP chunks on 16 cores) fewer threads take part.
 */
export const DEFAULT_MIN_PART_ROWS = 24;

/**
 * The kernels of `base` (the calling thread's instance, shape-checked) with the big entries split
 * over `pool` plus the calling thread. `raw` holds the same instance's raw exports (incl. the
 * head-range attention entry points).
 */
export function createParallelKernels(
  base: Kernels,
  raw: RawExports,
  pool: WorkerPool,
  options: ParallelKernelsOptions = {},
): Kernels {
  let minWork = options.minWork ?? DEFAULT_MIN_WORK;
  const remeasure = options.remeasure;
  let callsSinceMeasure = 0;
  const minPartRows = options.minPartRows ?? DEFAULT_MIN_PART_ROWS;
  const reclaim = options.reclaim ?? true;
  // deno-lint-ignore ban-types
  const local: Function[] = WORKER_OPS.map((name) => {
    const f = raw[name];
    if (typeof f !== "function") throw new Error(`threads kernel module lacks "${name}"`);
    return f;
  });
  const threads = () => pool.size + 1;

  /**
   * Runs calls[0] here and calls[1..] on workers 0.., then takes back (and runs here) every part
   * whose worker has not started it and waits for the others.
   */
  function run(op: number, calls: number[][]): void {
    const f = local[op];
    for (let i = 1; i < calls.length; i++) pool.post(i - 1, op, calls[i]);
    let error: unknown = undefined;
    try {
      f(...calls[0]);
    } catch (e) {
      error = e;
    }
    for (let i = 1; i < calls.length; i++) {
      try {
        if (reclaim && pool.reclaim(i - 1)) {
          if (error === undefined) f(...calls[i]);
        } else {
          // Always wait: a worker still writing into the memory must finish before the caller
          // goes on.
          pool.wait(i - 1);
        }
      } catch (e) {
        error ??= e;
      }
    }
    if (error !== undefined) throw error;
  }

  /**
   * Runs `op` once per range [cuts[p], cuts[p + 1]) with the arguments `part(lo, hi)`, the first
   * range here and the others on workers; false (nothing run) when the cuts leave one range.
   */
  function runParts(
    op: number,
    cuts: number[],
    part: (lo: number, hi: number) => number[],
  ): boolean {
    if (cuts.length <= 2) return false;
    const calls: number[][] = [];
    for (let p = 0; p + 1 < cuts.length; p++) calls.push(part(cuts[p], cuts[p + 1]));
    run(op, calls);
    return true;
  }

  /** Splits an out-rows GEMM (out rows `ldOut` floats, input rows `ldIn` floats). */
  function rowSplit(
    op: number,
    out: Ptr,
    ldOut: number,
    a: Ptr,
    ldIn: number,
    M: number,
    minRows: number,
    rest: (rows: number) => number[],
    prefix: (out: Ptr, a: Ptr) => number[],
  ): boolean {
    return runParts(
      op,
      gemmRowCuts(M, threads(), Math.max(minRows, minPartRows)),
      (r0, r1) => [...prefix(out + r0 * ldOut * F, a + r0 * ldIn * F), ...rest(r1 - r0)],
    );
  }

  const big = (work: number) => {
    if (pool.size === 0) return false;
    if (remeasure && ++callsSinceMeasure >= REMEASURE_EVERY_CALLS) {
      callsSinceMeasure = 0;
      minWork = remeasure();
    }
    return work >= minWork;
  };

  const kernels: Kernels = {
    ...base,
    matmulABtBias(out, a, b, bias, M, N, K) {
      if (
        !big(M * N * K) ||
        !rowSplit(OP_ABT_BIAS, out, N, a, K, M, MR, (m) => [m, N, K], (o, x) => [o, x, b, bias])
      ) base.matmulABtBias(out, a, b, bias, M, N, K);
    },
    matmulABtResidual(out, res, a, b, M, N, K, alpha, acc, into) {
      if (
        !big(M * N * K) ||
        !rowSplit(
          OP_ABT_RES,
          out,
          N,
          a,
          K,
          M,
          MR,
          (m) => [m, N, K, alpha, acc, into],
          (o, x) => [o, res + (o - out), x, b],
        )
      ) base.matmulABtResidual(out, res, a, b, M, N, K, alpha, acc, into);
    },
    int4MatmulXWtBias(out, x, q, scales, biases, bias, M, N, K, groupSize) {
      checkInt4Shape("int4MatmulXWtBias", K, groupSize);
      if (M <= GEMV_MAX_ROWS) {
        // Too few rows to cut: int4MatmulXWt's column split, then the bias (the same bits).
        kernels.int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, 1, 0);
        base.addBias(out, bias, M, N);
        return;
      }
      if (
        !big(M * N * K) ||
        !rowSplit(
          OP_XWT_BIAS,
          out,
          N,
          x,
          K,
          M,
          GEMV_MAX_ROWS + 1,
          (m) => [m, N, K, groupSize],
          (o, xx) => [o, xx, q, scales, biases, bias],
        )
      ) base.int4MatmulXWtBias(out, x, q, scales, biases, bias, M, N, K, groupSize);
    },
    matmulABt(out, a, b, M, N, K, alpha, acc) {
      if (
        !big(M * N * K) ||
        !rowSplit(OP_ABT, out, N, a, K, M, MR, (m) => [m, N, K, alpha, acc], (o, x) => [o, x, b])
      ) base.matmulABt(out, a, b, M, N, K, alpha, acc);
    },
    matmulAB(out, a, b, M, N, K, alpha, acc) {
      if (
        !big(M * N * K) ||
        !rowSplit(OP_AB, out, N, a, K, M, MR, (m) => [m, N, K, alpha, acc], (o, x) => [o, x, b])
      ) base.matmulAB(out, a, b, M, N, K, alpha, acc);
    },
    int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulXWt", K, groupSize);
      if (big(M * N * K)) {
        if (M > GEMV_MAX_ROWS) {
          if (
            rowSplit(
              OP_XWT,
              out,
              N,
              x,
              K,
              M,
              GEMV_MAX_ROWS + 1,
              (m) => [m, N, K, groupSize, alpha, acc],
              (o, xx) => [o, xx, q, scales, biases],
            )
          ) return;
        }
        // Columns of out (= rows of W), cut at multiples of 8: too few rows to split (a prefill
        // of a short prompt, decoding). One row of out is contiguous; more rows use the strided
        // entry.
        const words = K / 8;
        const groups = K / groupSize;
        const w = (
          j: number,
        ) => [q + j * words * F, scales + j * groups * F, biases + j * groups * F];
        if (
          M === 1
            ? runParts(OP_XWT, evenCuts(N, threads(), NR), (j, j1) => [
              out + j * F,
              x,
              ...w(j),
              1,
              j1 - j,
              K,
              groupSize,
              alpha,
              acc,
            ])
            : runParts(OP_XWT_COLS, evenCuts(N, threads(), NR), (j, j1) => [
              out + j * F,
              x,
              ...w(j),
              M,
              j1 - j,
              K,
              groupSize,
              alpha,
              acc,
              N,
            ])
        ) return;
      }
      base.int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc);
    },
    int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulGW", K, groupSize);
      if (
        !big(M * N * K) ||
        !rowSplit(
          OP_GW,
          out,
          K,
          g,
          N,
          M,
          MR,
          (m) => [m, N, K, groupSize, alpha, acc],
          (o, gg) => [o, gg, q, scales, biases],
        )
      ) base.int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, alpha, acc);
    },
    attentionForward(out, lse, q, k, v, T, Hq, Hkv, hd, scale, window) {
      // ~T²/2 · hd multiply-adds for the scores and as many for the weighted sum, per head.
      if (
        !(big(T * T * hd * Hq) && Hkv > 0 && Hq % Hkv === 0) ||
        !runParts(
          OP_ATTN_FWD,
          evenCuts(Hq, threads(), 1),
          (h0, h1) => [out, lse, q, k, v, T, Hq, Hkv, hd, scale, window, h0, h1],
        )
      ) base.attentionForward(out, lse, q, k, v, T, Hq, Hkv, hd, scale, window);
    },
    attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, T, Hq, Hkv, hd, scale, window) {
      if (
        !(big(2 * T * T * hd * Hq) && Hkv > 0 && Hq % Hkv === 0) ||
        !runParts(
          OP_ATTN_BWD,
          evenCuts(Hkv, threads(), 1),
          (g0, g1) => [dq, dk, dv, dout, q, k, v, out, lse, T, Hq, Hkv, hd, scale, window, g0, g1],
        )
      ) base.attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, T, Hq, Hkv, hd, scale, window);
    },
    ceChunkForward(logits, T, Vc, v0, targets, rowMax, rowSum, targetLogit) {
      // An exp and a few more operations per logit: weigh a logit like 8 multiply-adds.
      if (
        !big(8 * T * Vc) ||
        !runParts(OP_CE_FWD, evenCuts(T, threads(), 1), (t, t1) => [
          logits + t * Vc * F,
          t1 - t,
          Vc,
          v0,
          targets + t * F,
          rowMax + t * F,
          rowSum + t * F,
          targetLogit + t * F,
        ])
      ) base.ceChunkForward(logits, T, Vc, v0, targets, rowMax, rowSum, targetLogit);
    },
    ceChunkBackward(logits, T, Vc, v0, targets, lse, rowScale) {
      if (
        !big(8 * T * Vc) ||
        !runParts(OP_CE_BWD, evenCuts(T, threads(), 1), (t, t1) => [
          logits + t * Vc * F,
          t1 - t,
          Vc,
          v0,
          targets + t * F,
          lse + t * F,
          rowScale,
        ])
      ) base.ceChunkBackward(logits, T, Vc, v0, targets, lse, rowScale);
    },
    swigluForward(out, gate, up, n) {
      // An exp and a divide per element: weigh it like 16 multiply-adds.
      if (
        !big(16 * n) ||
        !runParts(OP_SWIGLU_FWD, evenCuts(n, threads(), ELEMENT_ALIGN), (e, e1) => {
          const o = e * F;
          return [out + o, gate + o, up + o, e1 - e];
        })
      ) base.swigluForward(out, gate, up, n);
    },
    swigluBackward(dgate, dup, dout, gate, up, n) {
      if (
        !big(16 * n) ||
        !runParts(OP_SWIGLU_BWD, evenCuts(n, threads(), ELEMENT_ALIGN), (e, e1) => {
          const o = e * F;
          return [dgate + o, dup + o, dout + o, gate + o, up + o, e1 - e];
        })
      ) base.swigluBackward(dgate, dup, dout, gate, up, n);
    },
    gegluTanhForward(out, gate, up, n) {
      if (
        !big(16 * n) ||
        !runParts(OP_GEGLU_FWD, evenCuts(n, threads(), ELEMENT_ALIGN), (e, e1) => {
          const o = e * F;
          return [out + o, gate + o, up + o, e1 - e];
        })
      ) base.gegluTanhForward(out, gate, up, n);
    },
    gegluTanhBackward(dgate, dup, dout, gate, up, n) {
      if (
        !big(16 * n) ||
        !runParts(OP_GEGLU_BWD, evenCuts(n, threads(), ELEMENT_ALIGN), (e, e1) => {
          const o = e * F;
          return [dgate + o, dup + o, dout + o, gate + o, up + o, e1 - e];
        })
      ) base.gegluTanhBackward(dgate, dup, dout, gate, up, n);
    },
  };
  return kernels;
}
