/**
 * Next-token choice from one row of logits: greedy (temperature 0) or temperature + nucleus
 * (top-p) sampling from a seeded {@link Rng}, so a run with the same seed is reproducible.
 *
 * Top-p keeps the smallest set of most probable tokens whose total probability is at least `p`
 * (ties in probability are broken by the lower token id, so the set is deterministic), then
 * samples from that set renormalized, walking it in that order. {@link Nucleus} does both in
 * O(vocabulary) on average, without sorting the vocabulary (a sort of a 150k-token
 * distribution for every token generated).
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

/** Buckets per octave of probability is 2^(20 - BUCKET_SHIFT): 16 (see {@link Nucleus}). */
const BUCKET_SHIFT = 16;
/** Buckets below the maximum; the last one holds every smaller positive probability. */
const NUM_BUCKETS = 1024;
/** Ranges at most this long are sorted rather than partitioned further. */
const SMALL_RANGE = 24;
/** Index of the high (sign, exponent, top mantissa) 32-bit word of a float64 in a Uint32Array. */
const HI_WORD = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 1 : 0;

/**
 * The top-p (nucleus) set of a distribution, found in O(V) on average instead of sorting the
 * vocabulary, and sampling from it.
 *
 * The order is: probability descending, ties by the lower id. The set is the shortest prefix of
 * that order whose mass is at least `p` (tokens of probability 0 are never kept); a draw takes
 * `u = uniform · (kept mass)` and returns the first token of the prefix whose running mass
 * exceeds `u`, exactly as walking the sorted set would.
 *
 * How, without the sort: one pass buckets every token by the top bits of its float64 probability
 * (exponent and 4 mantissa bits, relative to the maximum: 16 buckets per octave). For positive
 * floats those bits order like the values, so every token of an earlier bucket is strictly more
 * probable than every token of a later one: whole buckets are whole stretches of the sorted
 * order, and a running sum over bucket masses finds the ONE bucket where the mass reaches `p` (and
 * later the one where it exceeds `u`). Only that bucket's tokens are gathered and ordered, by a
 * mass-weighted quickselect (partition around a pivot, keep the side where the running mass
 * crosses the target), which is O(bucket) on average even when a flat distribution puts most of
 * the vocabulary into one bucket.
 *
 * Masses are float64 sums taken bucket by bucket rather than token by token in sorted order, so
 * they can differ from the sorted running sum in the last bits: the kept set and the draw are
 * those of the sort-based definition except when `p` or `u` lies within that rounding (~1e-15)
 * of a running sum.
 */
export class Nucleus {
  /** Bucket of each token (`NUM_BUCKETS` = probability 0, never kept). */
  private readonly bucketOf: Uint16Array;
  /** Mass and token count of each bucket. */
  private readonly bucketMass = new Float64Array(NUM_BUCKETS);
  private readonly bucketCount = new Int32Array(NUM_BUCKETS);
  /** The bucket where the kept prefix ends, and its kept tokens (`boundary[0 .. boundaryKept)`). */
  private readonly last: number;
  private readonly boundary: Int32Array;
  private readonly boundaryKept: number;
  /** Mass of the kept tokens of the boundary bucket and of the whole set. */
  private readonly boundaryMass: number;
  /** Total probability of the kept set. */
  readonly mass: number;
  /** How many tokens are kept. */
  readonly size: number;

