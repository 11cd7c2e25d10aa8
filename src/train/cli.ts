/**
 * The `train.ts` command: everything that touches Deno (files, signals, the terminal) around the
 * portable training loop. Returns the process exit status instead of exiting, so tests can call
 * it in-process.
 */
import {
  BatchSource,
  buildRows,
  evalBatches,
  loadExamples,
  paddedLength,
} from "../data/dataset.ts";
import { DataError, type TokenizedExample, TokenizerNeededError } from "../data/example.ts";
import { ConfigError } from "../io/config.ts";
import { HttpSourceError } from "../io/http_source.ts";
import { SafetensorsError } from "../io/safetensors.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import { bundledQwenTokenizerDir, loadTokenizerDir } from "../data/tokenizer_deno.ts";
import { loadKernels } from "../kernels/wasm.ts";
import { createTrainingSession } from "../methods/session.ts";
import { planMemory } from "../model/memory_plan.ts";
import type { WeightStore } from "../model/weights.ts";
import { ArenaLimitError } from "../runtime/arena.ts";
import { writeFileAtomic } from "../runtime/deno_fs.ts";
import { BYTES_PER_MB, formatMB, formatMemoryReport, memoryReport } from "../runtime/memory.ts";
import { processPeakBytes, readProcessMemory } from "../runtime/process_memory_deno.ts";
import { helpText, parseTrainArgs, type TrainArgs, UsageError } from "./args.ts";
import type { TrainingState } from "./checkpoint.ts";
import {
  readCheckpoint,
  readCheckpointArgs,
  resolveResumeDir,
  writeCheckpoint,
} from "./checkpoint_deno.ts";
import {
  createDemoStore,
  DEMO_BASE_MODEL,
  DEMO_DEFAULTS,
  demoDataPath,
  demoIntro,
  demoOutro,
} from "./demo.ts";
import { lossCurveSvg } from "./loss_svg.ts";
import { metricsLine, truncateMetrics } from "./metrics.ts";
import { headChunkRowsFor, openModelDeno, padIdWithoutTokenizer } from "./model_deno.ts";
import type { AdapterInfo } from "./peft_adapter.ts";
import { readAdapterDir, writeAdapterDir } from "./peft_adapter_deno.ts";
import { ProgressReporter } from "./progress.ts";
import { MemoryLimitError, NonFiniteError, runTraining } from "./trainer.ts";

const encoder = new TextEncoder();

/** Where the CLI writes (tests capture it). */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  isTerminal: boolean;
}

const defaultIo: CliIo = {
  out: (t) => void Deno.stdout.writeSync(encoder.encode(t)),
  err: (t) => void Deno.stderr.writeSync(encoder.encode(t)),
  isTerminal: Deno.stdout.isTerminal(),
};

/** A failure with a message for the user and an exit status. */
class CliError extends Error {
  constructor(message: string, readonly status = 1) {
    super(message);
  }
}

/** Flags resolved: `--resume` merges the checkpoint's arguments, the demo fills its defaults. */
async function resolveArgs(
  argv: string[],
): Promise<{ args: TrainArgs; resumeDir: string | null; help: boolean }> {
  const parsed = parseTrainArgs(argv);
  if (parsed.help) return { args: parsed.args, resumeDir: null, help: true };
  let args = parsed.args;
  let resumeDir: string | null = null;
  if (args.resume) {
    resumeDir = await resolveResumeDir(args.resume).catch((e) => {
      throw new UsageError("--resume", (e as Error).message);
    });
    const saved = await readCheckpointArgs(resumeDir);
    // The checkpoint's arguments are the base; flags given now override them.
    const merged = { ...args } as Record<string, unknown>;
    for (const [k, v] of Object.entries(saved)) {
      if (k in args && !parsed.given.has(k as keyof TrainArgs)) merged[k] = v;
    }
    merged.resume = args.resume;
    args = merged as unknown as TrainArgs;
  } else if (args.model === null) {
    for (const [k, v] of Object.entries(DEMO_DEFAULTS)) {
      if (!parsed.given.has(k as keyof TrainArgs)) {
        (args as unknown as Record<string, unknown>)[k] = v;
      }
    }
  }
  if (args.model === null && args.data === null) args.data = demoDataPath();
  if (args.steps > 0 && args.data === null) {
    throw new UsageError("--data", "required when training a --model (a JSONL file)");
  }
  if (args.steps === 0 && args.evalData === null) {
    throw new UsageError("--steps", "0 only makes sense with --eval-data (evaluation only)");
  }
  // Missing files are usage errors, found before anything slow happens.
  for (const [flag, path] of [["--data", args.data], ["--eval-data", args.evalData]] as const) {
    if (path !== null && args.steps + (flag === "--eval-data" ? 1 : 0) > 0) {
      const isFile = await Deno.stat(path).then((s) => s.isFile, () => false);
      if (!isFile) throw new UsageError(flag, `${path}: no such file`);
    }
  }
  return { args, resumeDir, help: false };
}

