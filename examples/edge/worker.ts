/**
 * A Cloudflare-Workers-style module worker (`export default { fetch(request, env) }`) that
 * fine-tunes a LoRA adapter of a checkpoint it reads over HTTP with Range requests, inside a
 * 128 MB budget:
 *
 * - the kernels are an injected, already compiled `WebAssembly.Module` (`env.KERNELS`), never
 *   compiled from bytes at run time (Cloudflare forbids that). The entry point provides it:
 *   `deno_entry.js` with a source-phase import (`import source KERNELS from "…/kernels.relaxed.wasm"`,
 *   kept in a .js file because TypeScript's checker does not parse that syntax yet); on Cloudflare,
 *   `import KERNELS from "./kernels.relaxed.wasm"` (wrangler's CompiledWasm rule) and
 *   `export default { fetch: (req, env) => worker.fetch(req, { ...env, KERNELS }) }`;
 * - the base weights are streamed: converted to int4 once into a memory-only cache
 *   (`ChunkedMemoryCacheStore`, there is no file system) and read back one block at a time into a
 *   planned slot, so the arena does not grow with the number of layers;
 * - the budget is enforced like `train.ts --max-memory`: the arena is capped (`arena.limit`) at
 *   the budget minus the cache's bytes, and the trainer stops if the working set (arena
 *   high-water + JS bytes held, the cache included) goes over it.
 *
 * Under Deno (also Deno Deploy): `npx deno serve --allow-net examples/edge/deno_entry.js`, then
 * `GET /finetune?model=https://host/path/to/checkpoint/&steps=2`.
 *
 * It imports `mod_slim.ts` (no embedded wasm builds: the module is always injected), so its
 * bundle is the library without the four base64 builds.
 *
 * Query parameters of `/finetune`: `model` (base URL of config.json + safetensors) or `demo=1`
 * (a tiny random Qwen2 checkpoint made in memory, nothing fetched),
 * `steps` (2), `seq` (64), `method` (mesp), `rank` (8), `optimizer` (sgd), `lr` (1e-4 sgd /
 * 1e-3 adamw), `maxMemoryMB` (128), `adapter=1` to return the adapter's bytes (base64) too.
 * The answer is JSON: losses, timings, the memory figures, the adapter's config and digest.
 *
 * A fine-tune longer than one invocation's CPU limit: `run=<id>` with `stepsPerCall=N` or
 * `msPerCall=T`. Each call resumes the state kept under `<id>` in the state binding (`STATE_KV`,
 * `STATE_R2`, or an HTTP service `STATE`), trains N steps or about T ms, and puts the state back;
 * the answer says `step` and `done`. Call again until `done` is true: that answer carries the
 * adapter, bit-identical to one run of `steps` (same parameters on every call):
 *
 *   q="demo=1&steps=60&run=my-run&stepsPerCall=10&adapter=1"
 *   until curl -s "$WORKER/finetune?$q" | tee answer.json | grep -q '"done":true'; do :; done
 *
 * @module
 */
import {
  ADAPTER_FILES,
  loadKernels,
  type LoraConfig,
  memoryFiles,
  memoryRunHost,
  type MethodName,
  openModel,
  runFineTune,
  type RunStateStore,
  urlFiles,
} from "../../mod_slim.ts";
import { byteRows, randomCheckpointFiles, TINY_QWEN2 } from "../shared/random_checkpoint.ts";
import { ChunkedMemoryCacheStore } from "./memory_cache.ts";
import {
  type FetcherLike,
  fetchRunStateStore,
  type KvNamespaceLike,
  kvRunStateStore,
  type R2BucketLike,
  r2RunStateStore,
} from "./state_stores.ts";

