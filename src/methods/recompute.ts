/**
 * The shared skeleton of the block-checkpointing methods (`mebp`, `mesp`, `lcsb`): a lean forward
 * that stores only the inputs of the blocks that will be back-propagated, the fused head, then a
 * top-to-bottom backward that hands each selected block to a block-backward function and passes
 * the gradient through the others unchanged.
 *
 * Kept tapes: the top `kept` blocks run the tape forward instead (what `full` keeps: their input
 * and every intermediate), so their backward reads the tape and recomputes nothing; the blocks
 * below are checkpointed as before. Each kept tape is freed right after its block's backward,
 * top down, so the backward of the checkpointed blocks runs with none of them left. `kept` 0
 * is the plain method; `kept` = the layer count does what `full` does.
 *
 * The checkpoints live in the arena, or, given a {@link CheckpointSpill}, outside it with one
 * arena buffer that each block's input is loaded into before its backward (`block_checkpoints.ts`).
 */
import type { Ptr } from "../runtime/ptr.ts";
import {
  blockBackwardTape,
  blockForward,
  blockForwardTape,
  type BlockTape,
} from "../model/block.ts";
import { headLossBackward } from "../model/head.ts";
import { BlockCheckpoints, type CheckpointSpill } from "./block_checkpoints.ts";
import type { LoraModel, PreparedBatch } from "../model/transformer.ts";
import { embed } from "../model/transformer.ts";
import type { BlockWeights } from "../model/weights.ts";
import { checkpointBytes } from "./block_checkpoints.ts";
import type { StepParts } from "./step_plan.ts";

/** Back-propagates block `i` from its checkpointed input `x`, turning `dy` into dx in place. */
export type BlockBackward = (
  m: LoraModel,
  p: PreparedBatch,
  bw: BlockWeights,
  i: number,
  x: Ptr,
  dy: Ptr,
) => void;

/**
 * Peak bytes of a {@link checkpointedGradients} step with `checkpointed` checkpointed blocks
 * (default: every block below the kept ones) whose backward peaks at `blockBackward` bytes: the
 * residual, the checkpoints, then the larger of the kept blocks (an input copy and a tape each,
 * with the head or the top tape's backward on top) and the checkpointed blocks' lean forward
 * (before any tape exists) or backward (after every tape is freed).
 */
export function checkpointedStepBytes(
  p: StepParts,
  blockBackward: number,
  checkpointed = p.numLayers - p.keptTapes,
): number {
  const { residual, numLayers: L, keptTapes: K } = p;
  const kept = K > 0
    ? K * (residual + p.tape) + Math.max(p.headBackward, p.tapeBackward)
    : p.headBackward;
  const below = K < L ? Math.max(p.leanForward, blockBackward) : 0;
  const stored = checkpointBytes(p.checkpoints ?? "memory", checkpointed, residual);
  return residual + stored + Math.max(kept, below);
}

/**
 * Forward with checkpoints for the blocks in `selected` (all blocks for mebp/mesp), head, and
 * backward. Non-selected blocks are identity in backward (`dx_in = dx_out`): their weights are
 * not acquired and nothing is recomputed; the backward stops below the lowest selected block.
 * The top `kept` blocks (all of them selected) keep their tapes (see the module doc). `spill`:
 * where the checkpoints go instead of the arena (none: the arena).
 */
export async function checkpointedGradients(
  m: LoraModel,
  p: PreparedBatch,
  rowScale: number,
  onBlockDone: (block: number) => void,
  selected: (i: number) => boolean,
  backward: BlockBackward,
  kept = 0,
  spill?: CheckpointSpill,
): Promise<number> {
  const { arena, store, config } = m;
  const L = config.numLayers;
  const ND = p.N * config.hiddenSize;
  if (!(Number.isInteger(kept) && kept >= 0 && kept <= L)) {
    throw new RangeError(`kept tapes must be in 0..${L}, got ${kept}`);
  }
  const firstKept = L - kept;
  const mark = arena.mark();
  try {
    const resid = arena.allocF32(ND);
    // The final hidden states are dead once the head is done: their buffer becomes dy.
    const dy = resid;
    const checkpointed: number[] = [];
    const selectedBlocks: number[] = [];
    for (let i = 0; i < L; i++) {
      if (i >= firstKept || selected(i)) selectedBlocks.push(i);
      if (i < firstKept && selected(i)) checkpointed.push(i);
    }
    const checkpoints = new BlockCheckpoints(arena, ND, checkpointed, spill);
    const tapes = new Map<number, BlockTape>();
    await embed(m, p, resid);
    for (let i = 0; i < L; i++) {
      if (checkpoints.has(i)) await checkpoints.save(i, resid);
      const bw = await store.acquireBlock(i);
      try {
        if (i < firstKept) blockForward(p.block, bw, m.lora.blocks[i], resid);
        else {
          // The tape owns a copy of the block input; the output overwrites the residual stream.
          const tapeMark = arena.mark();
          const x = arena.allocF32(ND);
          arena.f32(x, ND).set(arena.f32(resid, ND));
          const tape = blockForwardTape(p.block, bw, m.lora.blocks[i], x, resid);
          tapes.set(i, { ...tape, mark: tapeMark });
        }
      } finally {
        store.releaseBlock(i);
      }
    }
    const loss = await headLossBackward(p.head, resid, p.targets, p.N, rowScale, dy);
    const lowest = Math.min(...selectedBlocks);
    for (let i = L - 1; i >= 0; i--) {
      const tape = tapes.get(i);
      m.lora.beginBlockGrads(i);
      if (tape !== undefined) {
        const bw = await store.acquireBlock(i);
        try {
          blockBackwardTape(p.block, bw, m.lora.blocks[i], tape, dy);
        } finally {
          store.releaseBlock(i);
        }
        arena.release(tape.mark);
      } else if (checkpoints.has(i)) {
        const x = await checkpoints.load(i);
        const bw = await store.acquireBlock(i);
        try {
          backward(m, p, bw, i, x, dy);
        } finally {
          store.releaseBlock(i);
        }
      }
      onBlockDone(i);
      if (i <= lowest) {
        // Nothing below needs dx: the remaining blocks only get their (zero) turn.
        for (let j = i - 1; j >= 0; j--) {
          m.lora.beginBlockGrads(j);
          onBlockDone(j);
        }
        break;
      }
    }
    return loss;
  } finally {
    arena.release(mark);
  }
}
