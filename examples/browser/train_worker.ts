/**
 * The browser page's training worker (bundled to `train_worker.js` by `serve.ts`, started by
 * `app.ts` as a module Worker): loads the kernels with `threads` (multi-core: a dedicated worker
 * may block in Atomics.wait, a page's main thread may not), opens the model, fine-tunes a LoRA
 * adapter, streams every step to the page with `postMessage`, and hands back the PEFT adapter.
 *
 * One worker per run: the page posts one {@link TrainRequest}, gets `info`/`log`/`step` messages,
 * then `done` (the adapter files, buffer transferred) or `error`, and terminates the worker.
 *
 * The model is either the tiny random Qwen2-shaped demo checkpoint (made here, bytes in memory)
 * or the local folder's `File`s the page posted (structured clone keeps them as Blobs, read by
 * `Blob.slice` through `blobFiles`: a checkpoint is never loaded whole).
 *
 * @module
 */
import {
  ADAPTER_FILES,
  blobFiles,
  type LoadedKernels,
  loadKernels,
  type LoraConfig,
  memoryFiles,
  memoryRunHost,
  type MethodName,
  openModel,
  presetModelConfig,
  readTokenizer,
  runFineTune,
  threadsUnavailableReason,
  type TokenizedExample,
  urlFiles,
} from "../../mod.ts";
import {
  byteRows,
  randomCheckpointFiles,
  type RandomModelShape,
  randomModelShape,
} from "../shared/random_checkpoint.ts";

/** The demo model's shape (Qwen2 architecture, hidden 128, 4 layers, 4/2 heads), byte-level vocab. */
const DEMO_SHAPE: RandomModelShape = randomModelShape(
  presetModelConfig("slimtune-demo", { vocabSize: 512 }),
);
/** The LoRA targets of the demo. */
export const TARGETS: LoraConfig["targets"] = ["q", "k", "v", "o", "gate", "up", "down"];

/** What the page asks for (the one message a training worker gets). */
export interface TrainRequest {
  type: "train";
  method: MethodName;
  steps: number;
  lr: number;
  seqLen: number;
  rank: number;
  /** Kernel threads to ask for (the worker included). */
  threads: number;
  /** Keep only as many of `threads` as measurably speed the kernels up (the page's default). */
  fitThreads?: boolean;
  /** Multiply-adds from which a kernel call is split (absent: measured at load). */
  minParallelWork?: number;
  /** The kernel build (absent: relaxed where the engine has relaxed SIMD, else simd128). */
  variant?: "relaxed" | "simd";
  text: string;
  /** A local checkpoint folder: files by name inside it, and its name. */
  folder?: { name: string; files: Map<string, File> };
  /** A checkpoint's base URL (config.json and safetensors next to it), read by Range requests. */
  url?: string;
}

/** What a training worker posts back. */
export type TrainMessage =
  | {
    type: "info";
    variant: string;
    /** Threads the kernels compute with (1 where workers or SharedArrayBuffer are missing). */
    threads: number;
    /** Why fewer threads than asked run (null when all run). */
    threadsNote: string | null;
    /** How calls are split over the threads (LoadedKernels.parallel; null on one thread). */
    parallel: ParallelSettings | null;
    crossOriginIsolated: boolean;
    hardwareConcurrency: number;
  }
  | { type: "log"; line: string }
  | {
    type: "step";
    step: number;
    steps: number;
    loss: number;
    /** Tokens/s over the steps since step 1 ended (step 1: its own, warm-up included). */
    tokensPerS: number;
    /** Optimizer steps per second since step 1 ended (0 at step 1). */
    stepsPerS: number;
    workingSetBytes: number;
  }
  | {
    type: "done";
    configJson: string;
    safetensors: Uint8Array;
    firstLoss: number;
    lastLoss: number;
    stepsPerS: number;
    tokensPerS: number;
    workingSetBytes: number;
  }
  | { type: "error"; message: string; stack: string };

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<TrainRequest>) => void) | null;
  postMessage(m: TrainMessage, transfer?: Transferable[]): void;
};
/** The worker's `crossOriginIsolated` (absent outside browsers: false). */
const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
const post = (m: TrainMessage, transfer: Transferable[] = []) => scope.postMessage(m, transfer);
const say = (line: string) => post({ type: "log", line });
const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

/** The kernels' split settings (what `loadKernels` measured and chose). */
export type ParallelSettings = NonNullable<LoadedKernels["parallel"]>;

/** "calls split from 0.26M multiply-adds (round trip 0.6 µs, wake 45 µs; measured)". */
export function splitText(p: ParallelSettings): string {
  const us = (x: number) => Number.isFinite(x) ? `${x.toFixed(x < 10 ? 1 : 0)} µs` : "–";
  return `calls split from ${(p.minWork / 1e6).toFixed(2)}M multiply-adds ` +
    `(round trip ${us(p.roundTripUs)}, wake ${us(p.wakeUs)}; ${p.source})`;
}

