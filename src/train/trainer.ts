/**
 * The training loop, portable: it drives an already created {@link TrainingSession} over already
 * loaded batches and reports through callbacks, so the Deno CLI (`train.ts`), a browser page or an
 * edge function can all reuse it. No file, signal or console access happens here.
 *
 * Per step: the learning rate from the schedule, `gradAccum` micro-batches from the
 * {@link BatchSource}, one `session.step`, a finite-loss check, periodic evaluation, a metrics
 * record, a working-set check, and periodic checkpoints. A stop request (Ctrl-C) is honoured
 * between steps with a checkpoint of the last completed step.
 *
 * @example
 * ```ts
 * import { runTraining } from "./trainer.ts";
 * // Only session, data and steps are required; the rest has defaults (see TrainerOptions).
 * // const result = await runTraining({ session, train, steps: 100 });
 * ```
 */
import type { Batch } from "../data/batch.ts";
import type { BatchSource } from "../data/dataset.ts";
import { countTokens } from "../data/dataset.ts";
import type { TrainingSession } from "../methods/session.ts";
import { learningRate, type ScheduleKind } from "../optim/schedule.ts";
import { type MemoryReport, memoryReport } from "../runtime/memory.ts";
import type { HistoryPoint, TrainingState } from "./run_state.ts";
import type { StepRecord } from "./metrics.ts";
import type { AdapterInfo } from "../io/peft_adapter.ts";
import { encodeRunState } from "./run_state_store.ts";

/** The loss or gradient norm stopped being finite: training diverged. */
export class NonFiniteError extends Error {
  constructor(readonly step: number, readonly loss: number, readonly gradNorm: number | null) {
    super(
      `step ${step}: ${
        Number.isFinite(loss) ? `gradient norm is ${gradNorm}` : `loss is ${loss}`
      } (training diverged)`,
    );
    this.name = "NonFiniteError";
  }
}

/** The working set, or the whole process, went over `--max-memory`. */
export class MemoryLimitError extends Error {
  constructor(
    readonly step: number,
    readonly bytes: number,
    readonly limit: number,
    /** For the process: its working set then, to say what the rest is. */
    readonly workingSetBytes: number | null = null,
  ) {
    const mb = (b: number) => `${(b / 1048576).toFixed(1)} MB`;
    super(
      workingSetBytes === null
        ? `step ${step}: working set ${mb(bytes)} exceeds the limit of ${mb(limit)}`
        : `step ${step}: the process holds ${mb(bytes)}, over --max-memory ${mb(limit)} ` +
          `(working set ${mb(workingSetBytes)}; the rest is the runtime, the JS heap, the data ` +
          `and the tokenizer's garbage): lower --seq-len, --batch-size or --threads, or ` +
          `pre-tokenize the data`,
    );
    this.name = "MemoryLimitError";
  }
}

/**
 * Everything the loop needs. Only `session`, `train` and `steps` are required; the rest default
 * to a plain run: no evaluation, one micro-batch per step, a constant learning rate equal to the
 * session's optimizer `lr`, no checkpoints, memory from the session's arena and store (no process peak).
 */
