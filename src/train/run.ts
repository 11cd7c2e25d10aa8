/**
 * The run pipeline, portable: data -> session -> {@link runTraining} -> the final adapter, behind
 * a small {@link RunHost} (open a data file, write a file whole, a stop request, a clock, a log).
 * The Deno CLI (`cli.ts`), the browser page's worker and the edge worker are hosts of this one
 * pipeline; each opens the model its own way and hands over the store.
 *
 * A run can also be one slice of a longer one: with `stateStore` it resumes from the state the
 * last slice put, trains until `stopAfter` (steps or milliseconds), and puts the state back; the
 * slice that reaches `steps` writes the adapter. Slices give the bit-identical adapter of one run.
 *
 * @example
 * ```ts
 * import { memoryRunHost, runFineTune } from "./run.ts";
 * const host = memoryRunHost(console.log);
 * // await runFineTune(host, { store, kernels, arena, adapter, session, train: rows, ... });
 * // host.files.get("adapter_model.safetensors") holds the adapter.
 * ```
 */
import {
  BatchSource,
  evalBatches,
  type LoadedRows,
  loadRows,
  type PackingMode,
  paddedLength,
  type TokenizerRequest,
} from "../data/dataset.ts";
import type { Batch } from "../data/batch.ts";
import type { TokenizedExample } from "../data/example.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import type { LoraTensors } from "../model/lora.ts";
import { TokenRows } from "../data/token_rows.ts";
import type { Kernels } from "../kernels/abi.ts";
import { createTrainingSession, type SessionOptions } from "../methods/session.ts";
import type { ModelConfig } from "../model/config.ts";
import type { WeightStore } from "../model/weights.ts";
import type { ScheduleKind } from "../optim/schedule.ts";
import type { Arena } from "../runtime/arena.ts";
import { formatMB, type MemoryReport, memoryReport } from "../runtime/memory.ts";
import type { TrainingState } from "./run_state.ts";
import { lossCurveSvg } from "./loss_svg.ts";
import type { StepRecord } from "./metrics.ts";
import { type AdapterInfo, writeAdapterFiles } from "../io/peft_adapter.ts";
import { ADAPTER_FILES, type FileBytes } from "../io/peft_adapter.ts";
import { collectBytes, decodeRunState, type RunStateStore } from "./run_state_store.ts";
import { runTraining, type TrainResult } from "./trainer.ts";

export { ADAPTER_FILES };

/** A file's bytes: one buffer, or chunks produced as the writer pulls them. */
export type RunFileData = FileBytes;

/** What the pipeline needs from where it runs. */
export interface RunHost {
  /** The bytes of a JSONL data file (`role`: which of the run's files it is). */
  openData(path: string, role: "train" | "eval"): Promise<ReadableStream<Uint8Array>>;
  /** Writes a file whole or not at all (a temporary file and a rename, a KV put, a download). */
  writeFile(path: string, data: RunFileData): Promise<void>;
  /** One line for the user. */
  log(line: string): void;
  /** Polled between steps: true = save a checkpoint and stop (a signal, a Stop button). */
  stopRequested?(): boolean;
  /** Milliseconds (default `performance.now`). */
  now?(): number;
  /** The process's resident bytes now, where the host can tell. */
  processBytes?(): number | null;
  /** The process's peak resident bytes, where the host can tell. */
  processPeakBytes?(): number | null;
}

/** Training or evaluation data: a JSONL file the host opens, or rows already tokenized. */
export type RunData = string | TokenRows | readonly TokenizedExample[];

/** A bad run input; `field` names the {@link RunSpec} field (null: the run as a whole). */
export class RunInputError extends Error {
  constructor(readonly field: "train" | "steps" | null, message: string) {
    super(message);
    this.name = "RunInputError";
  }
}

/** What the data came to, for the memory check before the session is created. */
export interface RunDataReady {
  /** Tokens per training row (padded). */
  seqLen: number;
  /** Longest evaluation batch row (0 without evaluation data). */
  evalSeqLen: number;
  /** Bytes of rows held for the whole run (training rows and evaluation batches). */
  dataBytes: number;
  /** Whether the tokenizer was loaded for the data. */
  usedTokenizer: boolean;
  /** The adapter to be trained (after `adapterInit`). */
  adapter: AdapterInfo;
}

