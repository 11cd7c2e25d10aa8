/**
 * `full`: standard backprop. The forward keeps every intermediate of every block (what an
 * autodiff tape keeps), then the backward walks the tapes top to bottom, freeing each one after
 * its block. The baseline the memory-efficient methods are measured against.
 */
import { blockBackwardTape, blockForwardTape, type BlockTape } from "../model/block.ts";
import { headLossBackward } from "../model/head.ts";
import { embed } from "../model/transformer.ts";
import type { GradientMethod } from "./gradient.ts";
import type { StepParts } from "./step_plan.ts";

/**
 * Peak bytes of {@link fullGradients}' step: one `[N, D]` residual buffer (which the head's dx
 * turns into dy) and every block's input copy and tape, with the head's backward or the top
 * tape's on top.
 */
export function fullStepBytes(p: StepParts): number {
  return p.residual + p.numLayers * (p.residual + p.tape) +
    Math.max(p.headBackward, p.tapeBackward);
}

/** Full-tape forward and backward; see the module doc. */
export const fullGradients: GradientMethod = async (m, p, rowScale, onBlockDone) => {
  const { arena, store, config } = m;
  const D = config.hiddenSize;
  const mark = arena.mark();
  try {
    const resid = arena.allocF32(p.N * D);
    const dy = resid; // the head's dx overwrites the final hidden states
    await embed(m, p, resid);
    const tapes: BlockTape[] = [];
    for (let i = 0; i < config.numLayers; i++) {
      const bw = await store.acquireBlock(i);
      try {
        // The tape owns a copy of the block input; the output overwrites the residual stream.
        const tapeMark = arena.mark();
        const x = arena.allocF32(p.N * D);
        arena.f32(x, p.N * D).set(arena.f32(resid, p.N * D));
        const tape = blockForwardTape(p.block, bw, m.lora.blocks[i], x, resid);
        tapes.push({ ...tape, mark: tapeMark });
      } finally {
        store.releaseBlock(i);
      }
    }
    const loss = await headLossBackward(p.head, resid, p.targets, p.N, rowScale, dy);
    for (let i = config.numLayers - 1; i >= 0; i--) {
      const bw = await store.acquireBlock(i);
      m.lora.beginBlockGrads(i);
      try {
        blockBackwardTape(p.block, bw, m.lora.blocks[i], tapes[i], dy);
      } finally {
        store.releaseBlock(i);
      }
      arena.release(tapes[i].mark);
      onBlockDone(i);
    }
    return loss;
  } finally {
    arena.release(mark);
  }
};