export interface TrainerOptions {
  session: TrainingSession;
  /** Training batches (may be null when `steps === startStep`, i.e. evaluation only). */
  train: BatchSource | null;
  /** Total optimizer steps of the run (the schedule's horizon). */
  steps: number;
  /** Evaluation batches (default none: no evaluation). */
  evalBatches?: readonly Batch[];
  /** Steps already completed (resume); the session and `train` must already be restored. */
  startStep?: number;
  /** Loss history so far (resume); extended in place. */
  history?: HistoryPoint[];
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
  /** Learning-rate schedule (default constant at the session optimizer's `lr`, no warm-up). */
  schedule?: { kind: ScheduleKind; baseLr: number; warmupSteps: number };
  /** Evaluate every N steps (default 0: only after the last step). */
  evalEvery?: number;
  /** Checkpoint every N steps (default 0: never, except on a stop request). */
  saveEvery?: number;
  /**
   * Padding id, to count real tokens for tokens/s (default: the training source's padding id,
   * else -1, i.e. every position counts).
   */
  padId?: number;
  /**
   * Adapter description stored in checkpoints (default: the session's rank, alpha and targets,
   * base model ""). Give it when `save` is used, so the checkpoint names its base model.
   */
  adapter?: AdapterInfo;
  /** Run arguments stored in checkpoints (default `{}`). */
  args?: Record<string, unknown>;
  /** Current memory figures (default: the session's arena + JS bytes held, no process peak). */
  memory?: () => MemoryReport;
  /** Stop with {@link MemoryLimitError} when the working set exceeds this many bytes. */
  maxWorkingSetBytes?: number | null;
  /** Stop with a checkpoint when the process's resident size goes over this (bytes). */
  maxProcessBytes?: number | null;
  /** The process's resident size now, or null where it cannot be read. */
  processBytes?: () => number | null;
  /** Called after every step (and once for an evaluation-only run). */
  onStep?: (r: StepRecord, etaS: number) => void | Promise<void>;
  /**
   * Persists a checkpoint. The state's tensors may be VIEWS of the session's memory (no copies,
   * so a save does not hold a second adapter + optimizer state): valid only until the returned
   * promise settles. Copy what must outlive the call (`captureState` makes copies).
   */
  save?: (state: TrainingState) => Promise<void>;
  /** Polled between steps; true = checkpoint and stop. */
  stopRequested?: () => boolean;
  /**
   * Pause after this many steps of this call (an edge invocation's share): the result is
   * `paused` and carries the complete state as bytes ({@link TrainResult.state}).
   */
  stopAfterSteps?: number | null;
  /**
   * Pause once the next step would end past this many milliseconds of this call (from the mean
   * step time so far; at least one step is always taken, so a run always progresses).
   */
  stopAfterMs?: number | null;
  /** Clock in milliseconds (tests inject one). */
  now?: () => number;
}

/** {@link TrainerOptions} with every default filled in. */
export type ResolvedTrainerOptions =
  & Required<
    Omit<
      TrainerOptions,
      | "maxWorkingSetBytes"
      | "maxProcessBytes"
      | "processBytes"
      | "onStep"
      | "save"
      | "stopRequested"
      | "stopAfterSteps"
      | "stopAfterMs"
      | "now"
      | "startStep"
      | "history"
    >
  >
  & Pick<
    TrainerOptions,
    | "maxWorkingSetBytes"
    | "maxProcessBytes"
    | "processBytes"
    | "onStep"
    | "save"
    | "stopRequested"
    | "stopAfterSteps"
    | "stopAfterMs"
    | "now"
    | "startStep"
    | "history"
  >;

/** Fills in the defaults of {@link TrainerOptions} (see there) and checks the numbers. */
export function resolveTrainerOptions(o: TrainerOptions): ResolvedTrainerOptions {
  const so = o.session.options;
  const r: ResolvedTrainerOptions = {
    ...o,
    evalBatches: o.evalBatches ?? [],
    gradAccum: o.gradAccum ?? 1,
    schedule: o.schedule ?? { kind: "constant", baseLr: so.optimizer.lr, warmupSteps: 0 },
    evalEvery: o.evalEvery ?? 0,
    saveEvery: o.saveEvery ?? 0,
    padId: o.padId ?? o.train?.options.padId ?? -1,
    adapter: o.adapter ??
      { r: so.lora.rank, alpha: so.lora.alpha, targets: [...so.lora.targets], baseModel: "" },
    args: o.args ?? {},
    memory: o.memory ?? (() => sessionMemory(o.session)),
  };
  const count = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) {
      throw new RangeError(`runTraining: ${name} must be an integer >= ${min}, got ${v}`);
    }
  };
  count("gradAccum", r.gradAccum, 1);
  count("evalEvery", r.evalEvery, 0);
  count("saveEvery", r.saveEvery, 0);
  count("schedule.warmupSteps", r.schedule.warmupSteps, 0);
  if (r.stopAfterSteps != null) count("stopAfterSteps", r.stopAfterSteps, 1);
  if (r.stopAfterMs != null && !(r.stopAfterMs > 0)) {
    throw new RangeError(`runTraining: stopAfterMs must be > 0, got ${r.stopAfterMs}`);
  }
  if (!(r.schedule.baseLr >= 0) || !Number.isFinite(r.schedule.baseLr)) {
    throw new RangeError(
      `runTraining: learning rate must be finite and >= 0, got ${r.schedule.baseLr}`,
    );
  }
  return r;
}

