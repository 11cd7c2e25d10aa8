/**
 * A pool of kernel workers sharing one `WebAssembly.Memory` with the calling thread, driven
 * synchronously through a small shared control block (Atomics.wait / notify, no postMessage per
 * call). The caller posts a job to each worker it needs, does its own share, then waits: the
 * kernel ABI stays synchronous.
 *
 * Where it works: Deno (main thread and workers) and browser *workers* in a cross-origin isolated
 * page. A browser's main thread may not block in Atomics.wait, so in browsers training must run
 * inside a dedicated worker to use threads; {@link threadsAvailable} is false on a browser main
 * thread (and wherever Worker or SharedArrayBuffer is missing: edge runtimes, pages without
 * COOP/COEP), and the loader then runs single-threaded with the same results.
 *
 * Workers must be released with {@link WorkerPool.close}: a live worker keeps Deno's process
 * running. After `close` the pool has no workers and every call runs on the calling thread.
 *
 * A posted job is taken by whichever side claims it first: the worker when it wakes, or the caller
 * ({@link WorkerPool.reclaim}) once it is done with its own share, so a worker slow to wake (or
 * whose core another thread holds) delays nothing: the caller only ever waits for parts already
 * being computed. At start the pool measures its dispatch round trip to spinning and to
 * sleeping workers ({@link WorkerPool.roundTripUs}, {@link WorkerPool.wakeUs}), from which
 * src/kernels/parallel.ts derives the size from which a call is worth splitting.
 *
 * Failures: a kernel that throws or traps on a worker throws on the caller's `wait`; a worker
 * whose loop ends (an error outside a kernel, e.g. an op it does not know) clears its `alive` flag
 * and a waiting caller throws naming the worker and op; a worker that dies before taking its job
 * is harmless (the caller takes the job back). One killed inside a kernel cannot clear its flag:
 * only the optional `waitLimitMs` ends that wait (off by default: a big kernel may run for
 * seconds). Deno's `Worker.terminate()` lets a running wasm call finish, so there even that case
 * completes.
 *
 * @example
 * ```ts
 * import { loadKernels } from "../kernels/wasm.ts";
 * const { kernels, threads, close } = await loadKernels({ threads: 2 });
 * try {
 *   console.log(threads); // 2 where workers are available, else 1
 *   // ... kernels.matmulABt(...) splits large products over both threads
 * } finally {
 *   close();
 * }
 * ```
 */
import { threadsUnavailableReason } from "./thread_support.ts";
import {
  type KernelWorkerInit,
  type KernelWorkerReply,
  kernelWorkerSource,
} from "./kernel_worker.ts";

/** f64 arguments a job carries (the widest kernel, attentionBackwardGroups, takes 17). */
export const MAX_ARGS = 17;
/** Bytes per worker slot: header (32) + args (136) + error text (u16 length + 171 chars). */
const SLOT_BYTES = 512;
const TEXT_OFFSET = 32 + MAX_ARGS * 8;
const TEXT_CHARS = (SLOT_BYTES - TEXT_OFFSET) / 2 - 1;
/** i32 header words of a slot (kernel_worker.ts has the protocol). */
const SEQ = 0;
const DONE = 1;
const OP = 2;
const STATUS = 3;
const CLAIM = 4;
const ALIVE = 5;
const HEADER_WORDS = 8;
/** Op index of the quit job (close). */
const QUIT_OP = -1;
/** Op index of an empty job (the worker runs no kernel): measures the dispatch round trip. */
export const PING_OP = -2;
/** A waiting caller wakes this often (ms) to check that its worker is alive and the time limit. */
const WAIT_SLICE_MS = 100;

/**
 * True where a pool can run here: Worker, Blob URLs, SharedArrayBuffer and a thread that may
 * block in Atomics.wait (not a browser's main thread).
 */
export function threadsAvailable(): boolean {
  return threadsUnavailableReason() === null;
}

