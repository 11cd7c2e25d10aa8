/**
 * The kernel loader without any module bytes of its own: {@link loadKernelsFrom} and
 * {@link loadKernelsSyncFrom} take the builds to compile as a function (`wasm.ts` passes the
 * embedded ones; `mod_slim.ts`'s entry passes none, so that a bundle for a runtime that injects a
 * compiled `WebAssembly.Module`, such as Cloudflare Workers, carries no base64 builds). The
 * loader picks the relaxed-SIMD build where the engine validates it and the plain simd128 build
 * otherwise, binds it to one `WebAssembly.Memory`, and sets up the arena every other allocation
 * comes from.
 *
 * @example
 * ```ts
 * import { loadKernelsSyncFrom } from "./load.ts";
 * const { variant } = loadKernelsSyncFrom(null, { variant: "reference" });
 * console.log(variant); // "reference"
 * ```
 *
 * Threads: `threads: N` runs the threads build over a shared memory with N - 1 kernel workers and
 * returns kernels that split the big calls across them and the calling thread
 * (src/kernels/parallel.ts; results bit-identical to one thread). Call `close()` when done: live
 * workers keep a Deno process running. Where workers cannot run (no Worker or SharedArrayBuffer:
 * edge runtimes, pages that are not cross-origin isolated; a browser's main thread, which may not
 * block in Atomics.wait: train inside a worker there) it silently runs on one thread, and
 * `threads` in the result says how many it got (`threadsUnavailableReason` says why).
 */
import type { Kernels } from "./abi.ts";
import { KERNEL_NAMES } from "./abi.ts";
import { Arena } from "../runtime/arena.ts";
import { createReferenceKernels } from "./reference/mod.ts";
import { checkInt4Shape } from "./reference/int4.ts";
import {
  createParallelKernels,
  measureGemmRate,
  measureThreadSpeedups,
  type ParallelSettings,
  parallelSettings,
  type RawExports,
  SPEEDUP_PROBE_BYTES,
  SplitThreshold,
  threadsThatPay,
  WORKER_OPS,
} from "./parallel.ts";
import { threadsAvailable, WorkerPool } from "../runtime/worker_pool.ts";

/** Which build runs: `relaxed` (FMA, relaxed-simd), `simd` (plain simd128) or the TS `reference`. */
export type KernelVariant = "relaxed" | "simd" | "reference";

export interface LoadKernelsOptions {
  /** `auto` (default) prefers relaxed, then simd. */
  variant?: KernelVariant | "auto";
  /**
   * An already compiled kernel module (edge runtimes). Its variant is read from the module's
   * `slimtune.variant` section unless `variant` names it.
   */
  module?: WebAssembly.Module;
  /** Use this memory instead of a new one (e.g. a shared memory for workers). */
  memory?: WebAssembly.Memory;
  /**
   * Threads to compute with, the calling one included (default 1). Above 1 needs the async
   * {@link loadKernelsFrom}, a shared `memory` if one is given, and a threads-build `module` if one is
   * injected; otherwise (or where workers are unavailable) it runs on one thread.
   */
  threads?: number;
  /**
   * Multiply-adds below which a call stays on the calling thread (threads > 1; tests use 0).
   * Default: derived at load from the measured dispatch round trip and GEMM rate
   * ({@link LoadedKernels.parallel}).
   */
  minParallelWork?: number;
  /** Fewest rows per part of a split GEMM (threads > 1; default 24; tests use 1). */
  minParallelRows?: number;
  /**
   * The caller runs a part itself when its worker has not started it by the time the caller's own
   * part is done (threads > 1; default true; tests use false so that every part runs on a worker).
   */
  parallelReclaim?: boolean;
  /** Largest size the shared memory of a threaded load may grow to (default 4 GiB). */
  maximumMemoryBytes?: number;
  /**
   * Treat `threads` as an upper bound: start them, measure how much faster a GEMM runs on 1, 2,
   * …, `threads` of them, and keep the fewest within 10% of the best speed-up (the rest are
   * stopped and their scratch freed). For a default thread count taken from
   * `navigator.hardwareConcurrency`, which may count more cores than run at once.
   */
  fitThreads?: boolean;
}

