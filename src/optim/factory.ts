/**
 * Builds an optimizer of the contract in `optimizer.ts` from its config, and allocates its state
 * once in the arena.
 *
 * @example
 * ```ts
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { createOptimizer } from "./factory.ts";
 * const { kernels, arena } = loadKernelsSync({ variant: "reference" });
 * const p = { name: "w", ptr: arena.allocF32(4), grad: arena.allocF32(4), n: 4 };
 * arena.f32(p.ptr, 4).fill(1);
 * arena.f32(p.grad, 4).fill(0.5);
 * const opt = createOptimizer({ kind: "adamw", lr: 1e-3, weightDecay: 0 }, kernels, arena, [p]);
 * opt.beginStep();
 * opt.update(p, 1e-3);
 * ```
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Arena } from "../runtime/arena.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import { tableBytes } from "../model/buffer_table.ts";
import { AdamW, adamwStateTable } from "./adamw.ts";
import { AdamW8bit, adamw8bitStateBytes } from "./adamw8bit.ts";
import type { Optimizer, OptimizerConfig, OptimizerKind } from "./optimizer.ts";
import { Sgd } from "./sgd.ts";

/** Arena bytes of the state `kind` keeps for one `n`-value tensor, as its constructor allocates it. */
export function optimizerStateBytes(kind: OptimizerKind, n: number): number {
  switch (kind) {
    case "adamw":
      return tableBytes(adamwStateTable(n));
    case "adamw8bit":
      return adamw8bitStateBytes(n);
    case "sgd":
      return 0;
  }
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
