/**
 * The optimizer contract: parameters and their gradients live as f32 buffers in the kernels'
 * linear memory, optimizer state is allocated ONCE in the arena at creation, and updates are
 * applied one tensor at a time so a training method can update a block as soon as its gradient
 * is ready (no whole-model gradient buffer).
 *
 * A step is `beginStep()` once, then `update(p, lr)` for every parameter tensor.
 */
import type { ParamTensor } from "../runtime/ptr.ts";

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

/**
 * What a training session saves of its optimizer to resume exactly: the steps taken, the state
 * tensors, and the position of the session's random stream.
 */
export interface OptimizerState {
  stepCount: number;
  tensors: Map<string, StateTensor>;
  rng: number[];
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