export interface LoadedKernels {
  kernels: Kernels;
  arena: Arena;
  memory: WebAssembly.Memory;
  variant: KernelVariant;
  /** Threads the kernels compute with (1 unless `threads` > 1 was asked and could be had). */
  threads: number;
  /**
   * How calls are split over the threads (the work threshold chosen, and the round trip and
   * GEMM rate measured at load it came from); null with one thread.
   */
  parallel: ParallelSettings | null;
  /**
   * With `fitThreads`: the measured speed-up of a GEMM on 1, 2, … of the threads started (entry
   * t-1 for t threads), from which `threads` was chosen; null otherwise.
   */
  threadSpeedups: number[] | null;
  /** Terminates the kernel workers (idempotent; a no-op with one thread). */
  close(): void;
  /** `close`, for `using loaded = await loadKernels({ threads })`. */
  [Symbol.dispose](): void;
}

function loaded(
  kernels: Kernels,
  arena: Arena,
  memory: WebAssembly.Memory,
  variant: KernelVariant,
  threads: number,
  close: () => void,
  parallel: ParallelSettings | null = null,
  threadSpeedups: number[] | null = null,
): LoadedKernels {
  return {
    kernels,
    arena,
    memory,
    variant,
    threads,
    parallel,
    threadSpeedups,
    close,
    [Symbol.dispose]: close,
  };
}

/** A wasm build: a variant, optionally its threads (shared-memory) form. */
export type KernelBuild = "relaxed" | "simd" | "relaxed-threads" | "simd-threads";

/** The bytes of a build, or null where the caller has none (only injected modules load). */
export type KernelBuildBytes = ((build: KernelBuild) => Uint8Array) | null;

/** One function `() -> v128` that uses f32x4.relaxed_madd: valid only with relaxed SIMD. */
const RELAXED_PROBE = new Uint8Array([
  0,
  97,
  115,
  109,
  1,
  0,
  0,
  0,
  1,
  5,
  1,
  96,
  0,
  1,
  123,
  3,
  2,
  1,
  0,
  10,
  61,
  1,
  59,
  0,
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  253,
  12,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  253,
  133,
  2,
  11,
]);

/** True where this engine accepts the relaxed-SIMD build. */
export function supportsRelaxedSimd(): boolean {
  return WebAssembly.validate(RELAXED_PROBE);
}

/**
 * The build a compiled module is, from the `slimtune.variant` custom section scripts/build_wasm.ts
 * writes; a module without it (built elsewhere) is assumed to be plain simd128.
 */
export function moduleVariant(module: WebAssembly.Module): "relaxed" | "simd" {
  const sections = WebAssembly.Module.customSections(module, "slimtune.variant");
  if (sections.length === 0) return "simd";
  const name = new TextDecoder().decode(sections[0]);
  return name === "relaxed" ? "relaxed" : "simd";
}

/** True for a threads build (it imports a shared memory): its `slimtune.threads` section. */
export function isThreadsModule(module: WebAssembly.Module): boolean {
  return WebAssembly.Module.customSections(module, "slimtune.threads").length > 0;
}

/**
 * The int4 kernels trust their groupSize (a bad one would silently mis-read nibbles or trap with a
 * bare "divide by zero"), so the binding checks it and throws a RangeError naming the kernel.
 */
function withInt4ShapeChecks(k: Kernels): Kernels {
  return {
    ...k,
    int4Quantize(q, scales, biases, w, N, K, groupSize) {
      checkInt4Shape("int4Quantize", K, groupSize);
      k.int4Quantize(q, scales, biases, w, N, K, groupSize);
    },
    int4Dequantize(out, q, scales, biases, N, K, groupSize) {
      checkInt4Shape("int4Dequantize", K, groupSize);
      k.int4Dequantize(out, q, scales, biases, N, K, groupSize);
    },
    int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulXWt", K, groupSize);
      k.int4MatmulXWt(out, x, q, scales, biases, M, N, K, groupSize, alpha, acc);
    },
    int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, alpha, acc) {
      checkInt4Shape("int4MatmulGW", K, groupSize);
      k.int4MatmulGW(out, g, q, scales, biases, M, N, K, groupSize, alpha, acc);
    },
    int4GatherRows(out, ids, q, scales, biases, T, K, groupSize) {
      checkInt4Shape("int4GatherRows", K, groupSize);
      k.int4GatherRows(out, ids, q, scales, biases, T, K, groupSize);
    },
  };
}

const moduleCache = new WeakMap<
  (build: KernelBuild) => Uint8Array,
  Map<string, WebAssembly.Module>
>();

