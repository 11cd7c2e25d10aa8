/**
 * The code a kernel worker runs (see worker_pool.ts), shipped as source text so the pool needs no
 * worker file: `kernelWorkerSource()` is `(kernelWorkerMain)()` as JavaScript, which the pool
 * loads from a `blob:` URL (Deno, browsers; no file or network permission needed).
 *
 * `kernelWorkerMain` must stay self-contained: it is stringified, so it may not use imports or
 * anything outside its own body. Everything it needs comes in the first message:
 * the compiled threads build of the kernels, the shared `WebAssembly.Memory`, the worker's own
 * scratch region (each wasm instance has its own globals, so `init` sets this instance's scratch
 * only), the control `SharedArrayBuffer` with this worker's slot, and the export names by op.
 *
 * Slot protocol (byte offsets into the control buffer from `slot.offset`, see worker_pool.ts):
 * i32 [0] seq: the caller bumps it to post a job (never to 0); i32 [1] done: the worker stores
 * the seq it finished; i32 [2] op: index into `ops` (-1 = quit, -2 = ping: no kernel); i32 [3]
 * status: 0 ok, 1 error (message in the text area as u16 [len, chars...]); i32 [4] claim: the
 * caller sets it to the job's seq when posting, and whoever swaps it to 0 first runs the job: the
 * worker when it wakes, or the caller taking back a job not yet started (WorkerPool.reclaim; the
 * worker then only stores done); i32 [5] alive: 1 while the worker's loop runs (cleared when it
 * ends, by quit or by an error, e.g. an op index it does not know); f64 args from byte 32. The
 * caller writes op and args before its `Atomics.store(claim)`, and the worker writes results (into
 * the shared memory) before its `Atomics.store(done)`, so sequentially consistent atomics order
 * everything else.
 */

/** Data of the first message a kernel worker gets. */
export interface KernelWorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  scratch: number;
  scratchBytes: number;
  control: SharedArrayBuffer;
  /** Byte offset of this worker's slot in `control`. */
  offset: number;
  /** f64 arguments per job. */
  maxArgs: number;
  /** Byte offset (from the slot) and u16 capacity of the error text area. */
  textOffset: number;
  textChars: number;
  /** Export name of each op index. */
  ops: string[];
  /** Polls of `seq` before the worker sleeps in Atomics.wait. */
  spin: number;
}

/** Message a kernel worker posts once: ready, or why it could not start. */
export type KernelWorkerReply = { ready: true } | { ready: false; error: string };

/** The worker's main function (stringified: self-contained, no imports, no outer references). */
export function kernelWorkerMain(): void {
  const scope = globalThis as unknown as {
    onmessage: ((e: MessageEvent) => void) | null;
    postMessage(m: unknown): void;
    close(): void;
  };
  scope.onmessage = (e: MessageEvent) => {
    scope.onmessage = null;
    const d = e.data as KernelWorkerInit;
    // deno-lint-ignore ban-types
    let fns: Function[];
    try {
      const inst = new WebAssembly.Instance(d.module, { env: { memory: d.memory } });
      const ex = inst.exports as Record<string, unknown>;
      (ex.init as (p: number, n: number) => void)(d.scratch, d.scratchBytes);
      // deno-lint-ignore ban-types
      fns = d.ops.map((name) => ex[name] as Function);
      for (let i = 0; i < fns.length; i++) {
        if (typeof fns[i] !== "function") throw new Error(`kernel module lacks "${d.ops[i]}"`);
      }
    } catch (err) {
      scope.postMessage({ ready: false, error: String(err) });
      return;
    }
    const h = new Int32Array(d.control, d.offset, 8);
    const a = new Float64Array(d.control, d.offset + 32, d.maxArgs);
    const text = new Uint16Array(d.control, d.offset + d.textOffset, d.textChars + 1);
    const say = (msg: string) => {
      msg = msg.slice(0, d.textChars);
      text[0] = msg.length;
      for (let i = 0; i < msg.length; i++) text[i + 1] = msg.charCodeAt(i);
    };
    // Read before saying ready: the caller may post the first job as soon as it hears that.
    let seen = Atomics.load(h, 0);
    Atomics.store(h, 5, 1);
    scope.postMessage({ ready: true });
    try {
      for (;;) {
        let s = Atomics.load(h, 0);
        for (let i = 0; s === seen && i < d.spin; i++) s = Atomics.load(h, 0);
        while (s === seen) {
          Atomics.wait(h, 0, seen);
          s = Atomics.load(h, 0);
        }
        seen = s;
        // Whoever swaps claim from this seq to 0 runs the job; a job the caller took back
        // (WorkerPool.reclaim) is only acknowledged.
        if (Atomics.compareExchange(h, 4, s, 0) === s) {
          const op = h[2];
          if (op === -1) break;
          if (op !== -2) {
            const f = fns[op];
            // A protocol error, not a kernel's: the loop ends (alive = 0, the caller throws).
            if (f === undefined) throw new Error(`unknown op ${op}`);
            try {
              f(
                a[0],
                a[1],
                a[2],
                a[3],
                a[4],
                a[5],
                a[6],
                a[7],
                a[8],
                a[9],
                a[10],
                a[11],
                a[12],
                a[13],
                a[14],
                a[15],
                a[16],
              );
              h[3] = 0;
            } catch (err) {
              say(`${d.ops[op]}: ${err}`);
              h[3] = 1;
            }
          }
        }
        Atomics.store(h, 1, seen);
        Atomics.notify(h, 1);
      }
    } catch (err) {
      say(String(err));
    } finally {
      // A waiting caller wakes and finds the worker gone instead of waiting forever.
      Atomics.store(h, 5, 0);
      Atomics.notify(h, 1);
    }
    scope.close();
  };
}

/** JavaScript source of a kernel worker. */
export function kernelWorkerSource(): string {
  return `(${kernelWorkerMain.toString()})();\n`;
}