async function openDataStream(path: string, flag: string): Promise<ReadableStream<Uint8Array>> {
  try {
    return (await Deno.open(path, { read: true })).readable;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UsageError(flag, `${path}: no such file`);
    throw e;
  }
}

/**
 * The model's tokenizer, built at most once and only when asked for: pre-tokenized data never
 * needs it, and a built Qwen2.5 tokenizer holds ~170 MB of process memory.
 */
class TokenizerOnDemand {
  #load: (() => Promise<TextTokenizer | null>) | null;
  #tokenizer: TextTokenizer | null = null;

  constructor(load: () => Promise<TextTokenizer | null>) {
    this.#load = load;
  }

  /** The tokenizer if it was loaded (and not released yet), else null. */
  get loaded(): TextTokenizer | null {
    return this.#tokenizer;
  }

  /** Loads the tokenizer on the first call; null when the model ships none. */
  async get(): Promise<TextTokenizer | null> {
    if (this.#load) {
      const load = this.#load;
      this.#load = null;
      this.#tokenizer = await load();
    }
    return this.#tokenizer;
  }

  /**
   * Drops the reference once the data is tokenized: nothing after data loading uses the
   * tokenizer, so its ~50 MB of JS heap becomes garbage the process can reuse. It does not lower
   * the peak, and barely the RSS: V8 and malloc keep the pages (measured: a standalone probe's
   * RSS falls ~25 MB of the ~175 MB it rose by; a CLI run's is unchanged within noise).
   * Pre-tokenized data (tools/pretokenize.ts) is what avoids the cost.
   */
  release(): void {
    this.#load = null;
    this.#tokenizer = null;
  }
}

/**
 * Reads and tokenizes a data file, loading the tokenizer only if a line needs it. The first pass
 * reads the file without a tokenizer: for pre-tokenized data that pass is all (a bad line stops it
 * with its FILE:LINE as always). At the first well-formed line that needs the tokenizer the pass
 * stops, the tokenizer is loaded and the file is read again from the start with it; a model that
 * ships no tokenizer gets that line's error.
 */
async function readExamples(
  path: string,
  flag: string,
  tokenizer: TokenizerOnDemand,
  vocabSize: number,
  say: (text: string) => void,
  hint: boolean,
): Promise<TokenizedExample[]> {
  const read = async (tok: TextTokenizer | null) =>
    loadExamples(await openDataStream(path, flag), path, tok, vocabSize);
  if (tokenizer.loaded) return read(tokenizer.loaded);
  try {
    return await read(null);
  } catch (e) {
    if (!(e instanceof DataError) || !(e.cause instanceof TokenizerNeededError)) throw e;
    const rssBefore = readProcessMemory().rssBytes;
    const tok = await tokenizer.get();
    if (!tok) throw e;
    // What the tokenizer costs is worth saying: it can be more than the whole training step.
    const cost = tokenizerCostNote(rssBefore, readProcessMemory().rssBytes);
    say(
      `tokenizer: loaded for "${e.cause.kind}" data (${e.file}:${e.line})${cost}` +
        (hint ? "; data pre-tokenized with tools/pretokenize.ts needs none" : ""),
    );
    return read(tok);
  }
}

/** ", +N MB of process memory" when the resident size grew from `before` to `after`, else "". */
export function tokenizerCostNote(before: number | null, after: number | null): string {
  return before !== null && after !== null && after > before
    ? `, +${formatMB(after - before)} of process memory`
    : "";
}

