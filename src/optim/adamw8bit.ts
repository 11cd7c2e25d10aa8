/**
 * AdamW with 8-bit moments: the same update as {@link AdamW} (decoupled weight decay, bias
 * correction, PyTorch semantics), but each moment is stored as one byte per value plus one f32
 * scale per block of {@link QUANT_BLOCK} values (`blockwise_quant.ts`): 2 bytes + 8/256 bytes of
 * state per parameter instead of 8, about 3.9× smaller.
 *
 * The first moment uses the signed map; the second is stored as `sqrt(v)` on the unsigned map
 * (the update divides by `sqrt(v)`, and the square root halves the range the codes must span).
 * A step decodes one block of both moments, updates them and the parameters in f64 from the f32
 * gradient, and encodes the new moments; only the stored moments are rounded, never the update
 * of the step itself. It runs in TypeScript over views of linear memory (a few passes over the
 * LoRA parameters per step, small beside the step's GEMMs) and allocates nothing per step.
 *
 * Checkpoint tensors per parameter: `<name>.exp_avg.q` and `<name>.exp_avg_sq.q` (U8 codes; the
 * first moment's are int8 in two's complement, the second's encode `sqrt(v)`) and
 * `<name>.exp_avg.scale` / `<name>.exp_avg_sq.scale` (F32 block scales), so a resume restores
 * the state bit for bit.
 */
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import { powInt } from "../runtime/portable_math.ts";
import { decodeBlock, encodeBlock, QUANT_BLOCK, quantBlocks } from "./blockwise_quant.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import type { Optimizer, OptimizerConfig, StateTensor } from "./optimizer.ts";

interface QuantizedMoments {
  n: number;
  mCodes: Ptr;
  vCodes: Ptr;
  mScales: Ptr;
  vScales: Ptr;
}

const align64 = (bytes: number) => Math.ceil(bytes / 64) * 64;

/** Arena bytes of the 8-bit state of one `n`-value tensor, as {@link AdamW8bit} allocates it. */
export function adamw8bitStateBytes(n: number): number {
  return 2 * align64(n) + 2 * align64(quantBlocks(n) * 4);
}

/** 8-bit AdamW over parameter tensors in linear memory; see the module doc. */
export class AdamW8bit implements Optimizer {
  readonly config: OptimizerConfig;
  readonly #beta1: number;
  readonly #beta2: number;
  readonly #eps: number;
  #stepCount = 0;
  #bc1 = 0;
  #bc2 = 0;
  readonly #state = new Map<string, QuantizedMoments>();
  readonly #m = new Float64Array(QUANT_BLOCK);
  readonly #v = new Float64Array(QUANT_BLOCK);

  constructor(cfg: OptimizerConfig, readonly arena: Arena, params: ParamTensor[]) {
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
      const nb = quantBlocks(p.n);
      this.#state.set(p.name, {
        n: p.n,
        mCodes: arena.allocZeroed(p.n),
        vCodes: arena.allocZeroed(p.n),
        mScales: arena.allocZeroed(nb * 4),
        vScales: arena.allocZeroed(nb * 4),
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
    if (this.#stepCount === 0) throw new Error("AdamW8bit.update before the first beginStep()");
    const s = this.#state.get(p.name);
    if (!s || s.n !== p.n) {
      throw new Error(`parameter ${p.name} (n=${p.n}) is not managed by this optimizer`);
    }
    const n = s.n;
    const param = this.arena.f32(p.ptr, n);
    const grad = this.arena.f32(p.grad, n);
    const mCodes = this.arena.u8(s.mCodes, n);
    const vCodes = this.arena.u8(s.vCodes, n);
    const mScales = this.arena.f32(s.mScales, quantBlocks(n));
    const vScales = this.arena.f32(s.vScales, quantBlocks(n));
    const b1 = this.#beta1, b2 = this.#beta2, c1 = 1 - b1, c2 = 1 - b2;
    const bc1 = this.#bc1, bc2 = this.#bc2, eps = this.#eps, wd = this.config.weightDecay;
    const m = this.#m, v = this.#v;
    for (let blk = 0, start = 0; start < n; blk++, start += QUANT_BLOCK) {
      const len = Math.min(QUANT_BLOCK, n - start);
      decodeBlock(mCodes, start, len, mScales[blk], m, 0, "signed");
      decodeBlock(vCodes, start, len, vScales[blk], v, 0, "unsigned");
      for (let i = 0; i < len; i++) {
        const g = grad[start + i];
        const mi = b1 * m[i] + c1 * g;
        const vi = b2 * (v[i] * v[i]) + c2 * (g * g);
        m[i] = mi;
        v[i] = Math.sqrt(vi);
        const pi = param[start + i];
        param[start + i] = pi - lr * (wd * pi + (mi / bc1) / (Math.sqrt(vi / bc2) + eps));
      }
      mScales[blk] = encodeBlock(m, 0, len, mCodes, start, "signed");
      vScales[blk] = encodeBlock(v, 0, len, vCodes, start, "unsigned");
    }
  }

  stateTensors(): Map<string, StateTensor> {
    return new Map([...this.stateViews()].map(([name, v]) => [name, v.slice()]));
  }

  stateViews(): Map<string, StateTensor> {
    const out = new Map<string, StateTensor>();
    for (const [name, s] of this.#state) {
      const nb = quantBlocks(s.n);
      out.set(`${name}.exp_avg.q`, this.arena.u8(s.mCodes, s.n));
      out.set(`${name}.exp_avg.scale`, this.arena.f32(s.mScales, nb));
      out.set(`${name}.exp_avg_sq.q`, this.arena.u8(s.vCodes, s.n));
      out.set(`${name}.exp_avg_sq.scale`, this.arena.f32(s.vScales, nb));
    }
    return out;
  }

  loadState(stepCount: number, tensors: Map<string, StateTensor>): void {
    if (!Number.isSafeInteger(stepCount) || stepCount < 0) {
      throw new RangeError(`bad stepCount ${stepCount}`);
    }
    const views = this.stateViews();
    // Validate everything before writing anything, so a bad checkpoint leaves the state intact.
    for (const [key, view] of views) {
      const t = tensors.get(key);
      if (!t) throw new Error(`optimizer state lacks ${key}`);
      const kind = view instanceof Uint8Array ? "U8" : "F32";
      if (!(t instanceof (view instanceof Uint8Array ? Uint8Array : Float32Array))) {
        throw new Error(`optimizer state ${key} must be ${kind}`);
      }
      if (t.length !== view.length) {
        throw new Error(`optimizer state ${key} has ${t.length} values, want ${view.length}`);
      }
    }
    for (const key of tensors.keys()) {
      if (!views.has(key)) throw new Error(`optimizer state has unknown tensor ${key}`);
    }
    for (const [key, view] of views) {
      const t = tensors.get(key)!;
      if (view instanceof Uint8Array) view.set(t as Uint8Array);
      else view.set(t as Float32Array);
    }
    this.#stepCount = stepCount;
    this.#fixBiasCorrections();
  }

  #fixBiasCorrections(): void {
    this.#bc1 = 1 - powInt(this.#beta1, this.#stepCount);
    this.#bc2 = 1 - powInt(this.#beta2, this.#stepCount);
  }
}
