/**
 * A training session: the LoRA adapters, the optimizer and one of the training methods over a
 * frozen {@link WeightStore}, behind the small interface the trainer drives.
 *
 * Memory: the adapters (+ gradients) and the optimizer state are allocated once, here; every
 * step allocates its activations on the arena top and releases them, so after the first step a
 * step never grows linear memory (checked by `memory().grewLastStep`).
 *
 * Update order: with one micro-batch and no clipping, each block's parameters are updated as
 * soon as that block's backward is done (its B was already used for dx, so dx sees the
 * pre-update B). Otherwise all gradients are accumulated, clipped by global norm, then applied.
 *
 * Clipping with one micro-batch (`clipStash` "bf16", the default) keeps one block-sized f32
 * slot: each block's gradient is summed into the global norm from f32 (exact) and stashed in
 * bf16; once the norm is known, each block's gradient is read back, clipped and applied. The
 * norm and clip factor equal the exact path's; the update differs only by the gradients' bf16
 * rounding (<= 2^-8 relative each). `clipStash` "f32" (or `wholeGradients`) is the exact path:
 * a whole-model f32 gradient buffer.
 *
 * Gradient storage (`LoraParams`): a session that will only ever update per block (`gradAccum`
 * 1, no clipping) keeps ONE block-sized gradient slot shared by every block instead of a
 * whole-model gradient buffer; the global gradient norm it reports is summed per tensor before
 * each block's update; clipping through the bf16 stash keeps the same slot plus the stash. With
 * `gradAccum` > 1, clipping with `clipStash` "f32", or `wholeGradients` a whole buffer is
 * allocated at creation; MeZO keeps none (its workspace is a one-block backup slot and a chunk
 * of z). A step with more micro-batches than `gradAccum` promised switches to a whole buffer then
 * (an unplanned allocation, reported as growth).
 *
 * @example
 * ```ts
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
 * import { createTrainingSession } from "./session.ts";
 * const { kernels, arena } = loadKernelsSync({ variant: "reference" });
 * const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 1 });
 * const session = await createTrainingSession({
 *   store, kernels, arena, method: "mesp", seed: 1, maxGradNorm: 0,
 *   lora: { rank: 4, alpha: 8, targets: ["q", "k", "v", "o", "gate", "up", "down"] },
 *   optimizer: { kind: "adamw", lr: 1e-3, weightDecay: 0 },
 * });
 * const ids = new Int32Array([1, 2, 3, 4]);
 * const r = await session.step([{ inputIds: ids, labels: ids, batchSize: 1, seqLen: 4 }], 1e-3);
 * console.log(r.loss);
 * ```
 */
import type { Kernels } from "../kernels/abi.ts";
import { type LoraConfig, LoraParams, type LoraTensors } from "../model/lora.ts";
import type { Batch } from "../data/batch.ts";
import { countTargets } from "../data/labels.ts";
import {
  type BlockHooks,
  forwardLoss,
  type LoraModel,
  prepareBatch,
} from "../model/transformer.ts";
import type { WeightStore } from "../model/weights.ts";
import { clipFactor, clipGradNorm, globalGradNorm } from "../optim/clip.ts";
import { createOptimizer } from "../optim/factory.ts";
import type { Optimizer, OptimizerConfig, OptimizerState } from "../optim/optimizer.ts";
import type { Arena } from "../runtime/arena.ts";
import { Rng } from "../runtime/rng.ts";
import type { GradientMethod } from "./gradient.ts";
import { createMezoWorkspace, mezoStep, type MezoWorkspace } from "./mezo.ts";
import {
  checkpointsBlocks,
  hasGradients,
  type LcsbSettings,
  METHOD_DEFAULTS,
  type MethodName,
  METHODS,
} from "./registry.ts";
import {
  type ClipStash,
  clipStashBytes,
  DEFAULT_HEAD_CHUNK_ROWS,
  defaultMlpChunkRows,
  gradientStorageFor,
  keepsTapes,
  usesClipStash,
} from "./memory_plan.ts";
import { stashBf16, unstashBf16 } from "../optim/bf16_stash.ts";
import { headChunkRowsOf } from "../model/head_tables.ts";
import type { CheckpointsOption, CheckpointSpill } from "./block_checkpoints.ts";