  constructor(private readonly probs: Float64Array, p: number) {
    if (!(p > 0 && p <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${p}`);
    const n = probs.length;
    const hi = new Uint32Array(probs.buffer, probs.byteOffset, 2 * n);
    let iMax = -1;
    for (let i = 0, max = 0; i < n; i++) {
      if (probs[i] > max) [max, iMax] = [probs[i], i];
    }
    if (iMax < 0) throw new RangeError("top-p: the distribution has no mass");
    const top = hi[2 * iMax + HI_WORD] >>> BUCKET_SHIFT;
    this.bucketOf = new Uint16Array(n);
    const { bucketOf, bucketMass, bucketCount } = this;
    for (let i = 0; i < n; i++) {
      const x = probs[i];
      let b = NUM_BUCKETS; // 0 and NaN: never kept
      if (x > 0) b = Math.min(NUM_BUCKETS - 1, top - (hi[2 * i + HI_WORD] >>> BUCKET_SHIFT));
      bucketOf[i] = b;
      if (b < NUM_BUCKETS) {
        bucketMass[b] += x;
        bucketCount[b]++;
      }
    }
    // Whole buckets while they leave the prefix short of p; the bucket that reaches it is the
    // boundary (the last non-empty one if rounding keeps the total just under p: keep all).
    let lastNonEmpty = NUM_BUCKETS - 1;
    while (bucketCount[lastNonEmpty] === 0) lastNonEmpty--;
    let before = 0;
    let size = 0;
    let last = 0;
    for (;; last++) {
      if (bucketCount[last] === 0) continue;
      if (last === lastNonEmpty || before + bucketMass[last] >= p) break;
      before += bucketMass[last];
      size += bucketCount[last];
    }
    this.last = last;
    this.boundary = this.gather(last);
    const cut = selectByMass(probs, this.boundary, p - before, false);
    this.boundaryKept = cut.index + 1;
    this.boundaryMass = cut.before + probs[this.boundary[cut.index]];
    this.mass = before + this.boundaryMass;
    this.size = size + this.boundaryKept;
  }

  /** The kept ids, in no particular order. */
  ids(): Int32Array {
    const out = new Int32Array(this.size);
    let k = 0;
    for (let i = 0; i < this.probs.length; i++) if (this.bucketOf[i] < this.last) out[k++] = i;
    out.set(this.boundary.subarray(0, this.boundaryKept), k);
    return out;
  }

  /** One draw from the kept set renormalized, with one uniform of `rng`. */
  sample(rng: Rng): number {
    const u = rng.uniform() * this.mass;
    let before = 0;
    for (let b = 0; b < this.last; b++) {
      if (this.bucketCount[b] === 0) continue;
      if (before + this.bucketMass[b] > u) {
        const tokens = this.gather(b);
        return tokens[selectByMass(this.probs, tokens, u - before, true).index];
      }
      before += this.bucketMass[b];
    }
    // The boundary bucket's kept part (also where a u rounded up to the total lands: its last).
    const kept = this.boundary.subarray(0, this.boundaryKept);
    return kept[selectByMass(this.probs, kept, u - before, true).index];
  }

  /** The tokens of bucket `b`, in id order. */
  private gather(b: number): Int32Array {
    const out = new Int32Array(this.bucketCount[b]);
    let k = 0;
    const bucketOf = this.bucketOf;
    for (let i = 0; i < bucketOf.length; i++) if (bucketOf[i] === b) out[k++] = i;
    return out;
  }
}

/** True when token `a` comes before token `b`: more probable, or as probable with a lower id. */
function precedes(probs: Float64Array, a: number, b: number): boolean {
  return probs[a] > probs[b] || (probs[a] === probs[b] && a < b);
}

/**
 * Mass-weighted selection (quickselect): reorders `ids` so that, in the order of
 * {@link precedes}, `ids[index]` is the first token whose running mass (the mass of the tokens
 * before it in that order, plus its own) reaches `target` (`strict`: exceeds it), and
 * `ids[0 .. index]` are exactly the tokens up to it. `before` is the mass of the tokens before it.
 * When the whole mass falls short, the last token in the order is chosen.
 */
export function selectByMass(
  probs: Float64Array,
  ids: Int32Array,
  target: number,
  strict: boolean,
): { index: number; before: number } {
  if (ids.length === 0) throw new RangeError("selectByMass: no tokens");
  const reached = (m: number) => strict ? m > target : m >= target;
  let lo = 0;
  let hi = ids.length; // the answer lies in ids[lo .. hi)
  let before = 0; // mass of ids[0 .. lo)
  while (hi - lo > SMALL_RANGE) {
    // Median of three (first, middle, last) as the pivot, moved to ids[hi - 1].
    const mid = (lo + hi) >>> 1;
    const a = ids[lo];
    const b = ids[mid];
    const c = ids[hi - 1];
    let m = mid;
    if (precedes(probs, a, b) !== precedes(probs, a, c)) m = lo;
    else if (precedes(probs, b, a) !== precedes(probs, b, c)) m = mid;
    else m = hi - 1;
    const pivot = ids[m];
    ids[m] = ids[hi - 1];
    ids[hi - 1] = pivot;
    // Lomuto partition: tokens preceding the pivot to the front, summing their mass.
    let store = lo;
    let leftMass = 0;
    const pp = probs[pivot];
    for (let i = lo; i < hi - 1; i++) {
      const t = ids[i];
      const pt = probs[t];
      if (pt > pp || (pt === pp && t < pivot)) {
        ids[i] = ids[store];
        ids[store++] = t;
        leftMass += pt;
      }
    }
    ids[hi - 1] = ids[store];
    ids[store] = pivot;
    if (reached(before + leftMass)) {
      hi = store;
    } else if (reached(before + leftMass + pp) || store + 1 === hi) {
      return { index: store, before: before + leftMass };
    } else {
      before += leftMass + pp;
      lo = store + 1;
    }
  }
  // A short range: sort it and walk.
  const tail = ids.subarray(lo, hi).sort((x, y) => probs[y] - probs[x] || x - y);
  for (let i = 0; i < tail.length; i++) {
    const pt = probs[tail[i]];
    if (reached(before + pt) || i === tail.length - 1) return { index: lo + i, before };
    before += pt;
  }
  throw new Error("unreachable");
}

function asFloat64(probs: ArrayLike<number>): Float64Array {
  return probs instanceof Float64Array ? probs : Float64Array.from(probs);
}

/**
 * The top-p set: token ids by decreasing probability (ties: lower id first), the smallest prefix
 * whose probabilities sum to at least `p` (always at least one token; probability 0 never kept).
 * Sorts the kept set (O(k log k)); sampling uses {@link Nucleus} directly and sorts nothing.
 */
export function topPIndices(probs: ArrayLike<number>, p: number): number[] {
  const pr = asFloat64(probs);
  const ids = Array.from(new Nucleus(pr, p).ids());
  return ids.sort((a, b) => pr[b] - pr[a] || a - b);
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
  return new Nucleus(probs, topP).sample(rng);
}