/** What the memory check chose. */
export interface RunMemoryChoice {
  /** Blocks (from the top) whose tapes mebp / mesp keep from the forward. */
  keptTapes?: number;
}

/** One run. */
export interface RunSpec {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  /** The adapter trained: rank, alpha, targets and the base model it names. */
  adapter: AdapterInfo;
  /** A starting adapter (its r, alpha and targets apply); ignored when the run resumes. */
  adapterInit?: (() => Promise<{ info: AdapterInfo; tensors: LoraTensors }>) | null;
  /** The session's options besides the model, the memory and the adapter. */
  session: Omit<SessionOptions, "store" | "kernels" | "arena" | "lora" | "gradAccum">;
  /** Training data (null: an evaluation-only run). */
  train: RunData | null;
  eval?: RunData | null;
  batchSize: number;
  /** Longest row (tokens); rows are padded to the longest one the data has, at most this. */
  seqLen: number;
  /** How examples of a file are packed into rows (default greedy). */
  packing?: PackingMode;
  /** Longest JSONL line read (bytes). */
  maxLineBytes?: number;
  /**
   * The data already read by {@link readRunData} from this spec's data fields (default: read
   * here, after the model was opened).
   */
  data?: ReadData | null;
  /** Builds the tokenizer the first time a line of a data file needs it (default: none). */
  tokenizer?: () => Promise<TextTokenizer | null>;
  /** Appended to the "tokenizer: loaded" line. */
  tokenizerHint?: string;
  /** Padding id where no tokenizer gives one (default 0). */
  padId?: number;
  /** Total optimizer steps of the run. */
  steps: number;
  gradAccum?: number;
  schedule?: { kind: ScheduleKind; baseLr: number; warmupSteps: number };
  evalEvery?: number;
  saveEvery?: number;
  /** The run's arguments (JSON-safe), stored in every checkpoint. */
  args?: Record<string, unknown>;
  /** Continue a checkpoint: `from` names it in the log, `read` loads it for the model. */
  resume?: { from: string; read: (config: ModelConfig) => Promise<TrainingState> } | null;
  /**
   * Resume from and pause into a {@link RunStateStore}: the state under `key` (if any) is
   * continued, and a pause (`stopAfter`) puts the state back under `key`.
   */
  stateStore?: { store: RunStateStore; key: string } | null;
  /** End this invocation after this many steps or about this many milliseconds. */
  stopAfter?: { steps?: number; ms?: number } | null;
  /** Folder (a path prefix for `host.writeFile`) of the final adapter; "" = no prefix. */
  out: string;
  /** Title of `loss.svg`, written beside the adapter (absent: no loss curve). */
  lossCurveTitle?: string;
  /** Stop when the working set goes over this (bytes). */
  maxWorkingSetBytes?: number | null;
  /** Stop with a checkpoint when the process's resident size goes over this (bytes). */
  maxProcessBytes?: number | null;
  /**
   * After the data is read, before the session is created: refuse a run that cannot fit, or
   * choose how many blocks keep their tapes within the budget (over `session.keptTapes`).
   */
  checkMemory?: (
    ready: RunDataReady,
  ) => Promise<RunMemoryChoice | void> | RunMemoryChoice | void;
  /** After the session is created (and resumed), before the first step. */
  beforeTraining?: () => Promise<void> | void;
  onStep?: (r: StepRecord, etaS: number) => void | Promise<void>;
  /** Persists a checkpoint (tensors may be views: see `TrainerOptions.save`). */
  save?: (state: TrainingState) => Promise<void>;
}

/** How a run ended. */
export interface RunResult extends TrainResult {
  /** The adapter trained (after `adapterInit` or a resume). */
  adapter: AdapterInfo;
  /** Paths written through `host.writeFile`: the adapter (and `loss.svg`) once the run ends. */
  files: string[];
  /** The memory figures after the final save. */
  memory: MemoryReport;
  /** The memory figures now, for a host that keeps using the session after the run. */
  readMemory: () => MemoryReport;
  /** The session trained, still open (for an evaluation after the run). */
  session: Awaited<ReturnType<typeof createTrainingSession>>;
  /** The evaluation batches the run scored. */
  evalBatches: Batch[];
}