async function train(req: TrainRequest): Promise<void> {
  const { steps, lr, seqLen, rank, method } = req;
  const loaded = await loadKernels({
    threads: Math.max(1, Math.floor(req.threads)),
    minParallelWork: req.minParallelWork,
    variant: req.variant,
    fitThreads: req.fitThreads,
  });
  const { kernels, arena, variant, threads, parallel } = loaded;
  try {
    const speedups = loaded.threadSpeedups;
    const threadsNote = threads >= req.threads
      ? null
      : speedups
      ? `more threads measured no faster (a GEMM on 1..${speedups.length}: ` +
        `${speedups.map((x) => `${x.toFixed(2)}x`).join(", ")})`
      : threadsUnavailableReason() ??
        "the kernel workers could not start (a Content-Security-Policy without blob: workers?)";
    post({
      type: "info",
      variant,
      threads,
      threadsNote,
      parallel,
      crossOriginIsolated: isolated,
      hardwareConcurrency: navigator.hardwareConcurrency ?? 1,
    });
    const threadsText = `${threads} thread${threads === 1 ? "" : "s"}`;
    say(
      `kernels: ${variant}, ${threadsText} ` +
        `(asked ${req.threads}; crossOriginIsolated: ${isolated})` +
        (parallel ? `; ${splitText(parallel)}` : "") +
        (threadsNote ? `; ${threadsText} of ${req.threads} asked because ${threadsNote}` : ""),
    );

    let baseModel = "slimtune-browser-demo (random-weight Qwen2-shaped model)";
    let source;
    let tokenize: (t: string) => TokenizedExample[] = (t) => byteRows(t, seqLen);
    if (req.folder) {
      const files = req.folder.files;
      if (!files.has("config.json")) throw new Error("the folder has no config.json");
      source = blobFiles("folder", files);
      baseModel = req.folder.name;
      const tj = files.get("tokenizer.json"), tc = files.get("tokenizer_config.json");
      if (tj) {
        const tok = await readTokenizer({
          tokenizerJson: tj.stream(),
          tokenizerConfig: tc?.stream() ?? null,
          name: req.folder.name,
        });
        tokenize = (t) => {
          const ids = Int32Array.from(tok.encode(t, true));
          const rows: TokenizedExample[] = [];
          for (let i = 0; i + 2 <= ids.length; i += seqLen) {
            const r = ids.slice(i, i + seqLen);
            rows.push({ inputIds: r, labels: r.slice() });
          }
          return rows;
        };
        say(`tokenizer: tokenizer.json (${tok.vocabSize} tokens)`);
      }
    } else if (req.url) {
      source = urlFiles(req.url);
      baseModel = req.url;
    } else {
      source = memoryFiles("demo", randomCheckpointFiles(DEMO_SHAPE, 2025));
    }
    const t0 = performance.now();
    const store = await openModel({ source, quant: "int4", kernels, arena });
    const c = store.config;
    say(
      `model: ${baseModel}: ${c.architecture}, ${c.numLayers} layers, hidden ${c.hiddenSize}, ` +
        `vocab ${c.vocabSize}, int4, loaded in ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    const text = req.text;
    const rows = tokenize(text.repeat(Math.max(1, Math.ceil((2 * seqLen) / text.length))));
    if (rows.length === 0) throw new Error("the training text is too short");
    const info = { r: rank, alpha: 2 * rank, targets: TARGETS, baseModel };
    let tStart = 0;
    let stepsPerS = 0;
    let tokensPerS = 0;
    let tokensSince = 0;
    // The library's run pipeline; this page is its host: no data files, the adapter kept in memory.
    const host = memoryRunHost(say);
    const result = await runFineTune(host, {
      store,
      kernels,
      arena,
      adapter: info,
      session: {
        method,
        seed: 1,
        maxGradNorm: 1,
        optimizer: { kind: "adamw", lr, weightDecay: 0 },
      },
      train: rows,
      batchSize: 1,
      seqLen,
      steps,
      out: "",
      onStep: (r) => {
        const now = performance.now();
        // Steps/s from the end of step 1 (its time includes the first-call warm-up).
        if (r.step === 1) {
          tStart = now;
          tokensPerS = r.tokensPerS;
        } else {
          tokensSince += r.tokens;
          stepsPerS = (r.step - 1) / ((now - tStart) / 1000);
          tokensPerS = tokensSince / ((now - tStart) / 1000);
        }
        post({
          type: "step",
          step: r.step,
          steps,
          loss: r.loss!,
          tokensPerS,
          stepsPerS,
          workingSetBytes: r.workingSetBytes,
        });
        if (r.step === 1 || r.step % 10 === 0 || r.step === steps) {
          say(
            `step ${r.step}: loss ${r.loss!.toFixed(4)}, ${r.tokensPerS.toFixed(0)} tok/s, ` +
              `working set ${mb(r.workingSetBytes)}`,
          );
        }
      },
    });
    await store.close();
    const h = result.history;
    const workingSetBytes = result.memory.workingSetBytes;
    const safetensors = host.files.get(ADAPTER_FILES.weights)!;
    const configJson = new TextDecoder().decode(host.files.get(ADAPTER_FILES.config));
    say(
      `done: loss ${h[0].loss.toFixed(4)} -> ${h[h.length - 1].loss.toFixed(4)}; ` +
        `${stepsPerS.toFixed(2)} steps/s, ${tokensPerS.toFixed(0)} tok/s on ${threadsText}; ` +
        `adapter ${mb(safetensors.byteLength)}; ${mb(workingSetBytes)} working set`,
    );
    // The host's own copy, transferred to the page.
    post({
      type: "done",
      configJson,
      safetensors,
      firstLoss: h[0].loss,
      lastLoss: h[h.length - 1].loss,
      stepsPerS,
      tokensPerS,
      workingSetBytes,
    }, [safetensors.buffer]);
  } finally {
    loaded.close();
  }
}

scope.onmessage = (e) => {
  scope.onmessage = null; // one run per worker
  train(e.data).catch((err) => {
    const error = err as Error;
    post({
      type: "error",
      message: String(error?.message ?? err),
      stack: String(error?.stack ?? err),
    });
  });
};
