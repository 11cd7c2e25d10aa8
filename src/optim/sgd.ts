/**
 * Plain SGD with L2-style weight decay folded into the gradient: `p -= lr (g + wd p)` (the
 * MeBP / MeSP papers' setting). No state.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import type { Optimizer, OptimizerConfig, StateTensor } from "./optimizer.ts";

/** SGD without momentum; see the module doc. */
export class Sgd implements Optimizer {
  readonly config: OptimizerConfig;
  #stepCount = 0;
  readonly #sizes = new Map<string, number>();

  constructor(cfg: OptimizerConfig, readonly kernels: Kernels, params: ParamTensor[]) {
    this.config = { ...cfg };
    for (const p of params) {
      if (this.#sizes.has(p.name)) throw new Error(`duplicate parameter name ${p.name}`);
      this.#sizes.set(p.name, p.n);
    }
  }

  get stepCount(): number {
    return this.#stepCount;
  }

  beginStep(): void {
    this.#stepCount++;
  }

  update(p: ParamTensor, lr: number): void {
    const n = this.#sizes.get(p.name);
    if (n !== p.n) {
      throw new Error(`parameter ${p.name} (n=${p.n}) is not managed by this optimizer`);
    }
    this.kernels.sgdStep(p.ptr, p.grad, p.n, lr, this.config.weightDecay);
  }

  stateTensors(): Map<string, StateTensor> {
    return new Map();
  }

  loadState(stepCount: number, tensors: Map<string, StateTensor>): void {
    if (!Number.isSafeInteger(stepCount) || stepCount < 0) {
      throw new RangeError(`bad stepCount ${stepCount}`);
    }
    if (tensors.size !== 0) {
      throw new Error(`SGD has no state, got ${[...tensors.keys()].slice(0, 3).join(", ")}…`);
    }
    this.#stepCount = stepCount;
  }
}