function compiled(builds: KernelBuildBytes, variant: KernelBuild): WebAssembly.Module {
  if (!builds) {
    throw new Error(
      "no kernel builds are embedded in this entry point (mod_slim.ts): pass the compiled " +
        "module as `module` (kernels.relaxed.wasm or kernels.simd.wasm from wasm/), or import " +
        "mod.ts",
    );
  }
  let cache = moduleCache.get(builds);
  if (!cache) moduleCache.set(builds, cache = new Map());
  let m = cache.get(variant);
  if (!m) {
    m = new WebAssembly.Module(builds(variant) as BufferSource);
    cache.set(variant, m);
  }
  return m;
}

/**
 * Instantiates the kernels (`options.module`, else the build `builds` gives) over a (new or
 * given) memory and sets up the arena and scratch.
 */
export async function loadKernelsFrom(
  builds: KernelBuildBytes,
  options: LoadKernelsOptions = {},
): Promise<LoadedKernels> {
  const threads = checkThreads(options.threads);
  if (threads > 1) {
    const threaded = await loadThreaded(builds, options, threads);
    if (threaded) return threaded;
  }
  return loadKernelsSyncFrom(builds, { ...options, threads: 1 });
}

function checkThreads(threads: number | undefined): number {
  const n = threads ?? 1;
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`threads must be >= 1, got ${n}`);
  return n;
}

function isShared(memory: WebAssembly.Memory): boolean {
  return typeof SharedArrayBuffer === "function" && memory.buffer instanceof SharedArrayBuffer;
}

/** A shared memory of at most `maxBytes` (halved while the engine refuses to reserve it). */
function createSharedMemory(maxBytes: number): WebAssembly.Memory | null {
  for (let pages = Math.min(65536, Math.floor(maxBytes / 65536)); pages >= 256; pages >>= 1) {
    try {
      return new WebAssembly.Memory({ initial: 1, maximum: pages, shared: true });
    } catch {
      // try a smaller reservation
    }
  }
  return null;
}

/** The threaded load, or null where it cannot run here (the caller then loads one thread). */
async function loadThreaded(
  builds: KernelBuildBytes,
  options: LoadKernelsOptions,
  threads: number,
): Promise<LoadedKernels | null> {
  const wanted = options.variant ?? "auto";
  if (wanted === "reference" || !threadsAvailable()) return null;
  let module = options.module;
  let variant: "relaxed" | "simd";
  if (module) {
    if (!isThreadsModule(module)) return null;
    variant = wanted === "auto" ? moduleVariant(module) : wanted;
  } else {
    variant = wanted === "auto" ? (supportsRelaxedSimd() ? "relaxed" : "simd") : wanted;
    if (!builds) return null; // no threads build to compile: one thread
    module = compiled(builds, `${variant}-threads`);
  }
  let memory = options.memory;
  if (memory && !isShared(memory)) return null;
  memory ??= createSharedMemory(options.maximumMemoryBytes ?? 2 ** 32) ?? undefined;
  if (!memory) return null;
  const raw = instantiate(module, memory, variant);
  const base = withInt4ShapeChecks(bindKernels(raw));
  const arena = new Arena(memory, base.heapBase());
  const bytes = base.scratchBytes();
  base.init(arena.alloc(bytes), bytes);
  const mark = arena.mark();
  const scratch: number[] = [];
  for (let i = 1; i < threads; i++) scratch.push(arena.alloc(bytes));
  let pool: WorkerPool;
  try {
    pool = await WorkerPool.create({
      module,
      memory,
      scratch,
      scratchBytes: bytes,
      ops: WORKER_OPS,
    });
  } catch {
    // Workers refused (e.g. a CSP without blob:): this instance alone, same results.
    arena.release(mark);
    return loaded(base, arena, memory, variant, 1, () => {});
  }
  let speedups: number[] | null = null;
  if (options.fitThreads) {
    // The probe's operands go where the arena will allocate next: committed, not counted.
    const at = arena.mark();
    arena.reserve(at + SPEEDUP_PROBE_BYTES);
    speedups = measureThreadSpeedups(base, pool, memory, at);
    const keep = threadsThatPay(speedups);
    if (keep < pool.size + 1) {
      pool.shrink(keep - 1);
      // The stopped workers' scratch was used only by the probe: the high-water a run reports
      // starts after the scratch it keeps (the pages stay committed, and are reported so).
      arena.release(keep === 1 ? mark : scratch[keep - 1]);
      arena.highWater = arena.mark();
      scratch.length = keep - 1;
    }
    if (keep === 1) {
      pool.close();
      return loaded(base, arena, memory, variant, 1, () => {}, null, speedups);
    }
  }
  const macsPerUs = options.minParallelWork === undefined
    ? measureGemmRate(base, memory, scratch[0], bytes)
    : NaN;
  const derive = (roundTripUs: number) =>
    parallelSettings({
      threads: pool.size + 1,
      roundTripUs,
      wakeUs: pool.wakeUs,
      macsPerUs,
      minWork: options.minParallelWork,
      minPartRows: options.minParallelRows,
    });
  const settings = derive(pool.roundTripUs);
  let remeasure: (() => number) | undefined;
  if (settings.source === "measured") {
    // The threshold is the median of several measurements, at start and again during training
    // (a coarse page clock or a preemption makes any one of them swing).
    const smoothed = new SplitThreshold();
    smoothed.add(settings.minWork);
    const sample = () => derive(pool.measureRoundTrip({ gapUs: 0, reps: 15, batch: 8 }).p25);
    for (let i = 0; i < 2; i++) smoothed.add(sample().minWork);
    settings.minWork = smoothed.value;
    settings.minWorkSamples = smoothed.samples;
    remeasure = () => {
      const s = sample();
      settings.minWork = smoothed.add(s.minWork);
      settings.roundTripUs = s.roundTripUs;
      settings.remeasured++;
      return settings.minWork;
    };
  }
  const kernels = createParallelKernels(base, raw, pool, {
    ...settings,
    remeasure,
    reclaim: options.parallelReclaim,
  });
  const close = () => pool.close();
  return loaded(kernels, arena, memory, variant, pool.size + 1, close, settings, speedups);
}