export type { Batch } from "../data/batch.ts";
export type { LoraConfig } from "../model/lora.ts";
export type { MethodName } from "./registry.ts";
export type { CheckpointsOption, CheckpointSpill } from "./block_checkpoints.ts";

export interface SessionOptions {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  method: MethodName;
  lora: LoraConfig;
  optimizer: OptimizerConfig;
  /** Global gradient-norm clipping threshold; 0 = off. */
  maxGradNorm: number;
  /** LCSB groups (default 4, capped at the layer count) and pattern (default contiguous). */
  lcsb?: LcsbSettings;
  /** MeZO perturbation scale (default 1e-2). */
  mezo?: { eps: number };
  /** Seeds the LoRA init and the session's Rng (MeZO directions). */
  seed: number;
  /** Vocabulary rows per LM-head chunk (default 1024; rounded up to a multiple of 16). */
  headChunkRows?: number;
  /** Token rows per MLP chunk (lean forward, MeSP backward); default `defaultMlpChunkRows`. */
  mlpChunkRows?: number;
  /**
   * Most micro-batches a step will get (default 1). Above 1 a whole-model gradient buffer is
   * planned and allocated at creation (accumulation needs it).
   */
  gradAccum?: number;
  /** Keep a whole-model gradient buffer even when per-block updates need only one block's. */
  wholeGradients?: boolean;
  /** How clipping holds the gradients until the norm is known (default `bf16`; see the module doc). */
  clipStash?: ClipStash;
  /**
   * mebp, mesp: the top blocks whose tapes a step keeps from the forward, so their backward
   * recomputes nothing (default 0; the layer count runs as fast as `full`, at its memory).
   */
  keptTapes?: number;
  /**
   * mebp, mesp, lcsb: where a step keeps the checkpointed block inputs: `"memory"` (the default),
   * in the arena, one `[N, D]` f32 buffer per block; or a host's {@link CheckpointSpill} (e.g. a
   * scratch file), which leaves one such buffer in the arena for all of them (the gradients are
   * the same bits). Other methods checkpoint nothing: a spill given to them is an error.
   */
  checkpoints?: CheckpointsOption;
}

export interface StepResult {
  /** Mean cross-entropy over the step's counted tokens (HF semantics). */
  loss: number;
  /** Global gradient norm before clipping (null for MeZO). */
  gradNorm: number | null;
  /** Tokens that counted in the loss (rows with a target: docs/design.md, "Loss and labels"). */
  tokens: number;
}

export interface TrainingSession {
  readonly options: SessionOptions;
  /** One optimizer step over micro-batches (gradient accumulation = micro.length). */
  step(micro: Batch[], lr: number): Promise<StepResult>;
  evaluate(batch: Batch): Promise<{ loss: number; tokens: number }>;
  /** LoRA tensors with PEFT names ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"). */
  loraTensors(): LoraTensors;
  /**
   * The same tensors as views of the session's memory (no copies): valid only until the next
   * `step`/`evaluate`. Writers that stream the adapter out use it to avoid a second copy.
   */
  loraTensorViews?(): LoraTensors;
  setLoraTensors(t: LoraTensors): void;
  optimizerState(): OptimizerState;
  /** {@link optimizerState} with views instead of copies (valid until the next step). */
  optimizerStateViews?(): OptimizerState;
  setOptimizerState(
    s: OptimizerState,
  ): void;
  /** Bytes: wasm linear-memory high-water, JS buffers held (store + session), whether memory grew in the last step. */
  memory(): { wasmHighWater: number; jsBytes: number; grewLastStep: boolean };
}

