/**
 * A LoRA adapter merged into its base weights, one matrix at a time: `W' = W + (alpha / r)·B·A`
 * for every adapted linear (`W` `[out, in]`, A `[r, in]`, B `[out, r]`, row-major), which is what
 * the unmerged forward `W x + s·B(A x)` computes. Portable.
 *
 * The sum over the rank is taken in f64 and the result rounded once to f32, so a merged f32
 * model's logits equal the base-plus-adapter forward's to f32 rounding.
 *
 * @example
 * ```ts
 * import { mergeLoraInto } from "./merge_adapter.ts";
 * const w = new Float32Array(4); // [2, 2]
 * mergeLoraInto(w, 2, 2, new Float32Array([1, 0]), new Float32Array([1, 2]), 1, 0.5);
 * // w = [0.5, 0, 1, 0]
 * ```
 */
import type { ModelConfig } from "../model/config.ts";
import { peftName } from "../model/lora.ts";
import { LINEAR_NAMES, type LinearName } from "../model/weights.ts";
import type { LoraTensors } from "../model/lora.ts";
import type { AdapterInfo } from "../io/peft_adapter.ts";

/** An adapter to merge: its config and tensors (as `readAdapterDir` returns them). */
export interface MergeAdapter {
  info: AdapterInfo;
  tensors: LoraTensors;
}

/** Adds `scale·B·A` to `w` `[rows, cols]` in place (A `[r, cols]`, B `[rows, r]`). */
export function mergeLoraInto(
  w: Float32Array,
  rows: number,
  cols: number,
  a: Float32Array,
  b: Float32Array,
  r: number,
  scale: number,
): Float32Array {
  if (w.length !== rows * cols || a.length !== r * cols || b.length !== rows * r) {
    throw new RangeError(
      `merge: W has ${w.length} values for [${rows}, ${cols}], A ${a.length} for [${r}, ${cols}], ` +
        `B ${b.length} for [${rows}, ${r}]`,
    );
  }
  const acc = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    acc.fill(0);
    for (let k = 0; k < r; k++) {
      const bik = b[i * r + k];
      if (bik === 0) continue;
      const row = k * cols;
      for (let j = 0; j < cols; j++) acc[j] += bik * a[row + j];
    }
    const at = i * cols;
    for (let j = 0; j < cols; j++) w[at + j] = Math.fround(w[at + j] + scale * acc[j]);
  }
  return w;
}

const HF_LINEAR: Record<LinearName, string> = {
  q: "self_attn.q_proj",
  k: "self_attn.k_proj",
  v: "self_attn.v_proj",
  o: "self_attn.o_proj",
  gate: "mlp.gate_proj",
  up: "mlp.up_proj",
  down: "mlp.down_proj",
};

/** The block and linear of an HF weight name `model.layers.N.<linear>.weight`, or null. */
export function linearOfWeight(name: string): { block: number; linear: LinearName } | null {
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(name);
  if (!m) return null;
  const linear = LINEAR_NAMES.find((n) => HF_LINEAR[n] === m[2]);
  return linear ? { block: Number(m[1]), linear } : null;
}

/** True when the adapter changes the checkpoint tensor `name`. */
export function isMerged(name: string, adapter: MergeAdapter | null): boolean {
  const which = adapter ? linearOfWeight(name) : null;
  return which !== null && adapter!.info.targets.includes(which.linear);
}

/**
 * The checkpoint tensor `name` (`values`, row-major `[rows, cols]`) with the adapter merged in
 * when the adapter targets it; other tensors are returned as they are.
 */
export function mergedTensor(
  name: string,
  values: Float32Array,
  shape: readonly number[],
  adapter: MergeAdapter | null,
  config: ModelConfig,
): Float32Array {
  const which = adapter ? linearOfWeight(name) : null;
  if (!adapter || !which || !adapter.info.targets.includes(which.linear)) return values;
  if (which.block >= config.numLayers) return values;
  const a = adapter.tensors.get(peftName(which.block, which.linear, "A"));
  const b = adapter.tensors.get(peftName(which.block, which.linear, "B"));
  if (!a || !b) {
    throw new Error(`adapter lacks ${peftName(which.block, which.linear, a ? "B" : "A")}`);
  }
  const [rows, cols] = shape;
  if (a.shape[1] !== cols || b.shape[0] !== rows) {
    throw new Error(
      `${name} is [${shape}] but the adapter's A is [${a.shape}] and B [${b.shape}]: ` +
        `the adapter was trained on a base of another shape`,
    );
  }
  const { r, alpha } = adapter.info;
  return mergeLoraInto(values, rows, cols, a.data, b.data, r, alpha / r);
}
