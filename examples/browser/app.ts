/// <reference lib="dom" />
/**
 * The browser page's script (bundled to `app.js` by `serve.ts` with `deno bundle`): the UI. The
 * training itself runs in a dedicated module Worker (`train_worker.ts`, bundled to
 * `train_worker.js`), one per run, so the kernels may use every core (a worker may block in
 * Atomics.wait; the page's main thread may not) and the page stays responsive. The worker
 * streams its steps here (the live loss chart) and hands back the PEFT adapter for download.
 *
 * The model is either a tiny random Qwen2-shaped checkpoint made in the worker (bytes in memory)
 * or a local checkpoint folder picked with `<input type=file webkitdirectory>`: its `File`s are
 * posted to the worker, which reads them by `Blob.slice` (a checkpoint is never loaded whole).
 *
 * For tests the page exposes its progress on `globalThis.slimtuneDemo` and on
 * `document.body.dataset.state` (`ready` → `training` → `done` | `error`). `?minWork=N` in the
 * page's URL fixes the kernels' split threshold (multiply-adds) instead of the one they measure at
 * load (to compare; `?minWork=0` splits every call); `?variant=simd` (or `relaxed`) picks the
 * kernel build, so that engines can be compared on the same build. The request of the last run is
 * `slimtuneDemo.request` and its adapter files `slimtuneDemo.adapterFiles()` (safetensors as
 * base64), for drivers that cannot catch downloads.
 *
 * A third source is a checkpoint URL (`config.json` and safetensors next to it), streamed with
 * HTTP Range requests.
 *
 * @module
 */
import { lossCurveSvg } from "../../src/train/loss_svg.ts";
import type { MethodName } from "../../mod.ts";
import type { ParallelSettings, TrainMessage, TrainRequest } from "./train_worker.ts";

interface DemoState {
  state: "ready" | "training" | "done" | "error";
  /** Runs finished (done or error). */
  runs: number;
  losses: number[];
  error: string | null;
  adapterBytes: number;
  workingSetBytes: number;
  /** The page's `crossOriginIsolated` and the training worker's. */
  crossOriginIsolated: boolean;
  workerCrossOriginIsolated: boolean | null;
  /** `navigator.hardwareConcurrency` (the default of the threads field and its cap). */
  hardwareConcurrency: number;
  /** Threads asked of the kernels and the threads they compute with (null before a run). */
  threadsAsked: number | null;
  threads: number | null;
  /** Why fewer threads than asked run (null when all run, or before a run). */
  threadsNote: string | null;
  /** The last run's request (a folder's files left out). */
  request: Omit<TrainRequest, "folder"> | null;
  /** The last run's adapter: its config JSON and safetensors bytes as base64 (null before). */
  adapterFiles(): { configJson: string; safetensorsBase64: string } | null;
  /** How the kernels split calls (threshold, measured round trips); null on one thread. */
  parallel: ParallelSettings | null;
  variant: string | null;
  stepsPerS: number;
  tokensPerS: number;
  /** Longest gap (ms) between 50 ms heartbeats on the main thread during the last run. */
  maxMainThreadGapMs: number;
}

// What the engine says, not the cores: WebKitGTK reports 4 on a 2-core machine (WebKit clamps
// the value it exposes rather than reveal the count), so it is only the threads field's default
// and cap, and the page calls it hardwareConcurrency, not cores. Threads beyond the cores cost
// speed, never results (split calls are bit-identical), and the measured split threshold keeps
// calls that would not gain on one thread.
const hardwareConcurrency = Math.max(1, navigator.hardwareConcurrency || 1);
const demo: DemoState = {
  state: "ready",
  runs: 0,
  losses: [],
  error: null,
  adapterBytes: 0,
  workingSetBytes: 0,
  crossOriginIsolated: globalThis.crossOriginIsolated === true,
  workerCrossOriginIsolated: null,
  hardwareConcurrency,
  threadsAsked: null,
  threads: null,
  threadsNote: null,
  request: null,
  adapterFiles() {
    if (!adapter) return null;
    let bin = "";
    const b = adapter.safetensors;
    for (let i = 0; i < b.length; i += 0x8000) {
      bin += String.fromCharCode(...b.subarray(i, i + 0x8000));
    }
    return { configJson: adapter.configJson, safetensorsBase64: btoa(bin) };
  },
  parallel: null,
  variant: null,
  stepsPerS: 0,
  tokensPerS: 0,
  maxMainThreadGapMs: 0,
};
(globalThis as unknown as { slimtuneDemo: DemoState }).slimtuneDemo = demo;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const statusEl = $<HTMLDivElement>("status");
const chartEl = $<HTMLDivElement>("chart");
const trainBtn = $<HTMLButtonElement>("train");
const downloadBtn = $<HTMLButtonElement>("download");
const threadsIn = $<HTMLInputElement>("threads");
const threadsEl = $<HTMLSpanElement>("kernel-threads");
const progressEl = $<HTMLSpanElement>("progress");
const lines: string[] = [];

