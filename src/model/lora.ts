/**
 * LoRA adapters for every target linear of every transformer block, PEFT semantics:
 * `y = W0 x (+ b) + s · B (A x)`, `A [r, in]`, `B [out, r]`, `s = alpha / r`.
 *
 * All parameters live in ONE planned arena allocation, followed by the gradient storage, so the
 * optimizer, gradient clipping and MeZO see plain {@link ParamTensor}s, and the memory plan can
 * count them exactly. Gradient storage ({@link GradientStorage}):
 * - `whole`: one gradient buffer with the parameters' layout (needed to clip by the global norm,
 *   to accumulate micro-batches, or to read every gradient after a backward);
 * - `block`: ONE block-sized slot that every block's `grad` pointers share. It serves the
 *   per-block update (one micro-batch, no clipping): block i's gradient is zeroed by
 *   {@link LoraParams.beginBlockGrads}, accumulated by its backward, read by the optimizer in
 *   `onBlockDone(i)`, then overwritten by block i-1. Saves (L-1)/L of the gradient bytes
 *   (16.8 MB for Qwen2.5-0.5B at rank 8);
 * - `none`: no gradients at all (MeZO); `grad` is 0.
 *
 * @example
 * ```ts
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { LoraParams } from "./lora.ts";
 * import { tinyConfig } from "./random_weights.ts";
 * const { arena } = loadKernelsSync({ variant: "reference" });
 * const lora = new LoraParams(tinyConfig("llama"), { rank: 4, alpha: 8, targets: ["q", "v"] }, arena, 1);
 * console.log(lora.params.length); // 2 layers x 2 targets x (A, B)
 * ```
 */
import type { Ptr } from "../runtime/ptr.ts";
import type { ParamTensor } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import { Rng } from "../runtime/rng.ts";
import type { ModelConfig } from "./config.ts";
import { LINEAR_NAMES, type LinearName } from "./weights.ts";

/** A 2-D f32 tensor: `shape[0] × shape[1]` floats, row-major. */
export interface F32Matrix {
  shape: [number, number];
  data: Float32Array;
}

/** LoRA tensors by PEFT name: A `[r, in]`, B `[out, r]`. */
export type LoraTensors = Map<string, F32Matrix>;

/** Which linears get an adapter, its rank and `lora_alpha`. */
export interface LoraConfig {
  rank: number;
  alpha: number;
  targets: LinearName[];
}

/** One adapted linear: its parameter tensors and shapes. */
export interface LoraLinear {
  block: number;
  linear: LinearName;
  rank: number;
  inFeatures: number;
  outFeatures: number;
  /** `alpha / rank`. */
  scale: number;
  /** `A [rank, in]`. */
  a: ParamTensor;
  /** `B [out, rank]`. */
  b: ParamTensor;
}

/** The adapters of one block, by linear name (`undefined` = not a target). */
export type BlockLora = Partial<Record<LinearName, LoraLinear>>;

/** `[out, in]` of a block linear. */
export function linearShape(config: ModelConfig, name: LinearName): [number, number] {
  const d = config.hiddenSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  switch (name) {
    case "q":
      return [qDim, d];
    case "k":
    case "v":
      return [kvDim, d];
    case "o":
      return [d, qDim];
    case "gate":
    case "up":
      return [config.intermediateSize, d];
    case "down":
      return [d, config.intermediateSize];
  }
}

/** PEFT module path of a linear inside a block. */
export function peftModule(name: LinearName): string {
  return name === "gate" || name === "up" || name === "down"
    ? `mlp.${name}_proj`
    : `self_attn.${name}_proj`;
}

/** PEFT tensor name, e.g. `base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight`. */
export function peftName(block: number, name: LinearName, which: "A" | "B"): string {
  return `base_model.model.model.layers.${block}.${peftModule(name)}.lora_${which}.weight`;
}

/** Floats of all LoRA parameters of a model (excluding gradients). */
export function loraParamCount(config: ModelConfig, lora: LoraConfig): number {
  let n = 0;
  for (const name of lora.targets) {
    const [out, inF] = linearShape(config, name);
    n += lora.rank * (inF + out);
  }
  return n * config.numLayers;
}

