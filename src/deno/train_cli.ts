/**
 * The `train.ts` command: everything that touches Deno (files, signals, the terminal) around the
 * portable training loop. Returns the process exit status instead of exiting, so tests can call
 * it in-process.
 */
import { isInputError } from "../io/input_error.ts";
import type { TextTokenizer } from "../data/tokenizer.ts";
import { bundledQwenTokenizerDir, loadTokenDecoderDir, loadTokenizerDir } from "./tokenizer.ts";
import { DataError } from "../data/example.ts";
import { type LoadedKernels, loadKernels } from "../kernels/wasm.ts";
import type { WeightStore } from "../model/weights.ts";
import { ArenaLimitError } from "../runtime/arena.ts";
import { FileWriteError, writeFileAtomic } from "./fs.ts";
import { debugTrace, unexpectedErrorText } from "../runtime/unexpected_error.ts";
import { BYTES_PER_MB, formatMemoryReport } from "../runtime/memory.ts";
import { processPeakBytes, readProcessMemory } from "./process_memory.ts";
import type { DemoShowcase, ShowcasePrompt } from "../cli/demo_showcase_run.ts";
import { UsageError } from "../cli/usage.ts";
import { helpText, parseTrainArgs, type TrainArgs } from "../train/args.ts";
import {
  CheckpointWriteError,
  readCheckpoint,
  readCheckpointHead,
  resolveResume,
  type ResumePoint,
  writeCheckpoint,
} from "./run_state.ts";
import type { DataIdentity } from "../train/data_identity.ts";
import {
  checkAdapterInitFlags,
  checkDataIdentity,
  checkOutputPaths,
  otherRunIn,
  systemMemoryBytes,
} from "./preflight.ts";
import {
  checkFlagCombinations,
  checkFlagsAgainstModel,
  runMemoryPlan,
} from "../train/preflight.ts";
import { checkMaxMemory } from "../train/memory_budget.ts";
import { modelReadyLines } from "../train/model_ready.ts";
import { doneLines, stoppedText } from "../train/run_summary.ts";
import { completeRunArgs, type ResumedArgs } from "../train/run_args.ts";
import { runSettingsFor } from "../train/run_settings.ts";
import { runDataSpecFor } from "../train/run_data_spec.ts";
import { otherRunToReplace } from "../train/other_run.ts";
import { defaultCacheDir } from "./cache_dir.ts";
import { chooseWeights } from "./weights_choice.ts";
import { chooseCheckpoints } from "./checkpoints_choice.ts";
import { CheckpointSpillError, openCheckpointSpill } from "./checkpoint_spill.ts";
import type { CheckpointSpill } from "../methods/block_checkpoints.ts";
import { acquireRunLock, clearRun, pruneCheckpoints } from "./run_dir.ts";
import { createDemoStore, DEMO_BASE_MODEL, DEMO_MODEL_CONFIG } from "../model/demo_model.ts";
import { demoEvalDataPath, demoIntro, demoOutro, endsWithShowcase } from "../train/demo.ts";
import { metricsLine } from "../train/metrics.ts";
import { baseModelNameDeno } from "./base_model_name.ts";
import { baseEvalLoss, comparisonText, scoredTokens } from "../train/compare_base.ts";
import { modelTokenizerLoader, openModelDeno, readModelConfigDeno } from "./model.ts";
import { readAdapterDir } from "./peft_adapter.ts";
import { ProgressReporter } from "../train/progress.ts";
import {
  type ReadData,
  readRunData,
  type RunDataSpec,
  runFineTune,
  type RunHost,
  RunInputError,
  type RunResult,
  type RunSpec,
} from "../train/run.ts";
import { MemoryLimitError, NonFiniteError } from "../train/trainer.ts";

const encoder = new TextEncoder();

/** Where the CLI writes (tests capture it). */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  isTerminal: boolean;
  /**
   * After a demo run: the text that shows what the adapter changed (the base's and the adapted
   * model's answers to a held-out prompt). The entry point supplies it; without it the demo
   * prints none.
   */
  demoShowcase?: DemoShowcase;
}

/** The process's own terminal. */
export const defaultIo: CliIo = {
  out: (t) => void Deno.stdout.writeSync(encoder.encode(t)),
  err: (t) => void Deno.stderr.writeSync(encoder.encode(t)),
  isTerminal: Deno.stdout.isTerminal(),
};

