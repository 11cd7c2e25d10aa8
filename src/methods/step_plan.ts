/**
 * What a method's memory plan is made of: the arena peaks of the block and head functions, from
 * their buffer tables (`src/model/block_tables.ts`, `head_tables.ts`), and the step's shape. Each
 * method combines them in its own `...StepBytes` beside its gradient function, as its step
 * allocates; `memory_plan.ts` builds the parts and sums the session's terms around them.
 */
import type { BlockPeaks } from "../model/block_tables.ts";
import type { CheckpointsKind } from "./block_checkpoints.ts";

/** Bytes of the parts of a step, and the step's shape. */
export interface StepParts extends BlockPeaks {
  /** One `[N, D]` f32 buffer: the residual stream, a tape's input copy, or one checkpoint. */
  residual: number;
  /** The LM head and loss, forward only (`headLoss`). */
  headForward: number;
  /** The LM head and loss with their backward (`headLossBackward`). */
  headBackward: number;
  numLayers: number;
  /** Blocks whose tapes the step keeps (see `MethodSpec.tapes` in `registry.ts`). */
  keptTapes: number;
  /** Where the block checkpoints are kept: `memory` (absent) or a spill (one `residual` in all). */
  checkpoints?: CheckpointsKind;
}