/** Floats of each LoRA tensor of one block, A then B of each target in order. */
export function loraBlockTensorFloats(config: ModelConfig, lora: LoraConfig): number[] {
  const floats: number[] = [];
  for (const name of lora.targets) {
    const [out, inF] = linearShape(config, name);
    floats.push(lora.rank * inF, lora.rank * out);
  }
  return floats;
}

/** Where gradients live; see the module doc. */
export type GradientStorage = "whole" | "block" | "none";

/** Bytes of the LoRA parameters of one block (64-byte aligned tensors). */
function blockParamBytes(config: ModelConfig, lora: LoraConfig): number {
  let bytes = 0;
  for (const name of lora.targets) {
    const [out, inF] = linearShape(config, name);
    bytes += align64(lora.rank * inF * 4) + align64(lora.rank * out * 4);
  }
  return bytes;
}

/** Bytes of the parameters alone (every block). */
export function loraParamBytes(config: ModelConfig, lora: LoraConfig): number {
  return blockParamBytes(config, lora) * config.numLayers;
}

/** Bytes of the gradient storage in mode `storage`. */
export function loraGradBytes(
  config: ModelConfig,
  lora: LoraConfig,
  storage: GradientStorage,
): number {
  switch (storage) {
    case "whole":
      return loraParamBytes(config, lora);
    case "block":
      return blockParamBytes(config, lora);
    case "none":
      return 0;
  }
}

/** Bytes the allocation of {@link LoraParams} takes (parameters + gradient storage). */
export function loraBytes(
  config: ModelConfig,
  lora: LoraConfig,
  storage: GradientStorage = "whole",
): number {
  return loraParamBytes(config, lora) + loraGradBytes(config, lora, storage);
}

function align64(n: number): number {
  return Math.ceil(n / 64) * 64;
}

/** All adapters of a model, their gradients, and PEFT (de)serialization. */
export class LoraParams {
  /** Every parameter tensor, block-major, linears in `LINEAR_NAMES` order, A before B. */
  readonly params: ParamTensor[] = [];
  readonly blocks: BlockLora[] = [];
  readonly scale: number;
  /** Start and byte length of the allocation (parameters then gradient storage). */
  readonly base: Ptr;
  readonly bytes: number;
  /** Bytes of the parameters (the gradient storage starts at `base + paramBytes`). */
  readonly paramBytes: number;
  /** Bytes of one block's parameters (the `block` gradient slot's size). */
  readonly blockBytes: number;
  #storage: GradientStorage;
  /** Where the gradients live now: the slot / buffer start (0 with `none`). */
  #gradBase: Ptr;

  /**
   * Allocates and initializes: A ~ U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's kaiming-uniform with
   * a = sqrt(5)), B = 0, gradients 0. A is drawn block by block, linear by linear, from `Rng(seed)`.
   */
  constructor(
    readonly config: ModelConfig,
    readonly lora: LoraConfig,
    readonly arena: Arena,
    seed: number,
    storage: GradientStorage = "whole",
  ) {
    if (!(Number.isInteger(lora.rank) && lora.rank > 0)) {
      throw new RangeError(`LoRA rank must be a positive integer, got ${lora.rank}`);
    }
    for (const t of lora.targets) {
      if (!LINEAR_NAMES.includes(t)) throw new RangeError(`unknown LoRA target ${t}`);
    }
    this.scale = lora.alpha / lora.rank;
    this.#storage = storage;
    this.paramBytes = loraParamBytes(config, lora);
    this.blockBytes = blockParamBytes(config, lora);
    this.bytes = loraBytes(config, lora, storage);
    this.base = arena.allocZeroed(this.bytes);
    this.#gradBase = storage === "none" ? 0 : this.base + this.paramBytes;
    let off = this.base;
    const r = lora.rank;
    for (let i = 0; i < config.numLayers; i++) {
      const block: BlockLora = {};
      for (const name of LINEAR_NAMES) {
        if (!lora.targets.includes(name)) continue;
        const [out, inF] = linearShape(config, name);
        const a: ParamTensor = { name: peftName(i, name, "A"), ptr: off, grad: 0, n: r * inF };
        off += align64(r * inF * 4);
        const b: ParamTensor = { name: peftName(i, name, "B"), ptr: off, grad: 0, n: r * out };
        off += align64(r * out * 4);
        block[name] = {
          block: i,
          linear: name,
          rank: r,
          inFeatures: inF,
          outFeatures: out,
          scale: this.scale,
          a,
          b,
        };
        this.params.push(a, b);
      }
      this.blocks.push(block);
    }
    this.#pointGrads();
    const rng = new Rng(seed);
    for (const block of this.blocks) {
      for (const l of Object.values(block)) {
        const bound = 1 / Math.sqrt(l.inFeatures);
        rng.fillUniform(arena.f32(l.a.ptr, l.a.n), -bound, bound);
      }
    }
  }

