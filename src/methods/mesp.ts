/**
 * `mesp` (MeSP, arXiv 2602.13069): the same block checkpoints as MeBP, but each block's backward
 * is the hand-ordered structured backward of `blockBackwardStructured` (src/model/block.ts): no
 * LoRA `h` is stored (recomputed, r ≪ d_in), every intermediate is freed right after its last
 * use, and the MLP runs in row chunks. Exact gradient, identical to MeBP up to f32 rounding.
 */
import { blockBackwardStructured } from "../model/block.ts";
import { type BlockBackward, checkpointedGradients } from "./recompute.ts";
import type { GradientMethod } from "./gradient.ts";
import type { CheckpointSpill } from "./block_checkpoints.ts";
import { checkpointedStepBytes } from "./recompute.ts";
import type { StepParts } from "./step_plan.ts";

/** MeSP's block backward, as a {@link BlockBackward}. */
export const structuredBlockBackward: BlockBackward = (m, p, bw, i, x, dy) =>
  blockBackwardStructured(p.block, bw, m.lora.blocks[i], x, dy);

/**
 * MeSP with the tapes of the top `keptTapes` blocks kept from the forward (no recompute for
 * them; see `recompute.ts`): 0 is plain MeSP, the layer count does what `full` does. `spill`:
 * where the block checkpoints go instead of the arena (see `block_checkpoints.ts`).
 */
export function mespKeeping(keptTapes: number, spill?: CheckpointSpill): GradientMethod {
  return (m, p, rowScale, onBlockDone) =>
    checkpointedGradients(
      m,
      p,
      rowScale,
      onBlockDone,
      () => true,
      structuredBlockBackward,
      keptTapes,
      spill,
    );
}

/** Peak bytes of a MeSP step: its block backward is the structured one. */
export function mespStepBytes(p: StepParts): number {
  return checkpointedStepBytes(p, p.structuredBackward);
}

/** Block-checkpointed backprop with the structured block backward; see the module doc. */
export const mespGradients: GradientMethod = mespKeeping(0);
