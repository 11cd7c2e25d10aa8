/**
 * Runs `examples/edge/worker.ts` the way an edge platform would and measures it:
 *
 * 1. writes a random-weight checkpoint of a real shape with `tools/make_checkpoint.ts` (default
 *    SmolLM2-135M: hidden 576, 30 layers, 9/3 heads, vocab 49152, BF16) into a temp dir;
 * 2. serves it over HTTP with Range support on 127.0.0.1 (standing in for R2 / the HF hub);
 * 3. starts the worker (`examples/edge/deno_entry.js` around `worker.ts`) with `deno serve` and
 *    only `--allow-net=127.0.0.1` (no file, env or other access: the kernels are injected by the
 *    entry's source-phase wasm import);
 * 4. calls `GET /finetune?model=...` and prints its JSON answer plus the worker process's peak
 *    resident memory (VmHWM, read from /proc by this script, Linux only).
 *
 * Usage: npx deno run -A scripts/edge_worker_run.ts [--layers N] [--steps N] [--seq N]
 *   [--method mesp] [--optimizer sgd|adamw] [--lr LR] [--max-memory-mb 128]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { makeCheckpoint } from "../tools/make_checkpoint.ts";
import { rangeFileResponse } from "../examples/shared/range_file.ts";
import {
  freePort,
  KILL_GRACE_MS,
  type SpawnedProcess,
  spawnWithDeadline,
  waitUntil,
  withDeadline,
} from "./harness.ts";

/**
 * Every wait on the worker process or the checkpoint server ends by these deadlines
 * (milliseconds): its start (a type check of the worker's graph, minutes on a loaded machine),
 * the `/finetune` request (the full 30-layer shape streams 270 MB), and the server's shutdown.
 */
export const EDGE_DEADLINE_MS = {
  start: 180_000,
  request: 15 * 60_000,
  stop: 5_000,
} as const;

/** Options of {@link runEdgeWorker}. */
export interface EdgeWorkerRunOptions {
  preset?: string;
  layers?: number;
  steps?: number;
  seq?: number;
  method?: string;
  optimizer?: "sgd" | "adamw";
  /** Learning rate (the worker's default: 1e-4 for SGD, 1e-3 for AdamW). */
  lr?: number;
  maxMemoryMB?: number;
  /** Ask the worker for the adapter bytes too. */
  adapter?: boolean;
}

/** The worker's JSON answer plus what this script measured from outside. */
export interface EdgeWorkerRun {
  response: Record<string, unknown>;
  status: number;
  /** Peak resident set of the worker process (VmHWM), or null off Linux. */
  workerPeakBytes: number | null;
  /** The worker process's peak before the request (Deno runtime + module graph), or null. */
  workerIdlePeakBytes: number | null;
  checkpointBytes: number;
  makeSeconds: number;
  requestSeconds: number;
}

/** Serves the files of `dir` with HTTP Range support (206 only for ranged GETs). */
function serveDir(dir: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => rangeFileResponse(dir, decodeURIComponent(new URL(req.url).pathname.slice(1)), req),
  );
}