function say(line: string): void {
  lines.push(line);
  statusEl.textContent = lines.slice(-12).join("\n");
}

function setState(s: DemoState["state"]): void {
  demo.state = s;
  document.body.dataset.state = s;
}

const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

function showThreads(): void {
  const iso = demo.crossOriginIsolated ? "cross-origin isolated" : "NOT cross-origin isolated";
  threadsEl.textContent = demo.threads === null
    ? `kernel threads: – (hardwareConcurrency ${hardwareConcurrency}; ${iso})`
    : `kernel threads: ${demo.threads} of ${demo.threadsAsked} asked ` +
      `(hardwareConcurrency ${hardwareConcurrency}; ${demo.variant} kernels; ${iso})` +
      (demo.parallel ? `; split from ${(demo.parallel.minWork / 1e6).toFixed(2)}M MACs` : "") +
      (demo.threadsNote ? `; only ${demo.threads} because ${demo.threadsNote}` : "");
  threadsEl.dataset.threads = String(demo.threads ?? "");
}

/** `?minWork=N` in the page's URL: the kernels' split threshold (default: measured at load). */
function minParallelWork(): number | undefined {
  const v = new URL(location.href).searchParams.get("minWork");
  return v === null || v === "" ? undefined : Number(v);
}

/** `?variant=simd|relaxed` in the page's URL: the kernel build (default: the best here). */
function kernelVariant(): "relaxed" | "simd" | undefined {
  const v = new URL(location.href).searchParams.get("variant");
  if (v === null || v === "") return undefined;
  if (v !== "relaxed" && v !== "simd") throw new Error(`?variant=${v}: want relaxed or simd`);
  return v;
}

/** The picked folder's files by name inside the checkpoint (the top folder name dropped). */
function folderFiles(): Map<string, File> {
  const input = $<HTMLInputElement>("folder");
  const map = new Map<string, File>();
  for (const f of Array.from(input.files ?? [])) {
    const rel = f.webkitRelativePath || f.name;
    map.set(rel.includes("/") ? rel.slice(rel.indexOf("/") + 1) : rel, f);
  }
  return map;
}

let adapter: { configJson: string; safetensors: Uint8Array } | null = null;