/** The command line resolved: `--resume` merges the checkpoint's arguments, the demo its defaults. */
interface ResolvedRun {
  args: TrainArgs;
  /** Flags given on this command line. */
  given: Set<keyof TrainArgs>;
  resume: ResumePoint | null;
  /** The resumed checkpoint's recorded data identity. */
  recordedData: DataIdentity | null;
  help: boolean;
}

/** Parses the command line and merges what `--resume` and the demo bring. */
async function resolveArgs(argv: string[]): Promise<ResolvedRun> {
  const parsed = parseTrainArgs(argv);
  const given = parsed.given;
  if (parsed.help) {
    return { args: parsed.args, given, resume: null, recordedData: null, help: true };
  }
  let resume: ResumePoint | null = null;
  let recordedData: DataIdentity | null = null;
  let resumed: ResumedArgs | null = null;
  if (parsed.args.resume) {
    resume = await resolveResume(parsed.args.resume).catch((e) => {
      throw new UsageError("--resume", (e as Error).message);
    });
    const head = await readCheckpointHead(resume.checkpoint);
    recordedData = head.dataIdentity;
    resumed = { args: head.args, runDir: resume.runDir };
  }
  const args = completeRunArgs(parsed.args, given, resumed);
  // Missing files are usage errors, found before anything slow happens.
  for (const [flag, path] of [["--data", args.data], ["--eval-data", args.evalData]] as const) {
    if (path !== null && args.steps + (flag === "--eval-data" ? 1 : 0) > 0) {
      const kind = await Deno.stat(path).then((s) => (s.isFile ? "file" : "other"), () => null);
      if (kind === null) throw new UsageError(flag, `${path}: no such file`);
      if (kind !== "file") throw new UsageError(flag, `${path} is not a file`);
    }
  }
  checkFlagCombinations(args, given);
  return { args, given, resume, recordedData, help: false };
}

export { tokenizerCostNote } from "../train/run.ts";

/** What the error report may say about the run: the newest checkpoint known to be good. */
interface RunRecord {
  lastGood: string | null;
  args: TrainArgs | null;
}

const EXIT_STATUS: Record<StopSignal, number> = { SIGINT: 130, SIGHUP: 129, SIGTERM: 143 };
type StopSignal = "SIGINT" | "SIGHUP" | "SIGTERM";

/**
 * The CLI. Returns the exit status. In order: the command line is parsed and validated
 * ({@link resolveArgs}), checked against the model and the disk ({@link preflight}), and run in
 * its locked directory ({@link trainInRunDir}): the data, the kernels and weights, the fine-tune
 * and its report ({@link train}). A failure is one line ({@link reportFailure}).
 */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const record: RunRecord = { lastGood: null, args: null };
  try {
    const run = await resolveArgs(argv);
    if (run.help) {
      io.out(helpText());
      return 0;
    }
    record.args = run.args;
    record.lastGood = run.resume?.checkpoint ?? null;
    return await trainInRunDir(run, io, record);
  } catch (e) {
    return reportFailure(e, io, record);
  }
}

/** Prints one line for a failure and returns the exit status; traces only with SLIMTUNE_DEBUG. */
function reportFailure(e: unknown, io: CliIo, record: RunRecord): number {
  const kept = record.lastGood ? `; last good checkpoint: ${record.lastGood}` : "";
  const debug = debugTrace(e);
  if (e instanceof UsageError) {
    io.err(`error: ${e.message}\n${debug}`);
    return 2;
  }
  if (e instanceof RunInputError && e.field !== null) {
    const flag = e.field === "train" ? "--data" : "--steps";
    io.err(`error: ${flag}: ${e.message}\n${debug}`);
    return 2;
  }
  if (e instanceof DataError || e instanceof RunInputError) {
    io.err(`error: ${e.message}\n${debug}`);
    return 1;
  }
  if (e instanceof NonFiniteError) {
    // Suggest only what is not already set.
    const a = record.args;
    const hint = a && a.maxGradNorm > 0
      ? "try a lower --lr"
      : "try a lower --lr or --max-grad-norm 1";
    io.err(`\nerror: ${e.message}; ${hint}${kept}\n${debug}`);
    return 1;
  }
  if (
    e instanceof MemoryLimitError || e instanceof ArenaLimitError ||
    e instanceof CheckpointWriteError || e instanceof FileWriteError ||
    e instanceof CheckpointSpillError || isInputError(e)
  ) {
    io.err(`\nerror: ${(e as Error).message}${kept}\n${debug}`);
    return 1;
  }
  io.err("\n" + unexpectedErrorText(e, "slimtune train", kept));
  return 1;
}