function vmHwm(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Runs one fine-tune through the worker (see the module doc). */
export async function runEdgeWorker(o: EdgeWorkerRunOptions = {}): Promise<EdgeWorkerRun> {
  const root = new URL("..", import.meta.url).pathname;
  const dir = await Deno.makeTempDir({ prefix: "slimtune-edge-" });
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let child: SpawnedProcess | null = null;
  try {
    const t0 = performance.now();
    const made = await makeCheckpoint({
      preset: o.preset ?? "smollm2-135m",
      out: dir,
      layers: o.layers,
      dtype: "bf16",
      seed: 3,
    });
    const makeSeconds = (performance.now() - t0) / 1000;
    server = serveDir(dir);
    const modelUrl = `http://127.0.0.1:${server.addr.port}/`;
    const port = freePort();
    const worker = spawnWithDeadline(Deno.execPath(), [
      "serve",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      "--host=127.0.0.1",
      `--port=${port}`,
      `${root}examples/edge/deno_entry.js`,
    ], {
      // Its whole life: the start, the request, and the stop.
      timeoutMs: EDGE_DEADLINE_MS.start + EDGE_DEADLINE_MS.request + 2 * KILL_GRACE_MS,
      what: `the edge worker (deno serve on port ${port})`,
      cwd: root,
      env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
    });
    child = worker;
    const base = `http://127.0.0.1:${port}`;
    await waitUntil(async () => {
      try {
        const r = await fetch(`${base}/`, { signal: AbortSignal.timeout(5_000) });
        await r.body?.cancel();
        return true;
      } catch {
        return false;
      }
    }, {
      timeoutMs: EDGE_DEADLINE_MS.start,
      what: `the edge worker answering on port ${port}`,
      child: worker,
      intervalMs: 100,
    });
    const q = new URLSearchParams({
      model: modelUrl,
      steps: String(o.steps ?? 2),
      seq: String(o.seq ?? 64),
      method: o.method ?? "mesp",
      optimizer: o.optimizer ?? "sgd",
      maxMemoryMB: String(o.maxMemoryMB ?? 128),
      ...(o.lr !== undefined ? { lr: String(o.lr) } : {}),
      ...(o.adapter ? { adapter: "1" } : {}),
    });
    const workerIdlePeakBytes = vmHwm(child.pid);
    const t1 = performance.now();
    let res: Response;
    let response: Record<string, unknown>;
    try {
      res = await fetch(`${base}/finetune?${q}`, {
        signal: AbortSignal.timeout(EDGE_DEADLINE_MS.request),
      });
      response = await res.json();
    } catch (e) {
      const r = await worker.stop().catch((e) => e as Error);
      throw new Error(
        `edge worker /finetune: ${(e as Error).message} (deadline ` +
          `${EDGE_DEADLINE_MS.request / 1000} s); the worker: ` +
          (r instanceof Error ? r.message : worker.describe()),
      );
    }
    const requestSeconds = (performance.now() - t1) / 1000;
    const workerPeakBytes = vmHwm(child.pid);
    return {
      response,
      status: res.status,
      workerPeakBytes,
      workerIdlePeakBytes,
      checkpointBytes: made.dataBytes,
      makeSeconds,
      requestSeconds,
    };
  } finally {
    // The stop rejects only past the worker's deadline: the run's own error is the one to see.
    await child?.stop().catch(() => {});
    await withDeadline(
      server?.shutdown() ?? Promise.resolve(),
      EDGE_DEADLINE_MS.stop,
      "range server",
    )
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
      method: { type: "string", default: "mesp" },
      optimizer: { type: "string", default: "sgd" },
      lr: { type: "string" },
      "max-memory-mb": { type: "string", default: "128" },
    },
  });
  const r = await runEdgeWorker({
    layers: values.layers ? Number(values.layers) : undefined,
    steps: Number(values.steps),
    seq: Number(values.seq),
    method: values.method,
    optimizer: values.optimizer as "sgd" | "adamw",
    lr: values.lr ? Number(values.lr) : undefined,
    maxMemoryMB: Number(values["max-memory-mb"]),
  });
  const mb = (b: unknown) => typeof b === "number" ? `${(b / 1048576).toFixed(1)} MB` : "n/a";
  const resp = r.response as {
    memory?: Record<string, number>;
    losses?: number[];
    stepSeconds?: number[];
    loadSeconds?: number;
  };
  console.log(JSON.stringify(r.response, null, 2));
  console.log(
    `checkpoint ${mb(r.checkpointBytes)} BF16 made in ${r.makeSeconds.toFixed(1)} s; ` +
      `request ${r.requestSeconds.toFixed(1)} s (load ${resp.loadSeconds?.toFixed(1)} s, steps ` +
      `${resp.stepSeconds?.map((s) => s.toFixed(2)).join(", ")} s)`,
  );
  if (resp.memory) {
    console.log(
      `working set ${mb(resp.memory.workingSetBytes)} of ${mb(resp.memory.budgetBytes)} ` +
        `(arena high-water ${mb(resp.memory.wasmHighWaterBytes)}, int4 cache ` +
        `${mb(resp.memory.cacheBytes)}); worker process peak (VmHWM) ${mb(r.workerPeakBytes)}, ` +
        `${mb(r.workerIdlePeakBytes)} before the request (Deno runtime + module graph)`,
    );
  }
  if (r.status !== 200) Deno.exit(1);
}