  /** The gradient storage mode now. */
  get gradientStorage(): GradientStorage {
    return this.#storage;
  }

  /** Sets every `grad` pointer for the current storage mode. */
  #pointGrads(): void {
    for (const p of this.params) {
      const off = p.ptr - this.base; // offset in the whole-model layout
      switch (this.#storage) {
        case "whole":
          p.grad = this.#gradBase + off;
          break;
        case "block":
          p.grad = this.#gradBase + (off % this.blockBytes);
          break;
        case "none":
          p.grad = 0;
      }
    }
  }

  /**
   * Switches to a whole-model gradient buffer (zeroed), allocated on the arena top now: an
   * unplanned allocation the caller accepts (a session that knows it will accumulate or clip
   * asks for `whole` at creation instead). No-op when already `whole`.
   */
  ensureWholeGrads(): void {
    if (this.#storage === "whole") return;
    this.#gradBase = this.arena.allocZeroed(this.paramBytes);
    this.#storage = "whole";
    this.#pointGrads();
  }

  /**
   * Called before block i's gradients are accumulated (or, for a block that gets none, before
   * its `onBlockDone`): with a `block` slot, zeroes the slot, which now holds block i's
   * gradients. No-op for `whole` (zeroed once per step by {@link zeroGrads}) and `none`.
   */
  beginBlockGrads(_i: number): void {
    if (this.#storage === "block") this.arena.u8(this.#gradBase, this.blockBytes).fill(0);
  }

  /** Parameter tensors of block `i`. */
  blockParams(i: number): ParamTensor[] {
    const out: ParamTensor[] = [];
    for (const l of Object.values(this.blocks[i])) out.push(l.a, l.b);
    return out;
  }

  /** Zeroes every gradient (the slot with `block` storage). */
  zeroGrads(): void {
    switch (this.#storage) {
      case "whole":
        this.arena.u8(this.#gradBase, this.paramBytes).fill(0);
        break;
      case "block":
        this.arena.u8(this.#gradBase, this.blockBytes).fill(0);
        break;
      case "none":
        break;
    }
  }

  /** Copies of every tensor with PEFT names and `[rows, cols]` shapes. */
  toMap(): LoraTensors {
    const out = this.views();
    for (const t of out.values()) t.data = t.data.slice();
    return out;
  }

  /**
   * Like {@link toMap} but each `data` is a view of the arena, not a copy: valid only until the
   * next step or arena allocation (which may grow, and so detach, linear memory). For writing the
   * adapter out without holding a second copy of every tensor.
   */
  views(): LoraTensors {
    const out = new Map<string, F32Matrix>();
    for (const block of this.blocks) {
      for (const l of Object.values(block)) {
        out.set(l.a.name, { shape: [l.rank, l.inFeatures], data: this.arena.f32(l.a.ptr, l.a.n) });
        out.set(l.b.name, {
          shape: [l.outFeatures, l.rank],
          data: this.arena.f32(l.b.ptr, l.b.n),
        });
      }
    }
    return out;
  }

  /** Loads tensors by PEFT name; every adapter tensor must be present with the right shape. */
  fromMap(t: LoraTensors): void {
    for (const block of this.blocks) {
      for (const l of Object.values(block)) {
        for (
          const [p, shape] of [[l.a, [l.rank, l.inFeatures]], [l.b, [
            l.outFeatures,
            l.rank,
          ]]] as const
        ) {
          const v = t.get(p.name);
          if (!v) throw new Error(`LoRA tensor ${p.name} missing`);
          if (v.shape[0] !== shape[0] || v.shape[1] !== shape[1] || v.data.length !== p.n) {
            throw new Error(`LoRA tensor ${p.name}: shape [${v.shape}] != [${shape}]`);
          }
          this.arena.f32(p.ptr, p.n).set(v.data);
        }
      }
    }
  }
}