/**
 * The run inside a locked run directory: the preflight first, then the lock is taken; afterwards
 * the lock is released and a run directory this run created but never wrote into is removed
 * again.
 */
async function trainInRunDir(run: ResolvedRun, io: CliIo, record: RunRecord): Promise<number> {
  const { args, resume } = run;
  const say = sayFor(args, io);
  const checked = await preflight(run, say);
  const existed = await Deno.stat(args.out).then(() => true, () => false);
  const lock = await acquireRunLock(args.out);
  if (lock.tookOver) {
    const o = lock.tookOver;
    say(`note: took over the lock of a run that is gone (pid ${o.pid}, started ${o.started})`);
  }
  try {
    return await train(args, resume, io, {
      ...checked,
      onCheckpoint: (dir) => (record.lastGood = dir),
    });
  } finally {
    await lock.release();
    if (!existed) await Deno.remove(args.out).catch(() => {}); // only if still empty
  }
}

/**
 * Everything checked before the model is loaded: the flags against each other and the model's
 * config, the weights' and the block checkpoints' placement (set in `args`), the output paths,
 * the run directory's contents and the data's identity.
 */
async function preflight(
  run: ResolvedRun,
  say: (line: string) => void,
): Promise<Omit<RunDirOptions, "onCheckpoint">> {
  const { args, given, resume } = run;
  const demo = args.model === null;
  await checkAdapterInitFlags(args, given);
  // The demo's weights are made in memory: nothing to stream.
  const weights = demo
    ? { weights: "resident" as const, cacheDir: args.cacheDir, note: null }
    : await chooseWeights(args.weights, args.cacheDir);
  args.weights = weights.weights;
  args.cacheDir = weights.cacheDir;
  if (weights.note) say(weights.note);
  const config = demo ? DEMO_MODEL_CONFIG : await readModelConfigDeno(args.model!);
  checkFlagsAgainstModel(
    args,
    given,
    config,
    demo ? DEMO_BASE_MODEL : args.model!,
    systemMemoryBytes(),
  );
  const lora = { rank: args.rank, alpha: args.alpha, targets: args.targets };
  const planned = (where: "memory" | "disk") =>
    runMemoryPlan({ ...args, checkpoints: where }, config, args.seqLen, lora).total;
  const checkpoints = await chooseCheckpoints(args.checkpoints, {
    method: args.method,
    weights: args.weights,
    cacheDir: args.cacheDir,
    savedBytes: planned("memory") - planned("disk"),
  });
  args.checkpoints = checkpoints.checkpoints;
  if (checkpoints.note && !demo) say(checkpoints.note);
  await checkOutputPaths(args, resume);
  const replace = otherRunToReplace(args, given, await otherRunIn(args, resume));
  for (const s of resume?.skipped ?? []) {
    say(`resume: skipping ${s.dir} (${s.problem})`);
  }
  return {
    checkpointsDir: checkpoints.dir,
    dataIdentity: await checkDataIdentity(args, run.recordedData),
    replace,
  };
}

/** What the run directory's checks hand to the run. */
interface RunDirOptions {
  /** Where the block checkpoints' scratch file goes (null: they stay in memory). */
  checkpointsDir: string | null;
  /** The training data's identity, recorded in every checkpoint. */
  dataIdentity: DataIdentity | null;
  /** Another run's entries in `--out`, removed once the model and data are ready. */
  replace: string[] | null;
  /** Called with each checkpoint once it is completely written. */
  onCheckpoint: (dir: string) => void;
}

/**
 * The run itself, in the order it happens: the data (before anything large is loaded), the
 * kernels and the weights, the fine-tune through the portable pipeline, then the report.
 */
