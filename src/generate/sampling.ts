/**
 * Next-token choice from one row of logits: greedy (temperature 0) or temperature + nucleus
 * (top-p) sampling from a seeded {@link Rng}, so a run with the same seed is reproducible.
 *
 * Top-p keeps the smallest set of most probable tokens whose total probability is at least `p`
 * (ties in probability are broken by the lower token id, so the set is deterministic), then
 * samples from that set renormalized.
 *
 * @example
 * ```ts
 * import { sampleToken } from "./sampling.ts";
 * import { Rng } from "../runtime/rng.ts";
 * const logits = new Float32Array([0.1, 2.5, -1, 0.3]);
 * console.log(sampleToken(logits, { temperature: 0, topP: 1 }, new Rng(0))); // 1 (greedy)
 * const id = sampleToken(logits, { temperature: 0.8, topP: 0.9 }, new Rng(42));
 * ```
 */
import type { Rng } from "../runtime/rng.ts";

/** How the next token is chosen. */
export interface SamplingOptions {
  /** 0 = greedy (argmax); otherwise logits are divided by it before the softmax. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 keeps the whole vocabulary. */
  topP: number;
}

/** Index of the largest logit (the lowest index among equal maxima). NaN logits are skipped. */
export function argmax(logits: ArrayLike<number>): number {
  let best = -1;
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > max || best === -1 && logits[i] === max) {
      max = logits[i];
      best = i;
    }
  }
  if (best === -1) throw new RangeError("argmax: no finite logit");
  return best;
}

/** softmax(logits / temperature) in f64 (temperature > 0). */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  if (!(temperature > 0)) throw new RangeError(`softmax: temperature must be > 0`);
  const n = logits.length;
  const p = new Float64Array(n);
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  if (!Number.isFinite(max)) throw new RangeError("softmax: no finite logit");
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const e = Math.exp((logits[i] - max) / temperature);
    p[i] = Number.isNaN(e) ? 0 : e;
    sum += p[i];
  }
  for (let i = 0; i < n; i++) p[i] /= sum;
  return p;
}

/**
 * The top-p set: token ids by decreasing probability (ties: lower id first), the smallest prefix
 * whose probabilities sum to at least `p` (always at least one token).
 */
export function topPIndices(probs: ArrayLike<number>, p: number): number[] {
  if (!(p > 0 && p <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${p}`);
  const n = probs.length;
  // Sorting a 150k vocabulary per token is slow, so only candidates with probability >= tau are
  // sorted. Exact: when the candidates' mass reaches p, the sorted prefix reaching p lies inside
  // them (every token outside is less probable than every candidate). tau shrinks until it does.
  let max = 0;
  for (let i = 0; i < n; i++) if (probs[i] > max) max = probs[i];
  let idx: number[] = [];
  for (let tau = max * 1e-3;; tau /= 64) {
    idx = [];
    let candMass = 0;
    const floor = tau < 1e-300 ? 0 : tau;
    for (let i = 0; i < n; i++) {
      if (probs[i] > 0 && probs[i] >= floor) {
        idx.push(i);
        candMass += probs[i];
      }
    }
    if (candMass >= p || floor === 0) break;
  }
  idx.sort((a, b) => probs[b] - probs[a] || a - b);
  const out: number[] = [];
  let mass = 0;
  for (const i of idx) {
    out.push(i);
    mass += probs[i];
    if (mass >= p) break;
  }
  if (out.length === 0) throw new RangeError("top-p: the distribution has no mass");
  return out;
}

/** Draws one index from `probs` restricted to `ids` (renormalized), with one uniform of `rng`. */
export function sampleFrom(probs: ArrayLike<number>, ids: readonly number[], rng: Rng): number {
  let total = 0;
  for (const i of ids) total += probs[i];
  const u = rng.uniform() * total;
  let acc = 0;
  for (const i of ids) {
    acc += probs[i];
    if (u < acc) return i;
  }
  return ids[ids.length - 1]; // u rounded up to the total
}

/** Chooses the next token from `logits` (one row, [vocab]). */
export function sampleToken(
  logits: ArrayLike<number>,
  options: SamplingOptions,
  rng: Rng,
): number {
  const { temperature, topP } = options;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`temperature must be a finite number >= 0, got ${temperature}`);
  }
  if (temperature === 0) return argmax(logits);
  const probs = softmax(logits, temperature);
  if (topP >= 1) {
    // Whole vocabulary: walk in id order (no sort needed).
    const u = rng.uniform();
    let acc = 0;
    for (let i = 0; i < probs.length; i++) {
      acc += probs[i];
      if (u < acc) return i;
    }
    return argmax(probs);
  }
  return sampleFrom(probs, topPIndices(probs, topP), rng);
}
