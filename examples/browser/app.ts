/// <reference lib="dom" />
/**
 * The browser page's script (bundled to `app.js` by `serve.ts` with `deno bundle`): fine-tunes a
 * LoRA adapter in the tab, draws the loss live, and offers the PEFT adapter for download.
 *
 * The model is either a tiny random Qwen2-shaped checkpoint made in the page (bytes in memory) or
 * a local checkpoint folder picked with `<input type=file webkitdirectory>`, opened through
 * `blobFiles`: every read is a `Blob.slice`, so a checkpoint is never loaded whole into memory.
 *
 * For tests the page exposes its progress on `globalThis.slimtuneDemo` and on
 * `document.body.dataset.state` (`ready` → `training` → `done` | `error`).
 *
 * @module
 */
import {
  BatchSource,
  blobFiles,
  createTokenizer,
  createTrainingSession,
  encodeAdapter,
  loadKernels,
  type LoraConfig,
  memoryFiles,
  memoryReport,
  type MethodName,
  openModel,
  runTraining,
  type TokenizedExample,
} from "../../mod.ts";
import { lossCurveSvg } from "../../src/train/loss_svg.ts";
import {
  byteRows,
  randomCheckpointFiles,
  type RandomModelShape,
} from "../shared/random_checkpoint.ts";

/** The demo model: Qwen2 architecture, hidden 128, 4 layers, 4/2 heads, byte-level vocab. */
const DEMO_SHAPE: RandomModelShape = {
  architecture: "qwen2",
  hiddenSize: 128,
  intermediateSize: 384,
  numLayers: 4,
  numHeads: 4,
  numKvHeads: 2,
  vocabSize: 512,
};
const TARGETS: LoraConfig["targets"] = ["q", "k", "v", "o", "gate", "up", "down"];

interface DemoState {
  state: "ready" | "training" | "done" | "error";
  losses: number[];
  error: string | null;
  adapterBytes: number;
  workingSetBytes: number;
}

const demo: DemoState = {
  state: "ready",
  losses: [],
  error: null,
  adapterBytes: 0,
  workingSetBytes: 0,
};
(globalThis as unknown as { slimtuneDemo: DemoState }).slimtuneDemo = demo;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const statusEl = $<HTMLDivElement>("status");
const chartEl = $<HTMLDivElement>("chart");
const trainBtn = $<HTMLButtonElement>("train");
const downloadBtn = $<HTMLButtonElement>("download");
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
const nextFrame = () => new Promise<void>((r) => setTimeout(r, 0));

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

async function train(): Promise<void> {
  trainBtn.disabled = true;
  downloadBtn.disabled = true;
  adapter = null;
  demo.losses = [];
  setState("training");
  const num = (id: string) => Number($<HTMLInputElement>(id).value);
  const steps = num("steps"), lr = num("lr"), seqLen = num("seq"), rank = num("rank");
  const method = $<HTMLSelectElement>("method").value as MethodName;
  const text = $<HTMLTextAreaElement>("text").value;
  const useFolder =
    (document.querySelector("input[name=source]:checked") as HTMLInputElement).value ===
      "folder";

  const { kernels, arena, variant } = await loadKernels();
  say(`kernels: ${variant} (crossOriginIsolated: ${globalThis.crossOriginIsolated})`);

  let baseModel = "slimtune-browser-demo (random-weight Qwen2-shaped model)";
  let source;
  let tokenize: (t: string) => TokenizedExample[] = (t) => byteRows(t, seqLen);
  if (useFolder) {
    const files = folderFiles();
    if (!files.has("config.json")) throw new Error("the folder has no config.json");
    source = blobFiles("folder", files);
    baseModel = $<HTMLInputElement>("folder").files![0].webkitRelativePath.split("/")[0];
    const tj = files.get("tokenizer.json"), tc = files.get("tokenizer_config.json");
    if (tj) {
      const tok = createTokenizer(
        JSON.parse(await tj.text()),
        tc ? JSON.parse(await tc.text()) : {},
      );
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
  const rows = tokenize(text.repeat(Math.max(1, Math.ceil((2 * seqLen) / text.length))));
  if (rows.length === 0) throw new Error("the training text is too short");
  const session = await createTrainingSession({
    store,
    kernels,
    arena,
    method,
    seed: 1,
    maxGradNorm: 1,
    lora: { rank, alpha: 2 * rank, targets: TARGETS },
    optimizer: { kind: "adamw", lr, weightDecay: 0 },
  });
  const info = { r: rank, alpha: 2 * rank, targets: TARGETS, baseModel };
  const memory = () => memoryReport({ arenas: arena, jsBytesHeld: session.memory().jsBytes });
  const result = await runTraining({
    session,
    train: new BatchSource(rows, { batchSize: 1, seqLen, padId: 0, seed: 0 }),
    evalBatches: [],
    steps,
    gradAccum: 1,
    schedule: { kind: "constant", baseLr: lr, warmupSteps: 0 },
    evalEvery: 0,
    saveEvery: 0,
    padId: 0,
    adapter: info,
    args: {},
    memory,
    onStep: async (r) => {
      demo.losses.push(r.loss!);
      demo.workingSetBytes = r.workingSetBytes;
      chartEl.innerHTML = lossCurveSvg(
        demo.losses.map((loss, i) => ({ step: i + 1, loss })),
        { title: `${method}: step ${r.step}/${steps}, loss ${r.loss!.toFixed(4)}` },
      );
      if (r.step === 1 || r.step % 10 === 0 || r.step === steps) {
        say(
          `step ${r.step}: loss ${r.loss!.toFixed(4)}, ${r.tokensPerS.toFixed(0)} tok/s, ` +
            `working set ${mb(r.workingSetBytes)}`,
        );
      }
      await nextFrame(); // let the tab paint the chart
    },
  });
  adapter = encodeAdapter(session.loraTensors(), info);
  demo.adapterBytes = adapter.safetensors.byteLength;
  await store.close();
  const h = result.history;
  say(
    `done: loss ${h[0].loss.toFixed(4)} -> ${h[h.length - 1].loss.toFixed(4)}; adapter ` +
      `${mb(adapter.safetensors.byteLength)}; ${mb(memory().workingSetBytes)} working set`,
  );
  downloadBtn.disabled = false;
  setState("done");
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
  train().catch((e) => {
    demo.error = String((e as Error).stack ?? e);
    say(`error: ${(e as Error).message}`);
    setState("error");
  }).finally(() => {
    trainBtn.disabled = false;
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

chartEl.innerHTML = lossCurveSvg([], { title: "training loss (press Train)" });
say("ready: press Train");
setState("ready");