async function train(
  args: TrainArgs,
  resume: ResumePoint | null,
  io: CliIo,
  runDir: RunDirOptions,
): Promise<number> {
  const resumeDir = resume?.checkpoint ?? null;
  const demo = args.model === null;
  const say = sayFor(args, io);
  if (demo && !resumeDir) say(demoIntro(args));

  const showcase = demoShowcaseOf(args, io);
  const demoTokens = demo ? demoTokenizer(args, showcase) : null;
  const { dataSpec, data } = await readDataFirst(args, demoTokens?.load ?? null, say);

  // --threads 0 (the default): as many of the cores as make a GEMM faster when measured
  // (hardwareConcurrency may count cores that do not run at once). Workers end with this
  // function (using).
  const asked = args.threads || navigator.hardwareConcurrency || 1;
  using loaded = await loadKernels({ threads: asked, fitThreads: args.threads === 0 });
  // The kernels' static data and one scratch region per thread (4 MiB each).
  const kernelBytes = loaded.arena.used;
  const t0 = performance.now();
  const store = demo
    ? createDemoStore(loaded.kernels, loaded.arena, args.quant)
    : (await openModelDeno(args, loaded.kernels, loaded.arena)).store;
  if (args.maxMemory !== null) loaded.arena.limit = args.maxMemory * BYTES_PER_MB;
  // Closed (and so removed) when the run ends, however it ends.
  await using spill = runDir.checkpointsDir === null
    ? null
    : await openCheckpointSpill(runDir.checkpointsDir);
  const modelName = demo ? DEMO_BASE_MODEL : args.model!;
  const readyMs = performance.now() - t0;
  for (const line of modelReadyLines(modelName, args.weights, store, loaded, asked, readyMs)) {
    say(line);
  }

  const stops = new StopSignals(io);
  const progress = new ProgressReporter(args.quiet ? () => {} : io.out, io.isTerminal, args.steps);
  // Metrics: one JSON line per step, appended; after a resume the steps past its checkpoint
  // appear again, and the later line of a step is the one that counts.
  const metrics: { file: Deno.FsFile | null } = { file: null };
  try {
    const result = await runFineTune(runHost(say, stops), {
      // The data's fields (their session seed is the session's) and the data read from them.
      ...dataSpec,
      data,
      ...await fineTuneSpec(args, {
        resumeDir,
        store,
        loaded,
        kernelBytes,
        spill,
        runDir,
        stops,
        progress,
        metrics,
        say,
      }),
    });
    progress.finish();
    return await reportRun(result, args, io, {
      stop: stops.stop,
      store,
      loaded,
      showcase,
      demoTokens,
      say,
    });
  } finally {
    stops.close();
    metrics.file?.close();
    await store.close();
  }
}

/** One line for the user, unless `--quiet`. */
function sayFor(args: TrainArgs, io: CliIo): (line: string) => void {
  return (t) => {
    if (!args.quiet) io.out(t + "\n");
  };
}

/**
 * SIGINT (Ctrl-C), SIGTERM (timeout, docker stop, schedulers) and SIGHUP (a closed terminal)
 * finish the step and save a checkpoint. A second signal abandons the run, except during a
 * save, which always completes: a checkpoint is never left half-written by us.
 */
class StopSignals {
  /** The first signal received, if any. */
  stop: StopSignal | null = null;
  #saving = false;
  readonly #listeners: [StopSignal, () => void][];

  constructor(io: CliIo) {
    this.#listeners = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((sig) => [sig, () => {
      if (this.stop && !this.#saving) Deno.exit(EXIT_STATUS[sig]);
      if (this.stop) {
        io.err(`\n${sig}: the checkpoint is being saved; exiting when it is complete\n`);
        return;
      }
      this.stop = sig;
      io.err(
        `\n${sig}: finishing the current step, then saving a checkpoint (again to abort)\n`,
      );
    }]);
  }

  /** Starts listening (once the session is ready: before, a signal just ends the process). */
  listen(): void {
    for (const [sig, fn] of this.#listeners) {
      try {
        Deno.addSignalListener(sig, fn);
      } catch {
        // a signal this platform does not have (Windows: only SIGINT)
      }
    }
  }

  /** Runs a write that a second signal must not cut short. */
  async whileSaving<T>(write: () => Promise<T>): Promise<T> {
    this.#saving = true;
    try {
      return await write();
    } finally {
      this.#saving = false;
    }
  }

  close(): void {
    for (const [sig, fn] of this.#listeners) {
      try {
        Deno.removeSignalListener(sig, fn);
      } catch {
        // never added
      }
    }
  }
}

/** The pipeline's host on Deno: data files, atomic writes that signals wait for, the RSS. */
function runHost(say: (line: string) => void, stops: StopSignals): RunHost {
  return {
    openData: openDataFile,
    writeFile: (path, data) => stops.whileSaving(() => writeFileAtomic(path, data)),
    log: say,
    stopRequested: () => stops.stop !== null,
    processBytes: () => readProcessMemory().rssBytes,
    processPeakBytes,
  };
}