/** The loss curve's file name beside the adapter. */
export const LOSS_CURVE_FILE = "loss.svg";

/**
 * The model's tokenizer, built at most once and only when asked for: pre-tokenized data never
 * needs it, and a built Qwen2.5 tokenizer costs more process memory than a small model's step.
 */
class TokenizerOnDemand {
  #load: (() => Promise<TextTokenizer | null>) | null;
  #tokenizer: TextTokenizer | null = null;

  constructor(load: (() => Promise<TextTokenizer | null>) | null) {
    this.#load = load;
  }

  /** The tokenizer if it was loaded (and not released yet), else null. */
  get loaded(): TextTokenizer | null {
    return this.#tokenizer;
  }

  /** Loads the tokenizer on the first call; null when there is none. */
  async get(): Promise<TextTokenizer | null> {
    if (this.#load) {
      const load = this.#load;
      this.#load = null;
      this.#tokenizer = await load();
    }
    return this.#tokenizer;
  }

  /**
   * Frees the tokenizer once the data is tokenized: nothing after data loading uses it, and
   * releasing its tables hands their memory back now, before the session and the steps allocate,
   * rather than at a collection that may never come. What the parse or the tokenizing grew the
   * JS heap by stays; pre-tokenized data (tools/pretokenize.ts) avoids that too.
   */
  release(): void {
    this.#load = null;
    this.#tokenizer?.release?.();
    this.#tokenizer = null;
  }
}

/** ", +N MB of process memory" when the resident size grew from `before` to `after`, else "". */
export function tokenizerCostNote(before: number | null, after: number | null): string {
  return before !== null && after !== null && after > before
    ? `, +${formatMB(after - before)} of process memory`
    : "";
}