/** The CLI. Returns the exit status. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  let args: TrainArgs;
  let resumeDir: string | null;
  try {
    const r = await resolveArgs(argv);
    if (r.help) {
      io.out(helpText());
      return 0;
    }
    ({ args, resumeDir } = r);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n`);
      return 2;
    }
    io.err(`error: ${(e as Error).message}\n`);
    return 1;
  }
  let lastCheckpoint: string | null = resumeDir;
  try {
    return await train(args, resumeDir, io, (dir) => (lastCheckpoint = dir));
  } catch (e) {
    const kept = lastCheckpoint ? `; last good checkpoint: ${lastCheckpoint}` : "";
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n`);
      return 2;
    }
    if (e instanceof CliError) {
      io.err(`error: ${e.message}\n`);
      return e.status;
    }
    if (e instanceof DataError) {
      io.err(`error: ${e.message}\n`);
      return 1;
    }
    if (
      e instanceof NonFiniteError || e instanceof MemoryLimitError || e instanceof ArenaLimitError
    ) {
      io.err(`\nerror: ${e.message}${kept}\n`);
      return 1;
    }
    if (isInputError(e)) {
      io.err(`\nerror: ${(e as Error).message}${kept}\n`);
      return 1;
    }
    io.err(`\nerror: ${(e as Error).stack ?? e}${kept}\n`);
    return 1;
  }
}

/**
 * Errors about the user's input (a malformed checkpoint, config or adapter, a missing file, a
 * failing server): their messages already name the file and what is wrong, so the user gets that
 * one line. Anything else is a bug and keeps its stack trace.
 */
function isInputError(e: unknown): boolean {
  return e instanceof SafetensorsError || e instanceof ConfigError ||
    e instanceof HttpSourceError || e instanceof Deno.errors.NotFound ||
    e instanceof Deno.errors.PermissionDenied ||
    (e instanceof Error && Object.getPrototypeOf(e) === Error.prototype);
}

/**
 * The working set a run will reach at most (bytes): the arena's high-water so far or what it holds
 * now plus the session's planned bytes, whichever is more, plus the JS bytes the store holds.
 */
function plannedWorkingSet(
  arena: { used: number; highWater: number },
  jsBytes: number,
  sessionBytes: number,
): number {
  return Math.max(arena.highWater, arena.used + sessionBytes) + jsBytes;
}