/** What {@link fineTuneSpec} builds the run from, besides the arguments. */
interface FineTuneParts {
  resumeDir: string | null;
  store: WeightStore;
  loaded: LoadedKernels;
  kernelBytes: number;
  spill: CheckpointSpill | null;
  runDir: RunDirOptions;
  stops: StopSignals;
  progress: ProgressReporter;
  metrics: { file: Deno.FsFile | null };
  say: (line: string) => void;
}

/** The run's {@link RunSpec} from the arguments, less its data fields (the seed is the session's). */
async function fineTuneSpec(
  args: TrainArgs,
  parts: FineTuneParts,
): Promise<Omit<RunSpec, Exclude<keyof RunDataSpec, "session">>> {
  const { resumeDir, store, loaded, runDir, stops, progress, metrics, say } = parts;
  const { kernels, arena } = loaded;
  const demo = args.model === null;
  const config = store.config;
  return {
    store,
    kernels,
    arena,
    adapter: {
      r: args.rank,
      alpha: args.alpha,
      targets: args.targets,
      baseModel: demo ? DEMO_BASE_MODEL : await baseModelNameDeno(args.model!),
    },
    // --adapter-init: its r, alpha and targets apply, and are what checkpoints record.
    adapterInit: args.adapterInit
      ? async () => {
        const init = await readAdapterDir(args.adapterInit!, config).catch((e) => {
          throw new UsageError("--adapter-init", (e as Error).message);
        });
        args.rank = init.info.r;
        args.alpha = init.info.alpha;
        args.targets = init.info.targets;
        return init;
      }
      : null,
    ...runSettingsFor(args, config, parts.spill ?? "memory"),
    // The reference, not a copy: --adapter-init's values are set before the first checkpoint.
    args: args as unknown as Record<string, unknown>,
    resume: resumeDir ? { from: resumeDir, read: (c) => readCheckpoint(resumeDir, c) } : null,
    out: args.out,
    lossCurveTitle: `${demo ? "slimtune demo (random weights)" : args.model}: ${args.method}`,
    maxWorkingSetBytes: args.maxMemory === null ? null : args.maxMemory * BYTES_PER_MB,
    maxProcessBytes: args.maxMemory === null ? null : args.maxMemory * BYTES_PER_MB,
    checkMemory: (ready) => {
      const { keptTapes, recomputeLine } = checkMaxMemory(args, {
        threads: loaded.threads,
        store,
        arena,
        kernelBytes: parts.kernelBytes,
        processBytes: () => readProcessMemory().rssBytes,
      }, ready);
      if (recomputeLine !== null) say(recomputeLine);
      return { keptTapes };
    },
    beforeTraining: async () => {
      if (args.metrics) {
        metrics.file = await Deno.open(args.metrics, { append: true, create: true });
      }
      stops.listen();
      if (runDir.replace) {
        await clearRun(args.out);
        say(`replaced the earlier run in ${args.out} (${runDir.replace.join(", ")})`);
      }
    },
    onStep: async (r, eta) => {
      if (metrics.file) await metrics.file.write(encoder.encode(metricsLine(r)));
      progress.record(r, eta);
    },
    save: (state) =>
      stops.whileSaving(async () => {
        const dir = await writeCheckpoint(args.out, {
          ...state,
          dataIdentity: runDir.dataIdentity,
        });
        runDir.onCheckpoint(dir);
        progress.message(`checkpoint saved: ${dir}`);
        for (const old of await pruneCheckpoints(args.out, args.saveTotalLimit)) {
          progress.message(
            `checkpoint removed (--save-total-limit ${args.saveTotalLimit}): ${old}`,
          );
        }
      }),
  };
}

/** What {@link reportRun} says the run's end with, besides its result. */
interface ReportParts {
  stop: StopSignal | null;
  store: WeightStore;
  loaded: LoadedKernels;
  showcase: DemoShowcase | null;
  demoTokens: ReturnType<typeof demoTokenizer> | null;
  say: (line: string) => void;
}

/**
 * The run's end: how to resume an interrupted run, else the losses, the files written, the
 * base-model comparison, the demo's showcase and the memory figures. Returns the exit status.
 */