export interface WorkerPoolOptions {
  /** The threads build of the kernels (imports a shared memory). */
  module: WebAssembly.Module;
  /** The shared memory every instance uses. */
  memory: WebAssembly.Memory;
  /** One scratch region per worker (byte offsets), `scratchBytes` each. */
  scratch: number[];
  scratchBytes: number;
  /** Export name of each op index. */
  ops: readonly string[];
  /** Polls before a waiting thread sleeps in Atomics.wait (default {@link DEFAULT_SPIN}). */
  spin?: number;
  /** Give up (and close) if the workers are not ready in this many ms (default 30000). */
  startTimeoutMs?: number;
  /**
   * Measure the dispatch round trips at start ({@link WorkerPool.roundTripUs},
   * {@link WorkerPool.wakeUs}; default true, a few ms). False: both are NaN.
   */
  calibrate?: boolean;
  /**
   * A blocking {@link WorkerPool.wait} throws after this many ms (default: never). For tests: a
   * worker terminated in the middle of a job cannot say so, so only a time limit ends that wait.
   */
  waitLimitMs?: number;
}

/**
 * Default polls before sleeping. On a 2-core Xeon VM (bench/dispatch.ts) a worker still spinning
 * answers in < 1 µs, one asleep in 30-250 µs (the futex wake, longer when other processes hold the
 * cores), so workers that stay awake across the short single-threaded stretches between the big
 * calls of a training step are what makes splitting hidden-128-sized calls pay: a spin much
 * shorter than the gaps between those calls puts a wake on every call.
 */
export const DEFAULT_SPIN = 20000;

/** Workers with a shared control block; see the module doc. */
export class WorkerPool {
  #workers: Worker[];
  readonly #control: SharedArrayBuffer;
  readonly #headers: Int32Array[];
  readonly #args: Float64Array[];
  readonly #text: Uint16Array[];
  readonly #ops: readonly string[];
  readonly #spin: number;
  readonly #waitLimitMs: number;
  #seq: number[];
  /** Op of each worker's last posted job (for error messages). */
  #lastOp: number[];
  #roundTripUs = NaN;
  #wakeUs = NaN;