/** One run in a fresh training worker; resolves when it is done (rejects on its error). */
async function train(): Promise<void> {
  adapter = null;
  demo.losses = [];
  demo.error = null;
  demo.stepsPerS = 0;
  demo.tokensPerS = 0;
  demo.threads = null;
  demo.threadsNote = null;
  demo.parallel = null;
  demo.variant = null;
  demo.workerCrossOriginIsolated = null;
  progressEl.textContent = "starting the training worker…";
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const threadsAsked = Math.min(hardwareConcurrency, Math.max(1, Math.floor(num("threads")) || 1));
  demo.threadsAsked = threadsAsked;
  showThreads();
  const req: TrainRequest = {
    type: "train",
    steps: num("steps"),
    lr: num("lr"),
    seqLen: num("seq"),
    rank: num("rank"),
    threads: threadsAsked,
    // The field's default: as many as measurably help; a number typed in is taken as asked.
    fitThreads: !threadsTyped,
    minParallelWork: minParallelWork(),
    variant: kernelVariant(),
    method: $<HTMLSelectElement>("method").value as MethodName,
    text: $<HTMLTextAreaElement>("text").value,
  };
  demo.request = { ...req };
  const source = (document.querySelector("input[name=source]:checked") as HTMLInputElement).value;
  if (source === "url") {
    req.url = new URL($<HTMLInputElement>("url").value, location.href).href;
    demo.request.url = req.url;
  }
  if (source === "folder") {
    const files = folderFiles();
    if (!files.has("config.json")) throw new Error("the folder has no config.json");
    const name = $<HTMLInputElement>("folder").files![0].webkitRelativePath.split("/")[0];
    req.folder = { name, files };
  }

  // Heartbeat: how long the main thread ever went without running a 50 ms timer.
  demo.maxMainThreadGapMs = 0;
  let last = performance.now();
  const beat = setInterval(() => {
    const now = performance.now();
    demo.maxMainThreadGapMs = Math.max(demo.maxMainThreadGapMs, now - last - 50);
    last = now;
  }, 50);

  const worker = new Worker(new URL("./train_worker.js", location.href), {
    type: "module",
    name: "slimtune-train",
  });
  // The progress line and the chart are redrawn at most every 100 ms, however fast the steps
  // come (100+ a second): each redraw is a style, layout and paint of the page (an SVG parse for
  // the chart), main-thread and raster work that on a 2-core machine competes with the kernel
  // threads for the cores.
  let lastStep: TrainMessage & { type: "step" } | null = null;
  let drawTimer: ReturnType<typeof setTimeout> | undefined;
  const draw = () => {
    drawTimer = undefined;
    const m = lastStep;
    if (!m) return;
    progressEl.textContent = `step ${m.step}/${m.steps} · loss ${m.loss.toFixed(4)} · ` +
      `${m.tokensPerS.toFixed(0)} tok/s · ${m.stepsPerS.toFixed(2)} steps/s · ` +
      `${demo.threads} thread(s) · working set ${mb(m.workingSetBytes)}`;
    chartEl.innerHTML = lossCurveSvg(
      demo.losses.map((loss, i) => ({ step: i + 1, loss })),
      {
        title: `${req.method}: step ${m.step}/${m.steps}, loss ${m.loss.toFixed(4)}, ` +
          `${m.tokensPerS.toFixed(0)} tok/s on ${demo.threads} thread(s)`,
      },
    );
  };
  const drawSoon = () => drawTimer ??= setTimeout(draw, 100);
  return await new Promise<void>((resolve, reject) => {
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`training worker: ${e.message || "failed to start"}`));
    };
    worker.onmessageerror = () => reject(new Error("training worker: unreadable message"));
    worker.onmessage = (e: MessageEvent<TrainMessage>) => {
      const m = e.data;
      switch (m.type) {
        case "info":
          demo.threads = m.threads;
          demo.threadsNote = m.threadsNote;
          demo.parallel = m.parallel;
          demo.variant = m.variant;
          demo.workerCrossOriginIsolated = m.crossOriginIsolated;
          showThreads();
          break;
        case "log":
          say(m.line);
          break;
        case "step":
          demo.losses.push(m.loss);
          demo.workingSetBytes = m.workingSetBytes;
          demo.tokensPerS = m.tokensPerS;
          demo.stepsPerS = m.stepsPerS;
          lastStep = m;
          drawSoon();
          break;
        case "done":
          clearTimeout(drawTimer);
          draw(); // the last step, now
          adapter = { configJson: m.configJson, safetensors: m.safetensors };
          demo.adapterBytes = m.safetensors.byteLength;
          demo.stepsPerS = m.stepsPerS;
          demo.tokensPerS = m.tokensPerS;
          demo.workingSetBytes = m.workingSetBytes;
          resolve();
          break;
        case "error": {
          const err = new Error(m.message);
          err.stack = m.stack;
          reject(err);
          break;
        }
      }
    };
    worker.postMessage(req);
  }).finally(() => {
    clearInterval(beat);
    worker.terminate();
  });
}

function download(name: string, data: BlobPart, type: string): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

trainBtn.addEventListener("click", () => {
  trainBtn.disabled = true;
  downloadBtn.disabled = true;
  setState("training");
  train().then(() => {
    downloadBtn.disabled = false;
    setState("done");
  }, (e) => {
    demo.error = String((e as Error).stack ?? e);
    say(`error: ${(e as Error).message}`);
    setState("error");
  }).finally(() => {
    trainBtn.disabled = false;
    demo.runs++;
  });
});

downloadBtn.addEventListener("click", () => {
  if (!adapter) return;
  download("adapter_config.json", adapter.configJson, "application/json");
  download(
    "adapter_model.safetensors",
    adapter.safetensors as BlobPart,
    "application/octet-stream",
  );
});

/** Whether the user set the threads field (else its default is fitted to the measured gain). */
let threadsTyped = false;
threadsIn.addEventListener("input", () => (threadsTyped = true));
threadsIn.max = String(hardwareConcurrency);
threadsIn.value = String(hardwareConcurrency);
showThreads();
chartEl.innerHTML = lossCurveSvg([], { title: "training loss (press Train)" });
say(
  `ready: press Train (crossOriginIsolated: ${demo.crossOriginIsolated}, ` +
    `hardwareConcurrency ${hardwareConcurrency})`,
);
setState("ready");
