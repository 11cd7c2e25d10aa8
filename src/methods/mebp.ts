/**
 * `mebp` (MeBP, arXiv 2510.03425): checkpoint each block's input in the forward; in backward,
 * per block top to bottom, re-run the block's forward keeping every intermediate an autodiff tape
 * keeps (incl. each LoRA `h = x Aᵀ`), back-propagate it, free it. Exact gradient, +1 forward.
 */
import { blockBackwardTape, blockForwardTape } from "../model/block.ts";
import { type BlockBackward, checkpointedGradients } from "./recompute.ts";
import type { GradientMethod } from "./gradient.ts";
import type { CheckpointSpill } from "./block_checkpoints.ts";
import { checkpointedStepBytes } from "./recompute.ts";
import type { StepParts } from "./step_plan.ts";

/** MeBP's block backward: the tape recomputed from the checkpoint, back-propagated, freed. */
const tapeRecomputeBackward: BlockBackward = (m, p, bw, i, x, dy) => {
  const tape = blockForwardTape(p.block, bw, m.lora.blocks[i], x, 0);
  try {
    blockBackwardTape(p.block, bw, m.lora.blocks[i], tape, dy);
  } finally {
    m.arena.release(tape.mark);
  }
};

/**
 * MeBP with the tapes of the top `keptTapes` blocks kept from the forward instead of recomputed
 * (see `recompute.ts`): 0 is plain MeBP, the layer count does what `full` does. `spill`: where
 * the block checkpoints go instead of the arena (see `block_checkpoints.ts`).
 */
export function mebpKeeping(keptTapes: number, spill?: CheckpointSpill): GradientMethod {
  return (m, p, rowScale, onBlockDone) =>
    checkpointedGradients(
      m,
      p,
      rowScale,
      onBlockDone,
      () => true,
      tapeRecomputeBackward,
      keptTapes,
      spill,
    );
}

/** Peak bytes of a MeBP step: its block backward is a recomputed tape and the tape's backward. */
export function mebpStepBytes(p: StepParts): number {
  return checkpointedStepBytes(p, Math.max(p.tapeRecompute, p.tape + p.tapeBackward));
}

/** Block-checkpointed backprop with a per-block tape; see the module doc. */
export const mebpGradients: GradientMethod = mebpKeeping(0);
