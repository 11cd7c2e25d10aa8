/**
 * Runs `examples/edge/worker.ts` in workerd (Cloudflare's runtime, npm `workerd`, its prebuilt
 * binary) and measures the isolate from outside:
 *
 * - the worker is bundled by `deno bundle` (it imports `mod_slim.ts`: no embedded builds) and run
 *   from a `config.capnp` written here, the relaxed or simd128 kernels injected as a wasm module
 *   (Cloudflare's CompiledWasm import), the outbound network open to 127.0.0.1 only, a writable
 *   `disk` service bound as `STATE` (the run-state store of `run=`), and the V8 inspector on;
 * - {@link runWorkerdFinetune} writes a random-weight checkpoint of a real shape (default
 *   SmolLM2-135M, `layers` of its 30), serves it with Range support, asks `/finetune` to stream
 *   it, and samples the isolate's V8 heap through the inspector (`Runtime.getHeapUsage`: the JS
 *   heap, and the ArrayBuffer backing stores, where the wasm memory and the int4 cache live)
 *   while the request runs, plus the workerd process's peak resident size (VmHWM, Linux).
 *
 * Usage: npx deno run -A scripts/workerd_run.ts [--layers N] [--steps N] [--seq N]
 *   [--build relaxed|simd] [--method mesp] [--optimizer sgd|adamw] [--max-memory-mb 128]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { rangeFileResponse } from "../examples/shared/range_file.ts";
import { freePort, spawnWithDeadline, withDeadline } from "./harness.ts";
import { denoBundle } from "./deno_bundle.ts";

const ROOT = new URL("..", import.meta.url).pathname;
/** The workerd binary npm installs. */
export const WORKERD = `${ROOT}node_modules/workerd/bin/workerd`;

/** Whether the workerd binary is installed. */
export function hasWorkerd(): boolean {
  try {
    return Deno.statSync(WORKERD).isFile;
  } catch {
    return false;
  }
}

/**
 * Every wait on workerd, its inspector, `deno bundle` or a local server ends by these deadlines
 * (milliseconds) with an error naming what did not answer: a harness that hangs takes the whole
 * suite with it.
 */
export const DEADLINE_MS = {
  bundle: 180_000,
  start: 40_000,
  request: 300_000,
  inspectorCall: 20_000,
  stop: 5_000,
  /** workerd's whole life: its start and every request of a test file or benchmark. */
  lifetime: 30 * 60_000,
} as const;

/** `deno bundle` of `entry` (relative to the repository) into `outFile`; returns its size. */
export async function bundle(entry: string, outFile: string): Promise<number> {
  await denoBundle(`${ROOT}${entry}`, outFile, { cwd: ROOT, timeoutMs: DEADLINE_MS.bundle });
  return (await Deno.stat(outFile)).size;
}

/** What Cloudflare's own entry would be: the wasm import injected as env.KERNELS. */
const ENTRY = `import worker from "./worker.js";
import KERNELS from "./kernels.wasm";
export default { fetch: (request, env) => worker.fetch(request, { ...env, KERNELS }) };
`;

/** workerd's config: the bundled worker, the injected kernels, 127.0.0.1, the state service. */
function config(port: number, wasmFile: string, stateDir: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .finetuneWorker),
    (name = "local-net", network = (allow = ["private", "local"])),
    (name = "state", disk = (path = "${stateDir}", writable = true)),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);

