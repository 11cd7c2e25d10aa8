/**
 * `lcsb` (LCSB, arXiv 2602.13073): layers are split into K groups; at optimizer step t only
 * group `t mod K` is back-propagated (with MeSP's structured block backward). Every other block
 * is `h + stopgrad(block(h) - h)`: exact in the forward, identity in the backward, so its input is
 * not checkpointed and its weights are not touched in backward. Backward stops below the lowest
 * selected block. Non-selected LoRA parameters get a ZERO gradient (their buffers stay zeroed),
 * so AdamW's momentum still moves them. A surrogate gradient, not the exact one.
 */
import { checkpointedGradients } from "./recompute.ts";
import type { GradientMethod } from "./gradient.ts";
import type { CheckpointSpill } from "./block_checkpoints.ts";
import { structuredBlockBackward } from "./mesp.ts";
import { checkpointedStepBytes } from "./recompute.ts";
import type { StepParts } from "./step_plan.ts";

/** How blocks map to groups: `contiguous` (numbered from the input side) or `strided` (i mod K). */
export type LcsbPattern = "contiguous" | "strided";

/** Group of block `i` among `numLayers` blocks and `groups` groups. */
export function lcsbGroupOf(
  i: number,
  numLayers: number,
  groups: number,
  pattern: LcsbPattern,
): number {
  if (!(Number.isInteger(groups) && groups >= 1 && groups <= numLayers)) {
    throw new RangeError(`lcsb groups must be in 1..${numLayers}, got ${groups}`);
  }
  if (pattern === "strided") return i % groups;
  // Contiguous groups of near-equal size; the first `numLayers % groups` groups get one more.
  const base = Math.floor(numLayers / groups);
  const extra = numLayers % groups;
  const bigSpan = (base + 1) * extra;
  return i < bigSpan ? Math.floor(i / (base + 1)) : extra + Math.floor((i - bigSpan) / base);
}

/** Blocks back-propagated at optimizer step `step` (0-based): group `step mod groups`. */
export function lcsbSelectedBlocks(
  step: number,
  numLayers: number,
  groups: number,
  pattern: LcsbPattern,
): number[] {
  const g = step % groups;
  const out: number[] = [];
  for (let i = 0; i < numLayers; i++) {
    if (lcsbGroupOf(i, numLayers, groups, pattern) === g) out.push(i);
  }
  return out;
}

/**
 * Peak bytes of an LCSB step grouped as given: the checkpoints of the largest group, then the
 * largest of the lean forward, the head and a selected block's structured backward.
 */
export function lcsbStepBytes(p: StepParts, groups: number, pattern: LcsbPattern): number {
  let most = 0;
  for (let g = 0; g < groups; g++) {
    most = Math.max(most, lcsbSelectedBlocks(g, p.numLayers, groups, pattern).length);
  }
  return checkpointedStepBytes(p, p.structuredBackward, most);
}

/**
 * LCSB gradients for the given selected blocks (see {@link lcsbSelectedBlocks}); `spill`: where
 * their checkpoints go instead of the arena (see `block_checkpoints.ts`).
 */
export function lcsbGradients(selectedBlocks: number[], spill?: CheckpointSpill): GradientMethod {
  const selected = new Set(selectedBlocks);
  if (selected.size === 0) throw new RangeError("lcsb: no block selected");
  return (m, p, rowScale, onBlockDone) =>
    checkpointedGradients(
      m,
      p,
      rowScale,
      onBlockDone,
      (i) => selected.has(i),
      structuredBlockBackward,
      0,
      spill,
    );
}
