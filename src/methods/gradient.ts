/**
 * What every exact or surrogate training method provides: one forward + backward over a
 * prepared batch that accumulates LoRA gradients into their buffers.
 */
import type { LoraModel, PreparedBatch } from "../model/transformer.ts";

/**
 * Runs forward and backward for one (micro-)batch. The loss gradient is scaled by `rowScale`
 * per counted row (1 / tokens of the whole step gives HF's mean). Gradients ADD into the LoRA
 * gradient buffers. `onBlockDone(i)` is called exactly once per block, top block first, as soon as
 * block i's gradients for this batch are complete and nothing later reads its parameters (so a
 * per-block optimizer update may run there). Before block i's gradients are accumulated (or, for
 * a block that gets none, before its `onBlockDone`) the method calls `m.lora.beginBlockGrads(i)`,
 * so a block-sized gradient slot can serve every block. Returns Σ cross-entropy over counted rows.
 */
export type GradientMethod = (
  m: LoraModel,
  p: PreparedBatch,
  rowScale: number,
  onBlockDone: (block: number) => void,
) => Promise<number>;