  private constructor(
    workers: Worker[],
    control: SharedArrayBuffer,
    ops: readonly string[],
    spin: number,
    waitLimitMs: number,
  ) {
    this.#workers = workers;
    this.#control = control;
    this.#ops = ops;
    this.#spin = spin;
    this.#waitLimitMs = waitLimitMs;
    this.#headers = workers.map((_, i) => new Int32Array(control, i * SLOT_BYTES, HEADER_WORDS));
    this.#args = workers.map((_, i) => new Float64Array(control, i * SLOT_BYTES + 32, MAX_ARGS));
    this.#text = workers.map((_, i) =>
      new Uint16Array(control, i * SLOT_BYTES + TEXT_OFFSET, TEXT_CHARS + 1)
    );
    this.#seq = workers.map(() => 0);
    this.#lastOp = workers.map(() => PING_OP);
  }

  /** Starts `scratch.length` workers and resolves once every one has its instance ready. */
  static async create(o: WorkerPoolOptions): Promise<WorkerPool> {
    const n = o.scratch.length;
    const control = new SharedArrayBuffer(Math.max(1, n) * SLOT_BYTES);
    const spin = o.spin ?? DEFAULT_SPIN;
    const url = URL.createObjectURL(new Blob([kernelWorkerSource()], { type: "text/javascript" }));
    const workers: Worker[] = [];
    try {
      const ready: Promise<void>[] = [];
      for (let i = 0; i < n; i++) {
        const w = new Worker(url, { type: "module", name: `slimtune-kernels-${i + 1}` });
        workers.push(w);
        ready.push(
          new Promise<void>((resolve, reject) => {
            w.onmessage = (e: MessageEvent<KernelWorkerReply>) => {
              w.onmessage = null;
              w.onerror = null;
              if (e.data.ready) resolve();
              else reject(new Error(`kernel worker ${i + 1}: ${e.data.error}`));
            };
            w.onerror = (e: ErrorEvent) => {
              e.preventDefault();
              reject(new Error(`kernel worker ${i + 1}: ${e.message}`));
            };
          }),
        );
        const init: KernelWorkerInit = {
          module: o.module,
          memory: o.memory,
          scratch: o.scratch[i],
          scratchBytes: o.scratchBytes,
          control,
          offset: i * SLOT_BYTES,
          maxArgs: MAX_ARGS,
          textOffset: TEXT_OFFSET,
          textChars: TEXT_CHARS,
          ops: [...o.ops],
          spin,
        };
        w.postMessage(init);
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("kernel workers did not start in time")),
          o.startTimeoutMs ?? 30000,
        );
      });
      try {
        await Promise.race([Promise.all(ready), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      for (const w of workers) w.terminate();
      throw e;
    } finally {
      URL.revokeObjectURL(url);
    }
    const pool = new WorkerPool(workers, control, o.ops, spin, o.waitLimitMs ?? Infinity);
    if (n > 0 && o.calibrate !== false) {
      try {
        // Back to back, a low quantile: a worker preempted by another process for a time slice
        // delays a few pings by ms, and the split threshold must not follow that.
        pool.#roundTripUs = pool.measureRoundTrip({ gapUs: 0, reps: 15, batch: 8 }).p25;
        pool.#wakeUs = pool.measureRoundTrip().median;
      } catch (e) {
        pool.close();
        throw e;
      }
    }
    return pool;
  }

  /** Workers (the calling thread not counted); 0 once closed. */
  get size(): number {
    return this.#workers.length;
  }

  /** The control block (tests). */
  get control(): SharedArrayBuffer {
    return this.#control;
  }

  /**
   * µs (measured at start, see {@link measureRoundTrip}: the lower quartile of 15) from posting an
   * empty job to every worker to having them all back, back to back: the workers still spinning
   * from their last job, as they are between the calls of a training step. NaN without
   * calibration.
   */
  get roundTripUs(): number {
    return this.#roundTripUs;
  }

  /**
   * The same (median of 9) with the workers asleep (the caller kept busy for longer than their
   * spin first): the first call after a long single-threaded stretch. NaN without calibration.
   */
  get wakeUs(): number {
    return this.#wakeUs;
  }

  /**
   * Posts op `op` (index into `ops`; {@link PING_OP}: no kernel) with `args` to worker `i`;
   * returns at once. The job is then the worker's, or the caller's once {@link reclaim} says so.
   */
  post(i: number, op: number, args: ArrayLike<number>): void {
    const h = this.#headers[i];
    const a = this.#args[i];
    if (args.length > MAX_ARGS) throw new RangeError(`${args.length} args > ${MAX_ARGS}`);
    for (let j = 0; j < args.length; j++) a[j] = args[j];
    h[OP] = op;
    this.#lastOp[i] = op;
    // Never 0: CLAIM = 0 means "taken".
    const s = (this.#seq[i] + 1) | 0 || 1;
    this.#seq[i] = s;
    // CLAIM before SEQ: a worker that sees the new SEQ finds the job open.
    Atomics.store(h, CLAIM, s);
    Atomics.store(h, SEQ, s);
    Atomics.notify(h, SEQ);
  }

  /**
   * Takes back worker `i`'s last posted job if the worker has not started it (true: the caller
   * must run it itself, and must not {@link wait} for it). Lets the caller do the whole call when
   * a worker is slow to wake (asleep, or its core busy with other work) instead of waiting for
   * it; a worker that died before taking its job can never hold the caller up either.
   */
  reclaim(i: number): boolean {
    const s = this.#seq[i];
    return Atomics.compareExchange(this.#headers[i], CLAIM, s, 0) === s;
  }

  /**
   * Blocks until worker `i` finished its last job; throws if the kernel failed there, if the
   * worker stopped (its loop ended by an error), or after `waitLimitMs`.
   */
  wait(i: number): void {
    const h = this.#headers[i];
    const s = this.#seq[i];
    let d = Atomics.load(h, DONE);
    for (let k = 0; d !== s && k < this.#spin; k++) d = Atomics.load(h, DONE);
    if (d !== s) d = this.#sleepUntilDone(i, h, s, d);
    if (h[STATUS] !== 0) {
      h[STATUS] = 0;
      throw new Error(`kernel worker ${i + 1} failed: ${this.#message(i)}`);
    }
  }

  #sleepUntilDone(i: number, h: Int32Array, s: number, d: number): number {
    const deadline = this.#waitLimitMs < Infinity ? performance.now() + this.#waitLimitMs : 0;
    // In slices: a worker whose loop ended cleared ALIVE (and notified, which a caller not yet
    // asleep misses); one terminated inside a kernel cannot, and only the time limit ends that.
    while (d !== s) {
      if (Atomics.load(h, ALIVE) === 0) {
        throw new Error(
          `kernel worker ${i + 1} stopped during ${this.#name(i)}: ${this.#message(i)}`,
        );
      }
      if (deadline && performance.now() > deadline) {
        throw new Error(
          `kernel worker ${i + 1} did not finish ${this.#name(i)} in ${this.#waitLimitMs} ms ` +
            "(terminated, or stuck)",
        );
      }
      Atomics.wait(h, DONE, d, WAIT_SLICE_MS);
      d = Atomics.load(h, DONE);
    }
    return d;
  }

  /** Name of worker `i`'s last job. */
  #name(i: number): string {
    const op = this.#lastOp[i];
    return op >= 0 ? this.#ops[op] ?? `op ${op}` : op === PING_OP ? "ping" : `op ${op}`;
  }

  #message(i: number): string {
    const t = this.#text[i];
    return String.fromCharCode(...t.subarray(1, 1 + t[0]));
  }

  /** An empty job on worker `i`, waited for: one dispatch round trip. */
  ping(i: number): void {
    this.post(i, PING_OP, []);
    this.wait(i);
  }

  /**
   * Round trips (µs: median, lower quartile, lowest, highest of `reps`, default 9) of an empty job
   * posted to every worker at once and waited for, each after the caller kept busy for `gapUs`
   * (0: back to back; default: 3 spins plus 50 µs, long enough for the workers to have gone to
   * sleep, so that the futex wake is most of the cost). With `batch` > 1 (back to back only) each
   * rep times that many round trips and reports their mean: a page's coarse clock (20 µs-1 ms
   * ticks) cannot time one round trip of a few µs.
   */
  measureRoundTrip(o: { reps?: number; gapUs?: number; batch?: number } = {}): {
    median: number;
    p25: number;
    min: number;
    max: number;
  } {
    const n = this.size;
    if (n === 0) return { median: NaN, p25: NaN, min: NaN, max: NaN };
    let gapUs = o.gapUs;
    if (gapUs === undefined) {
      // How long this thread's spin lasts (the workers' is the same loop).
      const h = this.#headers[0];
      const t = performance.now();
      for (let k = 0; k < this.#spin; k++) Atomics.load(h, OP);
      gapUs = 3 * (performance.now() - t) * 1000 + 50;
    }
    // The caller stays awake for the answer (as it is when it computes between kernel calls):
    // one that sleeps too could fall, with the workers, into a rhythm where every round trip is
    // two futex wakes (bench/dispatch.ts times a worker asleep), which says little about a
    // training step.
    const roundTrip = () => {
      for (let i = 0; i < n; i++) this.post(i, PING_OP, []);
      for (let i = 0; i < n; i++) {
        const h = this.#headers[i];
        const s = this.#seq[i];
        for (let k = 0; k < 100 * this.#spin && Atomics.load(h, DONE) !== s; k++) { /* spin */ }
        this.wait(i);
      }
    };
    roundTrip(); // first use: compiles the paths
    roundTrip();
    const times: number[] = [];
    for (let r = 0; r < (o.reps ?? 9); r++) {
      if (gapUs > 0) {
        const until = performance.now() + gapUs / 1000;
        while (performance.now() < until) { /* busy, as the caller is between kernel calls */ }
      }
      const batch = gapUs > 0 ? 1 : Math.max(1, Math.floor(o.batch ?? 1));
      const t = performance.now();
      for (let b = 0; b < batch; b++) roundTrip();
      times.push(((performance.now() - t) * 1000) / batch);
    }
    times.sort((a, b) => a - b);
    return {
      median: times[times.length >> 1],
      p25: times[times.length >> 2],
      min: times[0],
      max: times[times.length - 1],
    };
  }

  /** Name of op `op`. */
  opName(op: number): string {
    return this.#ops[op];
  }

  /**
   * Stops and terminates the workers from `n` on (keeping workers 0..n-1), then measures the
   * round trips again for the workers left.
   */
  shrink(n: number): void {
    if (!(Number.isInteger(n) && n >= 0)) throw new RangeError(`shrink(${n}): not a count`);
    const workers = this.#workers;
    if (n >= workers.length) return;
    this.#workers = workers.slice(0, n);
    for (let i = n; i < workers.length; i++) {
      this.post(i, QUIT_OP, []);
      workers[i].terminate();
    }
    this.#roundTripUs = n > 0 ? this.measureRoundTrip({ gapUs: 0, reps: 15, batch: 8 }).p25 : NaN;
    this.#wakeUs = n > 0 ? this.measureRoundTrip().median : NaN;
  }

  /** Stops and terminates every worker (idempotent). Later calls run on the calling thread. */
  close(): void {
    const workers = this.#workers;
    this.#workers = [];
    for (let i = 0; i < workers.length; i++) {
      this.post(i, QUIT_OP, []);
      workers[i].terminate();
    }
  }
}