const TEXT = "A LoRA adapter trained inside an edge function, base weights streamed in int4. ";
const TARGETS: LoraConfig["targets"] = ["q", "k", "v", "o", "gate", "up", "down"];
const MB = 1048576;

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** One fine-tuning run (or one invocation's slice of it) as `/finetune` describes it. */
export async function finetune(
  params: URLSearchParams,
  kernelsModule: WebAssembly.Module,
  stateStore: RunStateStore | null = null,
): Promise<Record<string, unknown>> {
  const model = params.get("model");
  const demo = params.get("demo") === "1";
  if (!model && !demo) {
    throw new TypeError(
      "the `model` query parameter (checkpoint base URL) or `demo=1` is required",
    );
  }
  const num = (k: string, d: number) => {
    const v = params.get(k);
    const x = v === null ? d : Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new TypeError(`${k}: not a positive number: ${v}`);
    return x;
  };
  const steps = num("steps", 2), seqLen = num("seq", 64), rank = num("rank", 8);
  const method = (params.get("method") ?? "mesp") as MethodName;
  const optimizer = params.get("optimizer") === "adamw" ? "adamw" : "sgd";
  const lr = num("lr", optimizer === "sgd" ? 1e-4 : 1e-3);
  const budget = num("maxMemoryMB", 128) * MB;
  const run = params.get("run");
  if (run !== null && !stateStore) throw new TypeError("run=: this worker has no STATE binding");
  const stopAfter = run === null ? null : {
    steps: params.has("stepsPerCall") ? num("stepsPerCall", 1) : undefined,
    ms: params.has("msPerCall") ? num("msPerCall", 1) : undefined,
  };

  const t0 = performance.now();
  const { kernels, arena, variant } = await loadKernels({ module: kernelsModule });
  arena.limit = budget;
  const cache = new ChunkedMemoryCacheStore();
  const store = await openModel({
    source: model ? urlFiles(model) : memoryFiles("demo", randomCheckpointFiles(TINY_QWEN2, 7)),
    quant: "int4",
    weights: "streamed",
    cache,
    kernels,
    arena,
    headChunkRows: 2048,
  });
  try {
    const loadS = (performance.now() - t0) / 1000;
    // The cache lives in JS memory: what is left of the budget is the arena's.
    arena.limit = budget - store.jsBytesHeld();
    const stepSeconds: number[] = [];
    // The library's run pipeline; this worker is its host: the adapter comes back in the answer.
    const host = memoryRunHost(() => {});
    const result = await runFineTune(host, {
      store,
      kernels,
      arena,
      adapter: {
        r: rank,
        alpha: 2 * rank,
        targets: TARGETS,
        baseModel: model ?? "slimtune-demo (random tiny Qwen2, made in memory)",
      },
      session: {
        method,
        seed: 1,
        maxGradNorm: 0,
        optimizer: { kind: optimizer, lr, weightDecay: 0 },
        headChunkRows: 2048,
      },
      train: byteRows(TEXT.repeat(Math.ceil(seqLen / 40) + 1), seqLen),
      batchSize: 1,
      seqLen,
      steps,
      out: "",
      stateStore: run === null ? null : { store: stateStore!, key: run },
      stopAfter,
      maxWorkingSetBytes: budget,
      onStep: (r) => {
        stepSeconds.push(r.tokens / Math.max(r.tokensPerS, 1e-9));
      },
    });
    const weights = host.files.get(ADAPTER_FILES.weights);
    const configJson = host.files.get(ADAPTER_FILES.config);
    const m = result.memory;
    const c = store.config;
    return {
      ok: true,
      model: {
        url: model ?? null,
        layers: c.numLayers,
        hidden: c.hiddenSize,
        heads: c.numHeads,
        kvHeads: c.numKvHeads,
        vocab: c.vocabSize,
      },
      kernels: variant,
      method,
      optimizer,
      seqLen,
      step: result.step,
      steps,
      done: !result.paused,
      losses: result.history.map((p) => p.loss),
      loadSeconds: loadS,
      stepSeconds,
      memory: {
        budgetBytes: budget,
        arenaLimitBytes: arena.limit,
        workingSetBytes: m.workingSetBytes,
        wasmHighWaterBytes: m.wasmHighWaterBytes,
        wasmCommittedBytes: m.wasmCommittedBytes,
        cacheBytes: cache.bytesHeld(),
        jsBytesHeld: m.jsBytesHeld,
      },
      // Only the invocation that reaches `steps` writes the adapter.
      adapter: weights && configJson
        ? {
          config: JSON.parse(new TextDecoder().decode(configJson)),
          safetensorsBytes: weights.byteLength,
          sha256: await sha256(weights),
          ...(params.get("adapter") === "1" ? { safetensorsBase64: base64(weights) } : {}),
        }
        : null,
    };
  } finally {
    await store.close();
  }
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The bindings the worker needs. */
export interface WorkerEnv {
  /** The compiled kernel module (relaxed-SIMD or simd128 build from `wasm/`). */
  KERNELS: WebAssembly.Module;
  /** Where `run=` keeps its state between invocations: a Workers KV namespace, */
  STATE_KV?: KvNamespaceLike;
  /** or an R2 bucket, */
  STATE_R2?: R2BucketLike;
  /** or an HTTP service answering GET and PUT of `/<key>` (workerd's writable disk service). */
  STATE?: FetcherLike;
}

/** The worker's state store, from whichever binding it was given. */
function stateStoreOf(env: WorkerEnv): RunStateStore | null {
  if (env.STATE_KV) return kvRunStateStore(env.STATE_KV);
  if (env.STATE_R2) return r2RunStateStore(env.STATE_R2);
  if (env.STATE) return fetchRunStateStore(env.STATE);
  return null;
}

export default {
  async fetch(request: Request, env: WorkerEnv): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/") {
      return new Response(
        "slimtune edge worker: GET /finetune?model=<checkpoint base URL>&steps=2\n",
        { headers: { "content-type": "text/plain" } },
      );
    }
    if (url.pathname !== "/finetune") return json({ ok: false, error: "not found" }, 404);
    try {
      if (!(env?.KERNELS instanceof WebAssembly.Module)) {
        throw new TypeError("env.KERNELS must be the compiled kernel WebAssembly.Module");
      }
      return json(await finetune(url.searchParams, env.KERNELS, stateStoreOf(env)));
    } catch (e) {
      const err = e as Error;
      return json({ ok: false, error: `${err.name}: ${err.message}` }, 500);
    }
  },
};
