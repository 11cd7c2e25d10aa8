/**
 * AdamW (Loshchilov & Hutter) with decoupled weight decay and bias correction, PyTorch
 * semantics: `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g²`,
 * `p -= lr (wd p + m̂ / (sqrt(v̂) + eps))`, `m̂ = m / (1 - b1^t)`, `v̂ = v / (1 - b2^t)`.
 *
 * The first and second moments of every parameter tensor are allocated once, zeroed, in the
 * arena when the optimizer is created; a step never allocates.
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import { powInt } from "../runtime/portable_math.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import type { Optimizer, OptimizerConfig, StateTensor } from "./optimizer.ts";

interface MomentBuffers {
  n: number;
  m: Ptr;
  v: Ptr;
}

/** The state of one `n`-value tensor: the first and second moments, f32 each. */
export function adamwStateTable(n: number) {
  return { m: n, v: n };
}

/** AdamW over parameter tensors in linear memory; see the module doc. */
export class AdamW implements Optimizer {
  readonly config: OptimizerConfig;
  readonly #beta1: number;
  readonly #beta2: number;
  readonly #eps: number;
  #stepCount = 0;
  #bc1 = 0;
  #bc2 = 0;
  readonly #state = new Map<string, MomentBuffers>();

  constructor(
    cfg: OptimizerConfig,
    readonly kernels: Kernels,
    readonly arena: Arena,
    params: ParamTensor[],
  ) {
    this.#beta1 = cfg.beta1 ?? 0.9;
    this.#beta2 = cfg.beta2 ?? 0.999;
    this.#eps = cfg.eps ?? 1e-8;
    this.config = { ...cfg, beta1: this.#beta1, beta2: this.#beta2, eps: this.#eps };
    for (const [name, b] of [["beta1", this.#beta1], ["beta2", this.#beta2]] as const) {
      if (!(b >= 0 && b < 1)) throw new RangeError(`AdamW ${name} must be in [0, 1), got ${b}`);
    }
    if (!(this.#eps > 0)) throw new RangeError(`AdamW eps must be > 0, got ${this.#eps}`);
    for (const p of params) {
      if (this.#state.has(p.name)) throw new Error(`duplicate parameter name ${p.name}`);
      const t = adamwStateTable(p.n);
      this.#state.set(p.name, {
        n: p.n,
        m: arena.allocZeroed(t.m * 4),
        v: arena.allocZeroed(t.v * 4),
      });
    }
  }

  get stepCount(): number {
    return this.#stepCount;
  }

  beginStep(): void {
    this.#stepCount++;
    this.#fixBiasCorrections();
  }

  update(p: ParamTensor, lr: number): void {
    if (this.#stepCount === 0) throw new Error("AdamW.update before the first beginStep()");
    const s = this.#buffers(p.name, p.n);
    this.kernels.adamwStep(
      p.ptr,
      p.grad,
      s.m,
      s.v,
      p.n,
      lr,
      this.#beta1,
      this.#beta2,
      this.#eps,
      this.config.weightDecay,
      this.#bc1,
      this.#bc2,
    );
  }

  stateTensors(): Map<string, Float32Array> {
    return new Map([...this.stateViews()].map(([name, v]) => [name, v.slice()]));
  }

  stateViews(): Map<string, Float32Array> {
    const out = new Map<string, Float32Array>();
    for (const [name, s] of this.#state) {
      out.set(`${name}.exp_avg`, this.arena.f32(s.m, s.n));
      out.set(`${name}.exp_avg_sq`, this.arena.f32(s.v, s.n));
    }
    return out;
  }

  loadState(stepCount: number, tensors: Map<string, StateTensor>): void {
    if (!Number.isSafeInteger(stepCount) || stepCount < 0) {
      throw new RangeError(`bad stepCount ${stepCount}`);
    }
    const expected = new Set<string>();
    // Validate everything before writing anything, so a bad checkpoint leaves the state intact.
    for (const [name, s] of this.#state) {
      for (const key of [`${name}.exp_avg`, `${name}.exp_avg_sq`]) {
        expected.add(key);
        const t = tensors.get(key);
        if (!t) throw new Error(`optimizer state lacks ${key}`);
        if (!(t instanceof Float32Array)) throw new Error(`optimizer state ${key} must be F32`);
        if (t.length !== s.n) {
          throw new Error(`optimizer state ${key} has ${t.length} values, want ${s.n}`);
        }
      }
    }
    for (const key of tensors.keys()) {
      if (!expected.has(key)) throw new Error(`optimizer state has unknown tensor ${key}`);
    }
    for (const [name, s] of this.#state) {
      this.arena.f32(s.m, s.n).set(tensors.get(`${name}.exp_avg`) as Float32Array);
      this.arena.f32(s.v, s.n).set(tensors.get(`${name}.exp_avg_sq`) as Float32Array);
    }
    this.#stepCount = stepCount;
    this.#fixBiasCorrections();
  }

  #fixBiasCorrections(): void {
    this.#bc1 = 1 - powInt(this.#beta1, this.#stepCount);
    this.#bc2 = 1 - powInt(this.#beta2, this.#stepCount);
  }

  #buffers(name: string, n: number): MomentBuffers {
    const s = this.#state.get(name);
    if (!s || s.n !== n) {
      throw new Error(`parameter ${name} (n=${n}) is not managed by this optimizer`);
    }
    return s;
  }
}