/** A {@link MemoryReport} from the session's arena and JS bytes (no process peak: host-specific). */
function sessionMemory(session: TrainingSession): MemoryReport {
  return memoryReport({ arenas: session.options.arena, jsBytesHeld: session.memory().jsBytes });
}

/** How a run ended. */
export interface TrainResult {
  /** Steps completed. */
  step: number;
  /** Stopped early on request (a checkpoint of `step` was saved). */
  interrupted: boolean;
  /** Stopped by `stopAfterSteps` / `stopAfterMs` before `steps`: `state` continues it. */
  paused: boolean;
  /**
   * When paused: everything needed to continue (adapter, optimizer state, RNG, data position,
   * schedule step, history) as {@link encodeRunState} bytes; null otherwise.
   */
  state: Uint8Array | null;
  history: HistoryPoint[];
  /** Last evaluation loss, if any. */
  evalLoss: number | null;
}

/** Token-weighted mean loss over `batches`. */
export async function evaluateBatches(
  session: TrainingSession,
  batches: readonly Batch[],
): Promise<number> {
  let sum = 0;
  let tokens = 0;
  for (const b of batches) {
    const r = await session.evaluate(b);
    if (r.tokens === 0) continue;
    sum += r.loss * r.tokens;
    tokens += r.tokens;
  }
  if (tokens === 0) throw new Error("the evaluation data has no tokens to score");
  return sum / tokens;
}

/** A snapshot of everything needed to resume after `step` completed steps (tensors copied). */
export function captureState(
  o: Pick<ResolvedTrainerOptions, "session" | "train" | "adapter" | "args">,
  step: number,
  history: readonly HistoryPoint[],
): TrainingState {
  return stateWith(o, step, history, o.session.loraTensors(), o.session.optimizerState());
}

/**
 * {@link captureState} with views of the session's memory where the session offers them: what
 * `save` gets, so writing a checkpoint never holds a copy of the adapter and optimizer state.
 */
function stateForSave(
  o: Pick<ResolvedTrainerOptions, "session" | "train" | "adapter" | "args">,
  step: number,
  history: readonly HistoryPoint[],
): TrainingState {
  const s = o.session;
  return stateWith(
    o,
    step,
    history,
    s.loraTensorViews?.() ?? s.loraTensors(),
    s.optimizerStateViews?.() ?? s.optimizerState(),
  );
}

function stateWith(
  o: Pick<ResolvedTrainerOptions, "train" | "adapter" | "args">,
  step: number,
  history: readonly HistoryPoint[],
  lora: TrainingState["lora"],
  optimizer: TrainingState["optimizer"],
): TrainingState {
  return {
    step,
    adapter: o.adapter,
    lora,
    optimizer,
    data: o.train ? o.train.position : null,
    args: o.args,
    history: history.map((p) => ({ ...p })),
  };
}

