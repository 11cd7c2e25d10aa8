/**
 * The optimizer contract: parameters and their gradients live as f32 buffers in the kernels'
 * linear memory, optimizer state is allocated ONCE in the arena at creation, and updates are
 * applied one tensor at a time so a training method can update a block as soon as its gradient
 * is ready (no whole-model gradient buffer).
 *
 * A step is `beginStep()` once, then `update(p, lr)` for every parameter tensor.
 *
 * @example
 * ```ts
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { createOptimizer } from "./optimizer.ts";
 * const { kernels, arena } = loadKernelsSync({ variant: "reference" });
 * const p = { name: "w", ptr: arena.allocF32(4), grad: arena.allocF32(4), n: 4 };
 * arena.f32(p.ptr, 4).fill(1);
 * arena.f32(p.grad, 4).fill(0.5);
 * const opt = createOptimizer({ kind: "adamw", lr: 1e-3, weightDecay: 0 }, kernels, arena, [p]);
 * opt.beginStep();
 * opt.update(p, 1e-3);
 * ```
 */
import type { Kernels, Ptr } from "../kernels/abi.ts";
import type { Arena } from "../runtime/arena.ts";
import { AdamW } from "./adamw.ts";
import { AdamW8bit } from "./adamw8bit.ts";
import { Sgd } from "./sgd.ts";

export { clipFactor, clipGradNorm, globalGradNorm, scaleGrads } from "./clip.ts";

/** A trainable f32 tensor and its gradient, both `n` floats in the arena. */
export interface ParamTensor {
  name: string;
  ptr: Ptr;
  grad: Ptr;
  n: number;
}

/** An optimizer state tensor: f32 values, or bytes (8-bit codes). */
export type StateTensor = Float32Array | Uint8Array;

/** The optimizers: AdamW with f32 moments, AdamW with 8-bit block-wise moments, plain SGD. */
export type OptimizerKind = "adamw" | "adamw8bit" | "sgd";

/**
 * What optimizer to build. AdamW defaults (both kinds): beta1 0.9, beta2 0.999, eps 1e-8.
 */
export interface OptimizerConfig {
  kind: OptimizerKind;
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** A first-order optimizer over parameter tensors in linear memory. */
export interface Optimizer {
  readonly config: OptimizerConfig;
  /** Completed (begun) optimizer steps; AdamW's bias corrections use it. */
  readonly stepCount: number;
  /** Starts a step: increments `stepCount` and fixes the bias corrections for it. */
  beginStep(): void;
  /** Updates one tensor from its gradient buffer with learning rate `lr` (per-block update). */
  update(p: ParamTensor, lr: number): void;
  /**
   * Copies of the state, keyed `"<param name>.exp_avg"` / `".exp_avg_sq"` (PyTorch names; the
   * 8-bit kind adds `.q` and `.absmax` parts).
   */
  stateTensors(): Map<string, StateTensor>;
  /**
   * The same tensors as views of linear memory (no copies), valid until the next update or
   * allocation; for writing a checkpoint without a second copy of the state. Optional.
   */
  stateViews?(): Map<string, StateTensor>;
  /** Restores `stepCount` and state from `stateTensors()` output (checkpoint resume). */
  loadState(stepCount: number, tensors: Map<string, StateTensor>): void;
}

/** Builds the optimizer and allocates its state for `params` once, in the arena. */
export function createOptimizer(
  cfg: OptimizerConfig,
  kernels: Kernels,
  arena: Arena,
  params: ParamTensor[],
): Optimizer {
  switch (cfg.kind) {
    case "adamw":
      return new AdamW(cfg, kernels, arena, params);
    case "adamw8bit":
      return new AdamW8bit(cfg, arena, params);
    case "sgd":
      return new Sgd(cfg, kernels, params);
    default:
      throw new Error(`unknown optimizer kind ${(cfg as { kind: string }).kind}`);
  }
}