async function train(
  args: TrainArgs,
  resumeDir: string | null,
  io: CliIo,
  onCheckpoint: (dir: string) => void,
): Promise<number> {
  const demo = args.model === null;
  const say = (t: string) => {
    if (!args.quiet) io.out(t + "\n");
  };
  if (demo && !resumeDir) say(demoIntro(args));

  // --threads 0 (the default): all cores. Workers end with this function (using).
  using loaded = await loadKernels({ threads: args.threads || navigator.hardwareConcurrency || 1 });
  const { kernels, arena, variant } = loaded;
  // The kernels' static data and one scratch region per thread (4 MiB each).
  const kernelBytes = arena.used;
  const t0 = performance.now();
  let store: WeightStore;
  let loadTokenizer: () => Promise<TextTokenizer | null>;
  if (demo) {
    store = createDemoStore(kernels, arena, args.quant);
    loadTokenizer = () => loadTokenizerDir(bundledQwenTokenizerDir());
  } else {
    ({ store, loadTokenizer } = await openModelDeno(args, kernels, arena));
  }
  if (args.maxMemory !== null) arena.limit = args.maxMemory * BYTES_PER_MB;
  const config = store.config;
  say(
    `model: ${demo ? DEMO_BASE_MODEL : args.model} (${config.architecture}, ${config.numLayers} ` +
      `layers, hidden ${config.hiddenSize}, vocab ${config.vocabSize}), ${store.quant} ` +
      `${args.weights}, kernels ${variant} x ${loaded.threads} threads, ready in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
  );
  if (loaded.parallel) {
    const p = loaded.parallel;
    // Why a small model may not gain from threads: calls below this size stay on one thread.
    say(
      `threads: calls from ${(p.minWork / 1e6).toFixed(2)}M multiply-adds are split (${p.source}` +
        (Number.isFinite(p.roundTripUs) ? `; hand-off ${p.roundTripUs.toFixed(1)} µs` : "") +
        ")",
    );
  }

  // Data: everything is read and validated before the first step; the tokenizer is loaded only if
  // a line needs it, and dropped once the data is tokenized.
  const tokenizer = new TokenizerOnDemand(loadTokenizer);
  let train: BatchSource | null = null;
  let seqLen = args.seqLen;
  let evalSet: ReturnType<typeof evalBatches> = [];
  let padId: number;
  try {
    const examples = args.steps > 0
      ? await readExamples(args.data!, "--data", tokenizer, config.vocabSize, say, !demo)
      : null;
    const evalExamples = args.evalData
      ? await readExamples(args.evalData, "--eval-data", tokenizer, config.vocabSize, say, !demo)
      : null;
    // With a tokenizer, its pad id (as always); without one any id in the vocabulary will do.
    padId = tokenizer.loaded?.padTokenId ?? padIdWithoutTokenizer(config);
    if (examples) {
      const packed = buildRows(examples, args.seqLen, args.packing);
      if (packed.rows.length === 0) {
        throw new CliError(`${args.data}: no example has a token to train on within --seq-len`);
      }
      seqLen = paddedLength(packed.rows, args.seqLen);
      train = new BatchSource(packed.rows, {
        batchSize: args.batchSize,
        seqLen,
        padId,
        seed: args.seed,
      });
      say(
        `data: ${examples.length} examples -> ${packed.rows.length} rows of <= ${seqLen} tokens` +
          (packed.truncated ? `, ${packed.truncated} truncated` : "") +
          (packed.dropped ? `, ${packed.dropped} dropped (nothing to train on)` : ""),
      );
    }
    if (evalExamples) {
      const rows = buildRows(evalExamples, args.seqLen, "none").rows;
      evalSet = evalBatches(rows, args.batchSize, paddedLength(rows, args.seqLen), padId);
    }
  } catch (e) {
    // Bad data ends the run here; a streamed store still holds its file open.
    await store.close();
    throw e;
  } finally {
    tokenizer.release();
  }

  // The adapter: fresh, or from --adapter-init (its r, alpha and targets apply).
  let adapter: AdapterInfo = {
    r: args.rank,
    alpha: args.alpha,
    targets: args.targets,
    baseModel: demo ? DEMO_BASE_MODEL : args.model!,
  };
  let initTensors = null;
  if (args.adapterInit && !resumeDir) {
    const init = await readAdapterDir(args.adapterInit, config).catch((e) => {
      throw new UsageError("--adapter-init", (e as Error).message);
    });
    adapter = { ...init.info, baseModel: adapter.baseModel };
    args.rank = adapter.r;
    args.alpha = adapter.alpha;
    args.targets = adapter.targets;
    initTensors = init.tensors;
  }
  if (args.maxMemory !== null) {
    // Refuse before the session allocates anything: what the arena holds now (the kernels, every
    // thread's scratch, the weights) + the session's plan (adapters, optimizer, a step's peak).
    const evalSeqLen = evalSet.reduce((m, b) => Math.max(m, b.seqLen), 0);
    const plan = planMemory({
      config,
      method: args.method,
      seqLen: Math.max(seqLen, evalSeqLen),
      batchSize: args.batchSize,
      lora: { rank: adapter.r, alpha: adapter.alpha, targets: adapter.targets },
      optimizer: args.optimizer,
      headChunkRows: headChunkRowsFor(args),
      lcsb: { groups: Math.min(args.lcsbGroups, config.numLayers), pattern: args.lcsbPattern },
      gradAccum: args.gradAccum,
      maxGradNorm: args.maxGradNorm,
    });
    const js = store.jsBytesHeld();
    const need = plannedWorkingSet(arena, js, plan.total);
    if (need > args.maxMemory * BYTES_PER_MB) {
      await store.close();
      const loading = arena.highWater > arena.used + plan.total
        ? `; loading the weights already took the arena to ${formatMB(arena.highWater)}`
        : "";
      throw new UsageError(
        "--max-memory",
        `${args.maxMemory} MB is below this run's planned working set of ${need} bytes ` +
          `(${formatMB(need)}): kernels and scratch for ${loaded.threads} thread(s) ` +
          `${formatMB(kernelBytes)}, weights ${formatMB(arena.used - kernelBytes)}, ` +
          `session plan ${formatMB(plan.total)}` + (js > 0 ? `, JS buffers ${formatMB(js)}` : "") +
          `${loading}; raise it, or lower --seq-len, --batch-size or --threads`,
      );
    }
  }
  const session = await createTrainingSession({
    store,
    kernels,
    arena,
    method: args.method,
    lora: { rank: adapter.r, alpha: adapter.alpha, targets: adapter.targets },
    optimizer: { kind: args.optimizer, lr: args.lr, weightDecay: args.weightDecay },
    maxGradNorm: args.maxGradNorm,
    lcsb: { groups: Math.min(args.lcsbGroups, config.numLayers), pattern: args.lcsbPattern },
    mezo: { eps: args.mezoEps },
    seed: args.seed,
    // The streamed store's head slot was sized with the same rows (model_deno.ts).
    headChunkRows: headChunkRowsFor(args),
    // More than one micro-batch per step: the whole gradient buffer is planned at creation.
    gradAccum: args.gradAccum,
  });
  if (initTensors) session.setLoraTensors(initTensors);

  let startStep = 0;
  let history: TrainingState["history"] = [];
  if (resumeDir) {
    const st = await readCheckpoint(resumeDir, config);
    adapter = st.adapter;
    session.setLoraTensors(st.lora);
    session.setOptimizerState(st.optimizer);
    if (train && st.data) train.seek(st.data);
    startStep = st.step;
    history = st.history;
    if (args.steps < startStep) {
      throw new UsageError("--steps", `${args.steps} is below the checkpoint's step ${startStep}`);
    }
    say(`resumed from ${resumeDir} at step ${startStep}`);
  }

  // Metrics: one JSON line per step; a resumed run drops lines after its checkpoint.
  let metrics: Deno.FsFile | null = null;
  if (args.metrics) {
    let old = "";
    try {
      old = await Deno.readTextFile(args.metrics);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    const keep = resumeDir ? truncateMetrics(old, startStep) : "";
    await writeFileAtomic(args.metrics, encoder.encode(keep));
    metrics = await Deno.open(args.metrics, { append: true });
  }

  let stop = false;
  const onSigint = () => {
    if (stop) Deno.exit(130); // second Ctrl-C: give up immediately
    stop = true;
    io.err(
      "\ninterrupt: finishing the current step, then saving a checkpoint (Ctrl-C again to abort)\n",
    );
  };
  Deno.addSignalListener("SIGINT", onSigint);
  const progress = new ProgressReporter(args.quiet ? () => {} : io.out, io.isTerminal, args.steps);
  const memory = () =>
    memoryReport({
      arenas: arena,
      jsBytesHeld: session.memory().jsBytes,
      processPeak: processPeakBytes,
    });
  try {
    const result = await runTraining({
      session,
      train,
      evalBatches: evalSet,
      steps: args.steps,
      startStep,
      history,
      gradAccum: args.gradAccum,
      schedule: { kind: args.lrSchedule, baseLr: args.lr, warmupSteps: args.warmupSteps },
      evalEvery: args.evalEvery,
      saveEvery: args.saveEvery,
      padId,
      adapter,
      args: { ...args } as unknown as Record<string, unknown>,
      memory,
      maxWorkingSetBytes: args.maxMemory === null ? null : args.maxMemory * BYTES_PER_MB,
      onStep: async (r, eta) => {
        if (metrics) await metrics.write(encoder.encode(metricsLine(r)));
        if (r.loss === null) {
          progress.message(`eval_loss ${r.evalLoss!.toFixed(4)} (${r.tokens} tokens)`);
        } else progress.step(r, eta);
      },
      save: async (state) => {
        const dir = await writeCheckpoint(args.out, state);
        onCheckpoint(dir);
        progress.message(`checkpoint saved: ${dir}`);
      },
      stopRequested: () => stop,
    });
    progress.finish();
    if (result.interrupted) {
      io.err(`interrupted after step ${result.step}; resume with: --resume ${args.out}\n`);
      return 130;
    }
    if (args.steps > 0) {
      // Views, not copies: the writer copies one tensor at a time.
      await writeAdapterDir(
        args.out,
        session.loraTensorViews?.() ?? session.loraTensors(),
        adapter,
      );
      const title = `${demo ? "slimtune demo (random weights)" : args.model}: ${args.method}`;
      await writeFileAtomic(
        `${args.out}/loss.svg`,
        encoder.encode(lossCurveSvg(result.history, { title })),
      );
      const first = result.history[0]?.loss;
      const last = result.history[result.history.length - 1]?.loss;
      say(
        `\ndone: ${result.step} steps, loss ${first?.toFixed(4)} -> ${last?.toFixed(4)}` +
          (result.evalLoss !== null ? `, eval_loss ${result.evalLoss.toFixed(4)}` : ""),
      );
      say(`adapter: ${args.out}/adapter_config.json, ${args.out}/adapter_model.safetensors`);
      say(`loss curve: ${args.out}/loss.svg`);
    }
    say(`memory: ${formatMemoryReport(memory())}`);
    if (demo && args.steps > 0) say(demoOutro(args));
    return 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    metrics?.close();
    await store.close();
  }
}