async function reportRun(
  result: RunResult,
  args: TrainArgs,
  io: CliIo,
  parts: ReportParts,
): Promise<number> {
  const { stop, say } = parts;
  if (result.interrupted) {
    io.err(stoppedText(stop!, result.step, args.out));
    return EXIT_STATUS[stop!];
  }
  if (args.steps > 0) {
    for (const line of doneLines(result, args.out)) say(line);
  }
  if (args.compareBase && result.evalLoss !== null) {
    const base = await baseEvalLoss(result.session, result.evalBatches);
    say(
      "\n" +
        comparisonText(args.evalData!, scoredTokens(result.evalBatches), {
          base,
          adapter: result.evalLoss,
        }),
    );
  }
  if (parts.showcase) {
    const session = result.session;
    const demoTokens = parts.demoTokens!;
    say(
      "\n" +
        await parts.showcase.answers({
          store: parts.store,
          kernels: parts.loaded.kernels,
          arena: parts.loaded.arena,
          prompt: await demoTokens.prompt(),
          loadDecoder: demoTokens.loadDecoder,
          adapter: result.adapter,
          loraTensors: () => session.loraTensors(),
        }),
    );
  }
  // Read now, not at the end of the run: the comparison and the showcase above ran since.
  say(`memory: ${formatMemoryReport(result.readMemory())}`);
  if (args.model === null && args.steps > 0) say(demoOutro(args));
  return 0;
}

/** A data file's bytes (`role`: which of the run's files it is). */
async function openDataFile(path: string, role: "train" | "eval") {
  try {
    // The stream closes the file when it ends or is cancelled (a bad line stops the read).
    return (await Deno.open(path, { read: true })).readable;
  } catch (e) {
    // The file went missing after the argument checks.
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    throw new UsageError(role === "train" ? "--data" : "--eval-data", `${path}: no such file`);
  }
}

/**
 * Reads the run's data before the kernels and the weights are loaded: the tokenizer's tables and
 * what tokenizing grows the process by then come and go below the weights' memory instead of on
 * top of it (the tokenizer is released once the data is read). `demoLoad`: the demo's tokenizer.
 */
async function readDataFirst(
  args: TrainArgs,
  demoLoad: (() => Promise<TextTokenizer | null>) | null,
  say: (line: string) => void,
): Promise<{ dataSpec: RunDataSpec; data: ReadData }> {
  const config = args.model === null ? DEMO_MODEL_CONFIG : await readModelConfigDeno(args.model);
  const dataSpec = runDataSpecFor(
    args,
    config,
    demoLoad ?? modelTokenizerLoader(args, config.vocabSize),
    demoLoad ? "" : "; data pre-tokenized with tools/pretokenize.ts needs none",
  );
  const host = {
    openData: openDataFile,
    log: say,
    processBytes: () => readProcessMemory().rssBytes,
  };
  return { dataSpec, data: await readRunData(host, dataSpec, config.vocabSize) };
}

/** The demo's showcase, where this run ends with one: a demo run on the demo's held-out data. */
function demoShowcaseOf(args: TrainArgs, io: CliIo): DemoShowcase | null {
  return endsWithShowcase(args) ? io.demoShowcase ?? null : null;
}

/**
 * The demo's tokenizer, loaded for the data and released after it (run.ts), so no tokenizer is
 * held while training: while it is loaded, the showcase's prompt is encoded; the showcase's
 * answers are decoded by a decoder read from the tokenizer's snapshot, holding only their texts.
 */
function demoTokenizer(args: TrainArgs, showcase: DemoShowcase | null) {
  const dir = bundledQwenTokenizerDir();
  const cacheDir = args.cacheDir ?? defaultCacheDir();
  let prompt: ShowcasePrompt | null = null;
  const load = async (): Promise<TextTokenizer> => {
    const tokenizer = await loadTokenizerDir(dir, { cacheDir });
    if (showcase && prompt === null) prompt = await showcase.prompt(tokenizer, demoEvalDataPath());
    return tokenizer;
  };
  return {
    load,
    /** The showcase's prompt; encoded now if the data did not need the tokenizer. */
    async prompt(): Promise<ShowcasePrompt> {
      if (prompt === null) (await load()).release?.();
      return prompt!;
    },
    loadDecoder: (ids: number[]) => loadTokenDecoderDir(dir, ids, { cacheDir }),
  };
}
