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
import {
  type KernelWorkerInit,
  type KernelWorkerReply,
  kernelWorkerSource,
} from "./kernel_worker.ts";

/** f64 arguments a job carries (the widest kernel takes 16). */
export const MAX_ARGS = 16;
/** Bytes per worker slot: header (32) + args (128) + error text (u16 length + 175 chars). */
const SLOT_BYTES = 512;
const TEXT_OFFSET = 32 + MAX_ARGS * 8;
const TEXT_CHARS = (SLOT_BYTES - TEXT_OFFSET) / 2 - 1;
const SEQ = 0;
const DONE = 1;
const OP = 2;
const STATUS = 3;

/**
 * True where a pool can run here: Worker, Blob URLs, SharedArrayBuffer and a thread that may
 * block in Atomics.wait (not a browser's main thread).
 */
export function threadsAvailable(): boolean {
  const g = globalThis as Record<string, unknown>;
  if (typeof g.Worker !== "function" || typeof g.SharedArrayBuffer !== "function") return false;
  if (typeof Atomics === "undefined" || typeof Atomics.wait !== "function") return false;
  if (typeof URL.createObjectURL !== "function" || typeof g.Blob !== "function") return false;
  try {
    // Never blocks (the value differs); throws where this thread may not wait.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
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
  /** Polls before a waiting thread sleeps (default 20000, a few tens of µs). */
  spin?: number;
  /** Give up (and close) if the workers are not ready in this many ms (default 30000). */
  startTimeoutMs?: number;
}

/** Workers with a shared control block; see the module doc. */
export class WorkerPool {
  #workers: Worker[];
  readonly #control: SharedArrayBuffer;
  readonly #headers: Int32Array[];
  readonly #args: Float64Array[];
  readonly #text: Uint16Array[];
  readonly #ops: readonly string[];
  readonly #spin: number;
  #seq: number[];

  private constructor(
    workers: Worker[],
    control: SharedArrayBuffer,
    ops: readonly string[],
    spin: number,
  ) {
    this.#workers = workers;
    this.#control = control;
    this.#ops = ops;
    this.#spin = spin;
    this.#headers = workers.map((_, i) => new Int32Array(control, i * SLOT_BYTES, 4));
    this.#args = workers.map((_, i) => new Float64Array(control, i * SLOT_BYTES + 32, MAX_ARGS));
    this.#text = workers.map((_, i) =>
      new Uint16Array(control, i * SLOT_BYTES + TEXT_OFFSET, TEXT_CHARS + 1)
    );
    this.#seq = workers.map(() => 0);
  }

  /** Starts `scratch.length` workers and resolves once every one has its instance ready. */
  static async create(o: WorkerPoolOptions): Promise<WorkerPool> {
    const n = o.scratch.length;
    const control = new SharedArrayBuffer(Math.max(1, n) * SLOT_BYTES);
    const spin = o.spin ?? 20000;
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
    return new WorkerPool(workers, control, o.ops, spin);
  }

  /** Workers (the calling thread not counted); 0 once closed. */
  get size(): number {
    return this.#workers.length;
  }

  /** The control block (tests). */
  get control(): SharedArrayBuffer {
    return this.#control;
  }

  /** Posts op `op` (index into `ops`) with `args` to worker `i`; returns at once. */
  post(i: number, op: number, args: ArrayLike<number>): void {
    const h = this.#headers[i];
    const a = this.#args[i];
    if (args.length > MAX_ARGS) throw new RangeError(`${args.length} args > ${MAX_ARGS}`);
    for (let j = 0; j < args.length; j++) a[j] = args[j];
    h[OP] = op;
    const s = (this.#seq[i] + 1) | 0;
    this.#seq[i] = s;
    Atomics.store(h, SEQ, s);
    Atomics.notify(h, SEQ);
  }

  /** Blocks until worker `i` finished its last job; throws if the kernel failed there. */
  wait(i: number): void {
    const h = this.#headers[i];
    const s = this.#seq[i];
    let d = Atomics.load(h, DONE);
    for (let k = 0; d !== s && k < this.#spin; k++) d = Atomics.load(h, DONE);
    while (d !== s) {
      Atomics.wait(h, DONE, d);
      d = Atomics.load(h, DONE);
    }
    if (h[STATUS] !== 0) {
      h[STATUS] = 0;
      const t = this.#text[i];
      const msg = String.fromCharCode(...t.subarray(1, 1 + t[0]));
      throw new Error(`kernel worker ${i + 1} failed: ${msg}`);
    }
  }

  /** Name of op `op`. */
  opName(op: number): string {
    return this.#ops[op];
  }

  /** Stops and terminates every worker (idempotent). Later calls run on the calling thread. */
  close(): void {
    const workers = this.#workers;
    this.#workers = [];
    for (let i = 0; i < workers.length; i++) {
      const h = this.#headers[i];
      h[OP] = -1;
      Atomics.store(h, SEQ, (this.#seq[i] + 1) | 0);
      Atomics.notify(h, SEQ);
      workers[i].terminate();
    }
  }
}