const finetuneWorker :Workerd.Worker = (
  modules = [
    (name = "entry.js", esModule = embed "entry.js"),
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "kernels.wasm", wasm = embed "${wasmFile}"),
  ],
  bindings = [(name = "STATE", service = "state")],
  compatibilityDate = "2026-11-01",
  globalOutbound = "local-net",
);
`;
}

/** Bundles the worker into `dir` with its entry and both single-thread kernel builds. */
export async function prepareWorker(dir: string): Promise<void> {
  await bundle("examples/edge/worker.ts", `${dir}/worker.js`);
  await Deno.writeTextFile(`${dir}/entry.js`, ENTRY);
  for (const build of ["relaxed", "simd"]) {
    await Deno.copyFile(`${ROOT}wasm/kernels.${build}.wasm`, `${dir}/kernels.${build}.wasm`);
  }
}

/** `Runtime.getHeapUsage` of the isolate, in bytes. */
export interface HeapUsage {
  /** JS heap in use. */
  usedSize: number;
  /** JS heap reserved. */
  totalSize: number;
  /** ArrayBuffer backing stores (wasm memories, typed arrays' buffers). */
  backingStorageSize: number;
}

/** A running workerd serving the worker. */
export interface Workerd {
  base: string;
  pid: number;
  /** The isolate's heap now, through the inspector. */
  heapUsage(): Promise<HeapUsage>;
  /** The workerd process's peak resident size (VmHWM), or null off Linux. */
  peakBytes(): number | null;
  /** Stops workerd; returns what it wrote to stdout and stderr. */
  close(): Promise<string>;
}

function vmHwm(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * A minimal inspector client: one WebSocket, calls matched to answers by id. A call fails, rather
 * than waits, when the socket closes or the answer is later than the deadline.
 */
async function inspector(port: number): Promise<{
  call(method: string): Promise<Record<string, unknown>>;
  close(): void;
}> {
  const where = `workerd inspector on port ${port}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/main`);
  await withDeadline(
    new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`${where}: cannot connect`));
    }),
    DEADLINE_MS.inspectorCall,
    `${where}: connect`,
  );
  const pending = new Map<
    number,
    { resolve(r: Record<string, unknown>): void; reject(e: Error): void }
  >();
  let closed: string | null = null;
  const fail = (why: string) => {
    closed ??= why;
    for (const p of pending.values()) p.reject(new Error(`${where}: ${closed}`));
    pending.clear();
  };
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data));
    if (typeof m.id !== "number") return;
    pending.get(m.id)?.resolve(m.result ?? {});
    pending.delete(m.id);
  };
  ws.onclose = (e) => fail(`closed (code ${e.code})`);
  ws.onerror = () => fail("socket error");
  let id = 0;
  const call = (method: string) => {
    if (closed) return Promise.reject(new Error(`${where}: ${closed}`));
    const callId = ++id;
    const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
      pending.set(callId, { resolve, reject });
      ws.send(JSON.stringify({ id: callId, method, params: {} }));
    });
    return withDeadline(answer, DEADLINE_MS.inspectorCall, `${where}: ${method}`).finally(() =>
      pending.delete(callId)
    );
  };
  await call("Runtime.enable");
  return { call, close: () => ws.close() };
}

/** Starts workerd on the worker prepared in `dir` with the `build` kernels. */
export async function startWorkerd(dir: string, build: "relaxed" | "simd"): Promise<Workerd> {
  // The ports are free when chosen but not held: another process of a parallel suite can take
  // one before workerd binds it, so a start that fails is tried again on other ports.
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startWorkerdOnce(dir, build, freePort(), freePort());
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  throw new Error(`workerd did not start in 3 tries: ${failures.join(" | ")}`);
}

async function startWorkerdOnce(
  dir: string,
  build: "relaxed" | "simd",
  port: number,
  inspectorPort: number,
): Promise<Workerd> {
  const stateDir = `${dir}/state-${build}`;
  await Deno.mkdir(stateDir, { recursive: true });
  await Deno.writeTextFile(`${dir}/config.capnp`, config(port, `kernels.${build}.wasm`, stateDir));
  const child = spawnWithDeadline(
    WORKERD,
    ["serve", `${dir}/config.capnp`, `--inspector-addr=127.0.0.1:${inspectorPort}`],
    {
      timeoutMs: DEADLINE_MS.lifetime,
      what: `workerd on ports ${port}/${inspectorPort}`,
      cwd: dir,
    },
  );
  const base = `http://127.0.0.1:${port}`;
  // workerd drains its connections on SIGTERM, and an inspector socket that the client has
  // closed can keep it draining for ever (seen: the socket in CLOSE-WAIT, SIGTERM without
  // effect), so the stop's SIGKILL follows when it has not exited after the grace period.
  const stop = (): Promise<string> =>
    child.stop().then((r) => `${r.stdout}\n${r.stderr}`, (e: Error) => e.message);
  const startBy = performance.now() + DEADLINE_MS.start;
  for (;;) {
    try {
      const r = await fetch(`${base}/`, { signal: AbortSignal.timeout(5_000) });
      // The worker's own greeting: not another process that holds the port.
      if ((await r.text()).startsWith("slimtune edge worker")) break;
      throw new Error(`127.0.0.1:${port} answers, but not as the worker`);
    } catch {
      if (child.exited || performance.now() > startBy) {
        const why = child.exited ? "exited" : `not answering after ${DEADLINE_MS.start / 1000} s`;
        throw new Error(
          `workerd on ports ${port}/${inspectorPort} did not start (${why}): ${await stop()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  let client: Awaited<ReturnType<typeof inspector>> | null = null;
  return {
    base,
    pid: child.pid,
    async heapUsage() {
      client ??= await inspector(inspectorPort);
      let r: Record<string, unknown>;
      try {
        r = await client.call("Runtime.getHeapUsage");
      } catch (e) {
        // The next call opens a new connection.
        client.close();
        client = null;
        throw e;
      }
      return {
        usedSize: Number(r.usedSize),
        totalSize: Number(r.totalSize),
        backingStorageSize: Number(r.backingStorageSize ?? NaN),
      };
    },
    peakBytes: () => vmHwm(child.pid),
    close() {
      client?.close();
      return stop();
    },
  };
}

/** Options of {@link runWorkerdFinetune}. */
export interface WorkerdFinetuneOptions {
  preset?: string;
  layers?: number;
  steps?: number;
  seq?: number;
  build?: "relaxed" | "simd";
  method?: string;
  optimizer?: "sgd" | "adamw";
  maxMemoryMB?: number;
  /** Milliseconds between heap samples during the request (default 50). */
  sampleMs?: number;
}

/** The worker's answer and the isolate's memory as measured from outside. */
export interface WorkerdFinetuneRun {
  status: number;
  response: Record<string, unknown>;
  /** Highest sampled JS heap in use, and highest sampled backing stores (bytes). */
  heapUsedPeakBytes: number;
  backingStoragePeakBytes: number;
  /** Highest sampled JS heap + backing stores: the isolate's memory. */
  isolatePeakBytes: number;
  /** Heap samples taken during the request. */
  samples: number;
  /** workerd's peak resident size before and after the request (VmHWM), or null. */
  processIdlePeakBytes: number | null;
  processPeakBytes: number | null;
  checkpointBytes: number;
  requestSeconds: number;
  /** Why the heap sampling stopped early, if it did (the peaks then miss the rest). */
  samplerError?: string;
}

/** One `/finetune` of a streamed checkpoint in workerd, with the isolate's memory sampled. */
export async function runWorkerdFinetune(
  o: WorkerdFinetuneOptions = {},
): Promise<WorkerdFinetuneRun> {
  const dir = await Deno.makeTempDir({ prefix: "slimtune-workerd-run-" });
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let workerd: Workerd | null = null;
  try {
    const ckpt = `${dir}/ckpt`;
    await Deno.mkdir(ckpt);
    const made = await makeCheckpoint({
      preset: o.preset ?? "smollm2-135m",
      out: ckpt,
      layers: o.layers,
      dtype: "bf16",
      seed: 3,
    });
    server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (req) => rangeFileResponse(ckpt, decodeURIComponent(new URL(req.url).pathname.slice(1)), req),
    );
    await prepareWorker(dir);
    workerd = await startWorkerd(dir, o.build ?? "relaxed");
    const q = new URLSearchParams({
      model: `http://127.0.0.1:${server.addr.port}/`,
      steps: String(o.steps ?? 2),
      seq: String(o.seq ?? 64),
      method: o.method ?? "mesp",
      optimizer: o.optimizer ?? "sgd",
      maxMemoryMB: String(o.maxMemoryMB ?? 128),
    });
    const w = workerd;
    const first = await w.heapUsage();
    let heapUsedPeakBytes = first.usedSize;
    let backingStoragePeakBytes = first.backingStorageSize;
    let isolatePeakBytes = first.usedSize + first.backingStorageSize;
    let samples = 0;
    const processIdlePeakBytes = w.peakBytes();
    let running = true;
    let samplerError: string | undefined;
    // The inspector answers between the isolate's tasks (each awaited fetch of a weight range),
    // so the samples fall throughout the load and the steps. A failed sample is retried on a new
    // connection; three in a row end the sampling, and the run says why.
    const sampler = (async () => {
      let failures = 0;
      while (running) {
        try {
          const h = await w.heapUsage();
          failures = 0;
          samples++;
          heapUsedPeakBytes = Math.max(heapUsedPeakBytes, h.usedSize);
          backingStoragePeakBytes = Math.max(backingStoragePeakBytes, h.backingStorageSize);
          isolatePeakBytes = Math.max(isolatePeakBytes, h.usedSize + h.backingStorageSize);
        } catch (e) {
          if (++failures >= 3) {
            samplerError = `heap sampling stopped: ${(e as Error).message}`;
            return;
          }
        }
        await new Promise((r) => setTimeout(r, o.sampleMs ?? 50));
      }
    })();
    const t0 = performance.now();
    let res: Response;
    let response: Record<string, unknown>;
    try {
      res = await fetch(`${w.base}/finetune?${q}`, {
        signal: AbortSignal.timeout(DEADLINE_MS.request),
      });
      response = await res.json();
    } catch (e) {
      running = false;
      const log = await w.close();
      workerd = null;
      throw new Error(
        `workerd /finetune: ${(e as Error).message} (deadline ${DEADLINE_MS.request / 1000} s); ` +
          `workerd said: ${log}`,
      );
    }
    const requestSeconds = (performance.now() - t0) / 1000;
    running = false;
    await withDeadline(sampler, 3 * DEADLINE_MS.inspectorCall, "workerd heap sampler");
    return {
      status: res.status,
      response,
      heapUsedPeakBytes,
      backingStoragePeakBytes,
      isolatePeakBytes,
      samples,
      processIdlePeakBytes,
      processPeakBytes: w.peakBytes(),
      checkpointBytes: made.dataBytes,
      requestSeconds,
      samplerError,
    };
  } finally {
    await workerd?.close();
    await withDeadline(server?.shutdown() ?? Promise.resolve(), DEADLINE_MS.stop, "range server")
      .catch(() => {/* its connections go with the process */});
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      layers: { type: "string" },
      steps: { type: "string", default: "2" },
      seq: { type: "string", default: "64" },
      build: { type: "string", default: "relaxed" },
      method: { type: "string", default: "mesp" },
      optimizer: { type: "string", default: "sgd" },
      "max-memory-mb": { type: "string", default: "128" },
    },
  });
  const r = await runWorkerdFinetune({
    layers: values.layers ? Number(values.layers) : undefined,
    steps: Number(values.steps),
    seq: Number(values.seq),
    build: values.build as "relaxed" | "simd",
    method: values.method,
    optimizer: values.optimizer as "sgd" | "adamw",
    maxMemoryMB: Number(values["max-memory-mb"]),
  });
  console.log(JSON.stringify({ ...r, response: r.response }, null, 2));
  if (r.status !== 200) Deno.exit(1);
}