/** "1 step", "2 steps". */
export function countNoun(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

/** A run's data, read by {@link readRunData}. */
export interface ReadData {
  train: BatchSource | null;
  seqLen: number;
  evalSet: Batch[];
  padId: number;
  dataBytes: number;
  usedTokenizer: boolean;
}

/** What {@link readRunData} reads from: the data fields of a {@link RunSpec}. */
export type RunDataSpec =
  & Pick<
    RunSpec,
    | "train"
    | "eval"
    | "batchSize"
    | "seqLen"
    | "packing"
    | "maxLineBytes"
    | "tokenizer"
    | "tokenizerHint"
    | "padId"
    | "steps"
  >
  & { session: { seed: number } };

/**
 * Reads the data once, straight into rows: a file's lines are tokenized and packed as they are
 * read; the tokenizer is loaded at the first line that needs it and released once all is read.
 * `runFineTune` calls it; a host that calls it first, before it opens the model, and hands the
 * result over as `RunSpec.data` keeps the tokenizer's tables and the tokenizing off the weights'
 * memory (their peaks do not add up).
 */
export async function readRunData(
  host: Pick<RunHost, "openData" | "log" | "processBytes">,
  spec: RunDataSpec,
  vocabSize: number,
): Promise<ReadData> {
  const tokenizer = new TokenizerOnDemand(spec.tokenizer ?? null);
  const load = async ({ kind, file, line }: TokenizerRequest) => {
    const before = host.processBytes?.() ?? null;
    const tok = await tokenizer.get();
    if (!tok) return null;
    // What the tokenizer costs is worth saying: it can be more than the whole training step.
    const cost = tokenizerCostNote(before, host.processBytes?.() ?? null);
    host.log(
      `tokenizer: loaded for "${kind}" data (${file}:${line})${cost}${spec.tokenizerHint ?? ""}`,
    );
    return tok;
  };
  const read = async (
    data: RunData,
    role: "train" | "eval",
    packing: PackingMode,
  ): Promise<LoadedRows | null> => {
    if (typeof data !== "string") return null;
    return await loadRows(await host.openData(data, role), data, {
      tokenizer: tokenizer.loaded,
      loadTokenizer: load,
      vocabSize,
      seqLen: spec.seqLen,
      packing,
      maxLineBytes: spec.maxLineBytes,
    });
  };
  try {
    const trainData = spec.steps > 0 ? spec.train : null;
    const packed = trainData === null
      ? null
      : await read(trainData, "train", spec.packing ?? "greedy");
    const evalFile = spec.eval ? await read(spec.eval, "eval", "none") : null;
    // With a tokenizer, its pad id; without one any id in the vocabulary will do.
    const padId = tokenizer.loaded?.padTokenId ?? spec.padId ?? 0;
    const out: ReadData = {
      train: null,
      seqLen: spec.seqLen,
      evalSet: [],
      padId,
      dataBytes: 0,
      usedTokenizer: tokenizer.loaded !== null,
    };
    if (trainData !== null) {
      const rows = packed ? packed.rows : trainData as TokenRows | readonly TokenizedExample[];
      const length = rows instanceof TokenRows ? rows.length : rows.length;
      if (length === 0) {
        throw new RunInputError(
          null,
          typeof trainData === "string"
            ? `${trainData}: no example has a token to train on within --seq-len`
            : "no training rows given",
        );
      }
      out.seqLen = paddedLength(rows, spec.seqLen);
      out.train = new BatchSource(rows, {
        batchSize: spec.batchSize,
        seqLen: out.seqLen,
        padId,
        seed: spec.session.seed,
      });
      out.dataBytes += out.train.rows.bytesHeld;
      if (packed) {
        host.log(
          `data: ${countNoun(packed.examples, "example")} -> ${
            countNoun(packed.rows.length, "row")
          } ` +
            `of <= ${out.seqLen} tokens` +
            (packed.truncated ? `, ${packed.truncated} truncated` : "") +
            (packed.dropped ? `, ${packed.dropped} dropped (nothing to train on)` : ""),
        );
      }
    }
    if (spec.eval) {
      const rows = evalFile ? evalFile.rows : spec.eval as TokenRows | readonly TokenizedExample[];
      out.evalSet = evalBatches(rows, spec.batchSize, paddedLength(rows, spec.seqLen), padId);
      // The evaluation batches are padded copies of the rows; the rows themselves are dropped.
      for (const b of out.evalSet) out.dataBytes += b.inputIds.byteLength + b.labels.byteLength;
    }
    return out;
  } finally {
    tokenizer.release();
  }
}

/**
 * The final save: the adapter ({@link writeAdapterFiles}) and, with a title, `out/loss.svg`.
 * Returns the paths written.
 */
async function writeFinalFiles(
  host: Pick<RunHost, "writeFile">,
  out: string,
  tensors: LoraTensors,
  adapter: AdapterInfo,
  lossCurve?: { title: string; history: TrainResult["history"] },
): Promise<string[]> {
  const written = await writeAdapterFiles(host.writeFile, out, tensors, adapter);
  if (lossCurve) {
    const path = out === "" ? LOSS_CURVE_FILE : `${out}/${LOSS_CURVE_FILE}`;
    const svg = lossCurveSvg(lossCurve.history, { title: lossCurve.title });
    await host.writeFile(path, new TextEncoder().encode(svg));
    written.push(path);
  }
  return written;
}

/** Runs the pipeline: data, session, resume, the loop, and the final adapter. */
export async function runFineTune(host: RunHost, spec: RunSpec): Promise<RunResult> {
  const { store, kernels, arena } = spec;
  const config = store.config;
  const data = spec.data ?? await readRunData(host, spec, config.vocabSize);

  let adapter: AdapterInfo = { ...spec.adapter, targets: [...spec.adapter.targets] };
  let initTensors: LoraTensors | null = null;
  let resume = spec.resume ?? null;
  const stateStore = spec.stateStore ?? null;
  if (!resume && stateStore) {
    const bytes = await stateStore.store.get(stateStore.key);
    if (bytes) {
      resume = {
        from: stateStore.key,
        read: (c) => decodeRunState(bytes, `run state ${stateStore.key}`, c),
      };
    }
  }
  if (spec.adapterInit && !resume) {
    const init = await spec.adapterInit();
    adapter = { ...init.info, baseModel: adapter.baseModel };
    initTensors = init.tensors;
  }
  const evalSeqLen = data.evalSet.reduce((m, b) => Math.max(m, b.seqLen), 0);
  const choice = await spec.checkMemory?.({
    seqLen: data.seqLen,
    evalSeqLen,
    dataBytes: data.dataBytes,
    usedTokenizer: data.usedTokenizer,
    adapter,
  });
  const session = await createTrainingSession({
    ...spec.session,
    keptTapes: choice?.keptTapes ?? spec.session.keptTapes,
    store,
    kernels,
    arena,
    lora: { rank: adapter.r, alpha: adapter.alpha, targets: adapter.targets },
    // More than one micro-batch per step: the whole gradient buffer is planned at creation.
    gradAccum: spec.gradAccum,
  });
  if (initTensors) session.setLoraTensors(initTensors);

  let startStep = 0;
  let history: TrainingState["history"] = [];
  if (resume) {
    const st = await resume.read(config);
    adapter = st.adapter;
    session.setLoraTensors(st.lora);
    session.setOptimizerState(st.optimizer);
    if (data.train && st.data) {
      try {
        data.train.seek(st.data);
      } catch (e) {
        const what = typeof spec.train === "string" ? spec.train : "the training rows";
        throw new RunInputError("train", `${what}: ${(e as Error).message}`);
      }
    }
    startStep = st.step;
    history = st.history;
    if (spec.steps < startStep) {
      throw new RunInputError(
        "steps",
        `${spec.steps} is below the checkpoint's step ${startStep}`,
      );
    }
    host.log(`resumed from ${resume.from} at step ${startStep}`);
  }
  await spec.beforeTraining?.();

  const memory = () =>
    memoryReport({
      arenas: arena,
      jsBytesHeld: session.memory().jsBytes,
      processPeak: host.processPeakBytes ? () => host.processPeakBytes!() : undefined,
    });
  const result = await runTraining({
    session,
    train: data.train,
    evalBatches: data.evalSet,
    steps: spec.steps,
    startStep,
    history,
    gradAccum: spec.gradAccum,
    schedule: spec.schedule,
    evalEvery: spec.evalEvery,
    saveEvery: spec.saveEvery,
    padId: data.padId,
    adapter,
    args: spec.args,
    memory,
    maxWorkingSetBytes: spec.maxWorkingSetBytes,
    maxProcessBytes: spec.maxProcessBytes,
    processBytes: host.processBytes ? () => host.processBytes!() : undefined,
    onStep: spec.onStep,
    save: spec.save,
    stopRequested: host.stopRequested ? () => host.stopRequested!() : undefined,
    stopAfterSteps: spec.stopAfter?.steps ?? null,
    stopAfterMs: spec.stopAfter?.ms ?? null,
    now: host.now ? () => host.now!() : undefined,
  });
  let files: string[] = [];
  if (result.paused && stateStore) await stateStore.store.put(stateStore.key, result.state!);
  if (!result.interrupted && !result.paused && spec.steps > 0) {
    // Views, not copies: the writer copies one tensor at a time.
    files = await writeFinalFiles(
      host,
      spec.out,
      session.loraTensorViews?.() ?? session.loraTensors(),
      adapter,
      spec.lossCurveTitle === undefined
        ? undefined
        : { title: spec.lossCurveTitle, history: result.history },
    );
  }
  return {
    ...result,
    adapter,
    files,
    memory: memory(),
    readMemory: memory,
    session,
    evalBatches: data.evalSet,
  };
}

/** A {@link RunHost} without files or signals: written files are kept in `files` (bytes). */
export function memoryRunHost(
  log: (line: string) => void,
): RunHost & { files: Map<string, Uint8Array<ArrayBuffer>> } {
  const files = new Map<string, Uint8Array<ArrayBuffer>>();
  return {
    files,
    log,
    openData(path) {
      return Promise.reject(new Error(`${path}: this host has no files; give the rows`));
    },
    async writeFile(path, data) {
      files.set(path, await collectBytes(data));
    },
  };
}
