/**
 * Rotary-embedding tables: `cos[t, i]`, `sin[t, i]` (`[T, headDim/2]`) of the angle
 * `positions[t] * invFreq[i]`, with `invFreq[i] = theta^(-2i/headDim)` and, for Llama 3.x,
 * `rope_scaling` type `llama3` applied to `invFreq`. These feed the `ropeApply` kernel.
 *
 * The arithmetic follows Hugging Face transformers (`_compute_default_rope_parameters`,
 * `_compute_llama3_parameters`, and the rotary module's forward), which runs in float32: the
 * inverse frequencies, the llama3 blend and the angle `position * invFreq` are each rounded to
 * f32 here as torch rounds them, so the tables match what the checkpoints were trained with. Only
 * cos/sin themselves are evaluated in f64 (then rounded), i.e. at least as accurately as torch.
 *
 * @example
 * ```ts
 * import { ropeTables } from "./rope_tables.ts";
 * const { cos, sin } = ropeTables({ headDim: 64, ropeTheta: 1e6, ropeScaling: null }, [0, 1, 2]);
 * console.log(cos.length); // 3 * 32
 * ```
 */
import type { ModelConfig } from "./config.ts";

const f32 = Math.fround;

/** The RoPE settings of a model. */
export type RopeSettings = Pick<ModelConfig, "headDim" | "ropeTheta" | "ropeScaling">;

/** Inverse frequencies `[headDim/2]` (f32), with llama3 scaling when the config has it. */
export function ropeInverseFrequencies(rope: RopeSettings): Float32Array {
  const { headDim, ropeTheta, ropeScaling } = rope;
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new RangeError(`rope: head_dim must be a positive even integer, got ${headDim}`);
  }
  if (!(ropeTheta > 0) || !Number.isFinite(ropeTheta)) {
    throw new RangeError(`rope: rope_theta must be a positive number, got ${ropeTheta}`);
  }
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) {
    // torch: arange(0, dim, 2).float() / dim, then base ** that, then 1.0 / that, all f32.
    const exponent = f32(f32(2 * i) / headDim);
    inv[i] = f32(1 / f32(Math.pow(ropeTheta, exponent)));
  }
  if (ropeScaling) applyLlama3Scaling(inv, ropeScaling);
  return inv;
}

function applyLlama3Scaling(inv: Float32Array, s: NonNullable<RopeSettings["ropeScaling"]>): void {
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldContext } = s;
  if (
    !(factor > 0) || !(lowFreqFactor > 0) || !(highFreqFactor > lowFreqFactor) || !(oldContext > 0)
  ) {
    throw new RangeError(
      `rope_scaling llama3: need factor > 0, 0 < low_freq_factor < high_freq_factor and ` +
        `original_max_position_embeddings > 0; got ${JSON.stringify(s)}`,
    );
  }
  // Python floats (f64) in transformers.
  const lowFreqWavelen = oldContext / lowFreqFactor;
  const highFreqWavelen = oldContext / highFreqFactor;
  const twoPi = f32(2 * Math.PI);
  for (let i = 0; i < inv.length; i++) {
    const f = inv[i];
    const wavelen = f32(twoPi / f);
    if (wavelen > lowFreqWavelen) {
      // Low frequencies (long wavelengths): interpolate positions by `factor`.
      inv[i] = f32(f / factor);
    } else if (wavelen >= highFreqWavelen) {
      // Medium band: blend smoothly between scaled and unscaled.
      const smooth = f32(
        f32(f32(oldContext / wavelen) - lowFreqFactor) / (highFreqFactor - lowFreqFactor),
      );
      inv[i] = f32(f32(f32(f32(1 - smooth) * f) / factor) + f32(smooth * f));
    }
    // High frequencies (short wavelengths) stay as they are.
  }
}

/**
 * cos/sin tables `[positions.length, headDim/2]` for the given token positions. Writes into
 * `out` when given (e.g. views of arena memory), else into new arrays.
 */
export function ropeTables(
  rope: RopeSettings,
  positions: ArrayLike<number>,
  out?: { cos: Float32Array; sin: Float32Array },
): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInverseFrequencies(rope);
  const half = inv.length;
  const T = positions.length;
  const cos = out?.cos ?? new Float32Array(T * half);
  const sin = out?.sin ?? new Float32Array(T * half);
  if (cos.length < T * half || sin.length < T * half) {
    throw new RangeError(
      `rope tables: output holds ${Math.min(cos.length, sin.length)} values, need ${T * half}`,
    );
  }
  for (let t = 0; t < T; t++) {
    const p = positions[t];
    if (!Number.isInteger(p) || p < 0) {
      throw new RangeError(
        `rope tables: position ${p} at index ${t} is not a non-negative integer`,
      );
    }
    const pos = f32(p);
    for (let i = 0; i < half; i++) {
      const angle = f32(pos * inv[i]);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