function instantiate(
  module: WebAssembly.Module,
  memory: WebAssembly.Memory,
  variant: KernelVariant,
): RawExports {
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  const exports = instance.exports as Record<string, unknown>;
  for (const name of KERNEL_NAMES) {
    if (typeof exports[name] !== "function") {
      throw new Error(`kernel module (${variant}) lacks export "${name}": rebuild wasm/`);
    }
  }
  return exports as RawExports;
}

function bindKernels(raw: RawExports): Kernels {
  const bound: Record<string, unknown> = {};
  for (const name of KERNEL_NAMES) bound[name] = raw[name];
  return bound as unknown as Kernels;
}

/**
 * A memory `module` can import: a threads build imports a shared memory (with a maximum), so on
 * one thread it still needs one, which exists only where `SharedArrayBuffer` does.
 */
function memoryFor(module: WebAssembly.Module | undefined): WebAssembly.Memory {
  if (!module || !isThreadsModule(module)) return new WebAssembly.Memory({ initial: 1 });
  const shared = typeof SharedArrayBuffer === "function" ? createSharedMemory(2 ** 32) : null;
  if (!shared) {
    throw new Error(
      "the injected kernel module is a threads build, which needs SharedArrayBuffer, and this " +
        "context has none (a page that is not cross-origin isolated, or an engine without it): " +
        "inject kernels.simd.wasm or kernels.relaxed.wasm instead",
    );
  }
  return shared;
}

/** Synchronous form of {@link loadKernelsFrom}: one thread only (`threads` > 1 throws). */
export function loadKernelsSyncFrom(
  builds: KernelBuildBytes,
  options: LoadKernelsOptions = {},
): LoadedKernels {
  if (checkThreads(options.threads) > 1) {
    throw new RangeError("threads > 1 needs the async loadKernels (workers start asynchronously)");
  }
  const memory = options.memory ?? memoryFor(options.module);
  let variant: KernelVariant;
  let kernels: Kernels;
  const wanted = options.variant ?? "auto";
  if (wanted === "reference") {
    variant = "reference";
    kernels = createReferenceKernels(memory);
  } else {
    let module = options.module;
    if (module) {
      variant = wanted === "auto" ? moduleVariant(module) : wanted;
    } else {
      variant = wanted === "auto" ? (supportsRelaxedSimd() ? "relaxed" : "simd") : wanted;
      module = compiled(builds, variant);
    }
    kernels = withInt4ShapeChecks(bindKernels(instantiate(module, memory, variant)));
  }
  const arena = new Arena(memory, kernels.heapBase());
  const bytes = kernels.scratchBytes();
  if (bytes > 0) kernels.init(arena.alloc(bytes), bytes);
  return loaded(kernels, arena, memory, variant, 1, () => {});
}