/** Runs the loop from `startStep` to `steps`. */
export async function runTraining(options: TrainerOptions): Promise<TrainResult> {
  const o = resolveTrainerOptions(options);
  const now = o.now ?? (() => performance.now());
  const start = o.startStep ?? 0;
  const history = o.history ?? [];
  if (!Number.isInteger(o.steps) || o.steps < start) {
    throw new RangeError(`steps ${o.steps} is before the resumed step ${start}`);
  }
  if (o.steps > start && !o.train) throw new Error("training steps requested without data");
  const t0 = now();
  let evalLoss: number | null = null;
  const record = (
    step: number,
    loss: number | null,
    lr: number,
    tokens: number,
    seconds: number,
    gradNorm: number | null,
  ): StepRecord => {
    const mem = o.memory();
    return {
      step,
      loss,
      lr,
      tokens,
      tokensPerS: seconds > 0 ? tokens / seconds : 0,
      gradNorm,
      workingSetBytes: mem.workingSetBytes,
      processPeakBytes: mem.processPeakBytes,
      elapsedS: (now() - t0) / 1000,
    };
  };

  if (o.steps === start) {
    // Nothing to train: an evaluation-only run (or a resume of a finished run).
    if (o.evalBatches.length) {
      const e0 = now();
      evalLoss = await evaluateBatches(o.session, o.evalBatches);
      const tokens = o.evalBatches.reduce((s, b) => s + countTokens(b, o.padId), 0);
      const r = record(start, null, 0, tokens, (now() - e0) / 1000, null);
      r.evalLoss = evalLoss;
      await o.onStep?.(r, 0);
    }
    return { step: start, interrupted: false, paused: false, state: null, history, evalLoss };
  }

  let trainSeconds = 0;
  for (let step = start + 1; step <= o.steps; step++) {
    // A step on one thread never returns to the event loop, so signal handlers (macrotasks)
    // would otherwise run only after the last step.
    if (o.stopRequested) await new Promise((r) => setTimeout(r, 0));
    if (o.stopRequested?.()) {
      await o.save?.(stateForSave(o, step - 1, history));
      return { step: step - 1, interrupted: true, paused: false, state: null, history, evalLoss };
    }
    const lr = learningRate(
      o.schedule.kind,
      o.schedule.baseLr,
      step - 1,
      o.steps,
      o.schedule.warmupSteps,
    );
    const micro: Batch[] = [];
    let tokens = 0;
    for (let i = 0; i < o.gradAccum; i++) {
      const b = o.train!.next();
      tokens += countTokens(b, o.padId);
      micro.push(b);
    }
    const s0 = now();
    const res = await o.session.step(micro, lr);
    const seconds = (now() - s0) / 1000;
    trainSeconds += seconds;
    if (!Number.isFinite(res.loss) || (res.gradNorm !== null && !Number.isFinite(res.gradNorm))) {
      throw new NonFiniteError(step, res.loss, res.gradNorm);
    }
    const point: HistoryPoint = { step, loss: res.loss };
    const evalNow = o.evalBatches.length > 0 &&
      ((o.evalEvery > 0 && step % o.evalEvery === 0) || step === o.steps);
    if (evalNow) {
      evalLoss = await evaluateBatches(o.session, o.evalBatches);
      point.evalLoss = evalLoss;
    }
    history.push(point);
    const r = record(step, res.loss, lr, tokens, seconds, res.gradNorm);
    if (point.evalLoss !== undefined) r.evalLoss = point.evalLoss;
    const done = step - start;
    const etaS = (trainSeconds / done) * (o.steps - step);
    await o.onStep?.(r, etaS);
    if (o.maxWorkingSetBytes && r.workingSetBytes > o.maxWorkingSetBytes) {
      throw new MemoryLimitError(step, r.workingSetBytes, o.maxWorkingSetBytes);
    }
    const rss = o.maxProcessBytes ? o.processBytes?.() ?? null : null;
    if (rss !== null && rss > o.maxProcessBytes!) {
      // Over the budget but not broken: keep the work so far, then stop.
      await o.save?.(stateForSave(o, step, history));
      throw new MemoryLimitError(step, rss, o.maxProcessBytes!, r.workingSetBytes);
    }
    if (o.saveEvery > 0 && step % o.saveEvery === 0) {
      await o.save?.(stateForSave(o, step, history));
    }
    const meanMs = (now() - t0) / done;
    const pause = step < o.steps && (
      (o.stopAfterSteps != null && done >= o.stopAfterSteps) ||
      (o.stopAfterMs != null && now() - t0 + meanMs > o.stopAfterMs)
    );
    if (pause) {
      const state = await encodeRunState(stateForSave(o, step, history));
      return { step, interrupted: false, paused: true, state, history, evalLoss };
    }
  }
  return { step: o.steps, interrupted: false, paused: false, state: null, history, evalLoss };
}