/** The session implementation, with internals the tests use. */
export class LoraTrainingSession implements TrainingSession {
  readonly model: LoraModel;
  readonly lora: LoraParams;
  readonly optimizer: Optimizer | null;
  readonly #mezoWorkspace: MezoWorkspace | null;
  /** MeZO: tensor indices (into `lora.params`) of each transformer block. */
  readonly #mezoBlocks: number[][];
  #rng: Rng;
  #steps = 0;
  readonly #squares: Float64Array;
  /** The bf16 clipping stash (0: none) and its length in values. */
  readonly #stash: number;
  readonly #stashLength: number;
  #grewLastStep = false;

  /** Where the block checkpoints go instead of the arena (null: the arena). */
  get #spill(): CheckpointSpill | null {
    const c = this.options.checkpoints;
    return c === undefined || c === "memory" ? null : c;
  }

  constructor(readonly options: SessionOptions) {
    const o = options;
    const config = o.store.config;
    if (!(o.maxGradNorm >= 0)) {
      throw new RangeError(`maxGradNorm must be >= 0, got ${o.maxGradNorm}`);
    }
    const rows = o.headChunkRows ?? DEFAULT_HEAD_CHUNK_ROWS;
    if (!(Number.isInteger(rows) && rows > 0)) throw new RangeError(`headChunkRows ${rows}`);
    const mlpRows = o.mlpChunkRows ?? defaultMlpChunkRows(config);
    if (!(Number.isInteger(mlpRows) && mlpRows > 0)) {
      throw new RangeError(`mlpChunkRows ${mlpRows}`);
    }
    const accum = o.gradAccum ?? 1;
    if (!(Number.isInteger(accum) && accum > 0)) throw new RangeError(`gradAccum ${accum}`);
    const storage = {
      method: o.method,
      gradAccum: accum,
      maxGradNorm: o.maxGradNorm,
      clipStash: o.clipStash,
      wholeGradients: o.wholeGradients,
    };
    this.lora = new LoraParams(config, o.lora, o.arena, o.seed, gradientStorageFor(storage));
    if (usesClipStash(storage)) {
      const bytes = clipStashBytes(config, o.lora);
      this.#stash = o.arena.alloc(bytes);
      this.#stashLength = bytes / 2;
    } else {
      this.#stash = 0;
      this.#stashLength = 0;
    }
    this.model = {
      config,
      store: o.store,
      kernels: o.kernels,
      arena: o.arena,
      lora: this.lora,
      headChunkRows: headChunkRowsOf(rows),
      mlpChunkRows: mlpRows,
    };
    if (!hasGradients(o.method)) {
      this.optimizer = null;
      this.#mezoBlocks = mezoBlocks(this.lora);
      this.#mezoWorkspace = createMezoWorkspace(o.arena, this.lora.params, this.#mezoBlocks);
    } else {
      this.optimizer = createOptimizer(o.optimizer, o.kernels, o.arena, this.lora.params);
      this.#mezoWorkspace = null;
      this.#mezoBlocks = [];
    }
    METHODS[o.method].checkSettings?.(config.numLayers, o); // validate early
    const kept = o.keptTapes ?? 0;
    if (!(Number.isInteger(kept) && kept >= 0 && kept <= config.numLayers)) {
      throw new RangeError(`keptTapes must be in 0..${config.numLayers}, got ${kept}`);
    }
    if (kept > 0 && !keepsTapes(o.method)) {
      throw new RangeError(`${o.method} keeps no tapes (only mebp and mesp do)`);
    }
    if (this.#spill && !checkpointsBlocks(o.method)) {
      throw new RangeError(`${o.method} checkpoints no blocks (a spill serves mebp, mesp, lcsb)`);
    }
    this.#rng = new Rng(o.seed);
    this.#squares = new Float64Array(this.lora.params.length);
  }

  /** Steps taken (the LCSB schedule and MeZO count from it). */
  get stepCount(): number {
    return this.optimizer?.stepCount ?? this.#steps;
  }

  /** The gradient method the next step uses (LCSB: the group of this step). */
  gradientMethod(): GradientMethod {
    const { method, keptTapes, lcsb } = this.options;
    const gradientMethod = METHODS[method].gradientMethod;
    if (!gradientMethod) throw new Error(`${method} has no gradient method`);
    return gradientMethod({
      step: this.stepCount,
      numLayers: this.model.config.numLayers,
      keptTapes: keptTapes ?? 0,
      lcsb,
      spill: this.#spill ?? undefined,
    });
  }

  /**
   * Zeroes the gradients and accumulates those of `micro` with the next step's method, without
   * updating, into a whole-model gradient buffer (switched to if the session had a block slot),
   * so every gradient can be read afterwards. Returns Σ loss and counted tokens.
   */
  accumulateGradients(micro: Batch[]): Promise<{ lossSum: number; tokens: number }> {
    this.lora.ensureWholeGrads();
    return this.#accumulate(micro, () => {});
  }

  /** {@link accumulateGradients} into the current storage; `onBlockDone` as in {@link GradientMethod}. */
  async #accumulate(
    micro: Batch[],
    onBlockDone: (block: number) => void,
  ): Promise<{ lossSum: number; tokens: number }> {
    const { config, arena } = this.model;
    let tokens = 0;
    for (const b of micro) tokens += countTargets(b, config.vocabSize);
    this.lora.zeroGrads();
    if (tokens === 0) return { lossSum: NaN, tokens };
    const method = this.gradientMethod();
    let lossSum = 0;
    for (const b of micro) {
      const mark = arena.mark();
      try {
        const p = prepareBatch(this.model, b);
        lossSum += await method(this.model, p, 1 / tokens, onBlockDone);
      } finally {
        arena.release(mark);
      }
    }
    return { lossSum, tokens };
  }

  async step(micro: Batch[], lr: number): Promise<StepResult> {
    if (micro.length === 0) throw new RangeError("step needs at least one micro-batch");
    const grows = this.model.arena.grows;
    try {
      if (!hasGradients(this.options.method)) return await this.#mezoStep(micro, lr);
      const opt = this.optimizer!;
      const clip = this.options.maxGradNorm;
      // Clipping through the bf16 stash: the block slot is still in use (one micro-batch).
      const stashed = this.#stash !== 0 && micro.length === 1 &&
        this.lora.gradientStorage === "block";
      const perBlock = micro.length === 1 && clip === 0;
      if (!perBlock && !stashed) this.lora.ensureWholeGrads();
      let updated = false;
      // Squared norm of each tensor's gradient, taken before its update (a block slot is
      // overwritten by the next block), summed in `params` order like globalGradNorm.
      const squares = this.#squares;
      const perTensor = this.lora.params.length / this.model.config.numLayers;
      const k = this.model.kernels;
      const arena = this.model.arena;
      const base = this.lora.base;
      const onBlockDone = perBlock
        ? (i: number) => {
          if (!updated) opt.beginStep();
          updated = true;
          const ps = this.lora.blockParams(i);
          for (let j = 0; j < ps.length; j++) {
            squares[i * perTensor + j] = k.sumSquares(ps[j].grad, ps[j].n);
            opt.update(ps[j], lr);
          }
        }
        : stashed
        ? (i: number) => {
          const ps = this.lora.blockParams(i);
          const stash = this.#stashView();
          for (let j = 0; j < ps.length; j++) {
            squares[i * perTensor + j] = k.sumSquares(ps[j].grad, ps[j].n);
            stashBf16(arena.f32(ps[j].grad, ps[j].n), stash, (ps[j].ptr - base) / 4);
          }
        }
        : () => {};
      const { lossSum, tokens } = await this.#accumulate(micro, onBlockDone);
      if (tokens === 0) return { loss: NaN, gradNorm: null, tokens };
      let gradNorm: number;
      if (perBlock || stashed) {
        let sum = 0;
        for (const v of squares) sum += v;
        gradNorm = Math.sqrt(sum);
      } else {
        gradNorm = clip > 0
          ? clipGradNorm(this.model.kernels, this.lora.params, clip)
          : globalGradNorm(this.model.kernels, this.lora.params);
        opt.beginStep();
        for (const p of this.lora.params) opt.update(p, lr);
      }
      if (stashed) {
        const factor = clipFactor(gradNorm, clip);
        opt.beginStep();
        for (let i = 0; i < this.lora.blocks.length; i++) {
          const stash = this.#stashView();
          for (const p of this.lora.blockParams(i)) {
            unstashBf16(stash, (p.ptr - base) / 4, arena.f32(p.grad, p.n));
            if (factor !== 1) k.scale(p.grad, factor, p.n);
            opt.update(p, lr);
          }
        }
      }
      return { loss: lossSum / tokens, gradNorm, tokens };
    } finally {
      this.#grewLastStep = this.model.arena.grows !== grows;
    }
  }

  /** Bytes of the bf16 clipping stash (0: none). */
  get clipStashBytes(): number {
    return this.#stashLength * 2;
  }

  #stashView(): Uint16Array {
    return new Uint16Array(this.model.arena.memory.buffer, this.#stash, this.#stashLength);
  }

  async #mezoStep(micro: Batch[], lr: number): Promise<StepResult> {
    let tokens = 0;
    for (const b of micro) tokens += countTargets(b, this.model.config.vocabSize);
    if (tokens === 0) return { loss: NaN, gradNorm: null, tokens };
    // Block i's adapters are perturbed just in time around block i's forward (one block-sized
    // backup), once per micro-batch.
    const loss = async (hooks: BlockHooks) => {
      let sum = 0;
      for (const b of micro) sum += (await forwardLoss(this.model, b, hooks)).lossSum;
      return sum / tokens;
    };
    const r = await mezoStep({
      kernels: this.model.kernels,
      arena: this.model.arena,
      params: this.lora.params,
      blocks: this.#mezoBlocks,
      loss,
      eps: this.options.mezo?.eps ?? METHOD_DEFAULTS.mezo.eps,
      lr,
      weightDecay: this.options.optimizer.weightDecay,
      seed: this.#rng.nextU32(),
      workspace: this.#mezoWorkspace!,
    });
    this.#steps++;
    return { loss: r.loss, gradNorm: null, tokens };
  }

  async evaluate(batch: Batch): Promise<{ loss: number; tokens: number }> {
    const grows = this.model.arena.grows;
    const { lossSum, count } = await forwardLoss(this.model, batch);
    if (this.model.arena.grows !== grows) this.#grewLastStep = true;
    return { loss: count > 0 ? lossSum / count : NaN, tokens: count };
  }

  loraTensors(): LoraTensors {
    return this.lora.toMap();
  }

  loraTensorViews(): LoraTensors {
    return this.lora.views();
  }

  setLoraTensors(t: LoraTensors): void {
    this.lora.fromMap(t);
  }

  optimizerState(): OptimizerState {
    return {
      stepCount: this.stepCount,
      tensors: this.optimizer?.stateTensors() ?? new Map(),
      rng: this.#rng.getState(),
    };
  }

  optimizerStateViews(): OptimizerState {
    const o = this.optimizer;
    return {
      stepCount: this.stepCount,
      tensors: (o?.stateViews ? o.stateViews() : o?.stateTensors()) ?? new Map(),
      rng: this.#rng.getState(),
    };
  }

  setOptimizerState(
    s: OptimizerState,
  ): void {
    if (this.optimizer) this.optimizer.loadState(s.stepCount, s.tensors);
    else this.#steps = s.stepCount;
    this.#rng = Rng.fromState(s.rng);
  }

  memory(): { wasmHighWater: number; jsBytes: number; grewLastStep: boolean } {
    return {
      wasmHighWater: this.model.arena.highWater,
      jsBytes: this.options.store.jsBytesHeld(),
      grewLastStep: this.#grewLastStep,
    };
  }
}

/** Tensor indices of each block's adapters in `lora.params` (MeZO's just-in-time blocks). */
function mezoBlocks(lora: LoraParams): number[][] {
  const index = new Map(lora.params.map((p, t) => [p, t]));
  return lora.blocks.map((_, i) => lora.blockParams(i).map((p) => index.get(p)!));
}

/** Creates a session: allocates the adapters and the optimizer state in the arena. */
export function createTrainingSession(o: SessionOptions): Promise<TrainingSession> {
  return Promise.resolve(new LoraTrainingSession(o));
}
