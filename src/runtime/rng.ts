/**
 * A deterministic, seedable and serializable pseudo-random number generator.
 *
 * Algorithm: **xoshiro128\*\*** (Blackman & Vigna, 2018), 128 bits of state in four u32 words,
 * period 2^128 - 1. The seed is expanded into the state with the 32-bit SplitMix mixer (an
 * all-zero state is impossible by construction). Normals use the Box–Muller transform; the
 * second value of each pair is cached and is part of the serialized state, so
 * `Rng.fromState(rng.getState())` continues the identical stream.
 *
 * Not cryptographically secure. Use it for initialization, shuffling and sampling.
 *
 * @example
 * ```ts
 * import { Rng } from "./rng.ts";
 * const rng = new Rng(42);
 * const saved = rng.getState();
 * const a = rng.uniform();
 * console.log(Rng.fromState(saved).uniform() === a); // true
 * ```
 */

const TWO_POW_32 = 4294967296;
const TWO_POW_M53 = 1 / 9007199254740992;
const TWO_POW_M24 = 1 / 16777216;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One step of the 32-bit SplitMix mixer over a running counter; returns [output, next counter]. */
function splitMix32(counter: number): [number, number] {
  const next = (counter + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [z >>> 0, next];
}

/** Deterministic, seedable, serializable PRNG (xoshiro128**, see the module doc). */
export class Rng {
  #s0 = 0;
  #s1 = 0;
  #s2 = 0;
  #s3 = 0;
  /** Second Box–Muller output waiting to be returned by `normal()`, or null. */
  #spare: number | null = null;

  /** `seed` is any safe integer (negative values and values ≥ 2^32 are distinct seeds). */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed)) {
      throw new RangeError(`Rng seed must be a safe integer: ${seed}`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO_POW_32) >>> 0;
    let counter = (lo ^ Math.imul(hi, 0x27d4eb2f)) >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [z, next] = splitMix32(counter);
      words.push(z);
      counter = next;
    }
    // Fold the high word in again so seeds differing only in their high bits diverge fully.
    words[3] = (words[3] ^ hi) >>> 0;
    if ((words[0] | words[1] | words[2] | words[3]) === 0) words[0] = 1;
    [this.#s0, this.#s1, this.#s2, this.#s3] = words;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const a = this.nextU32() >>> 5; // 27 bits
    const b = this.nextU32() >>> 6; // 26 bits
    return (a * 67108864 + b) * TWO_POW_M53;
  }

  /** Standard normal (mean 0, variance 1), Box–Muller. */
  normal(): number {
    if (this.#spare !== null) {
      const z = this.#spare;
      this.#spare = null;
      return z;
    }
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(angle);
    return r * Math.cos(angle);
  }

  /**
   * Fills `out` with uniform values in [lo, hi): 24-bit uniforms (f32 precision), one u32 each.
   * When f32 rounding of `lo + (hi - lo) u` would land on `hi`, the value is replaced by the
   * largest f32 below `hi`, so the interval stays half-open.
   */
  fillUniform(out: Float32Array, lo: number, hi: number): void {
    if (!(hi > lo)) throw new RangeError(`fillUniform needs lo < hi, got [${lo}, ${hi})`);
    const width = hi - lo;
    const hiF32 = Math.fround(hi);
    for (let i = 0; i < out.length; i++) {
      const u = (this.nextU32() >>> 8) * TWO_POW_M24;
      out[i] = lo + width * u;
      if (out[i] >= hiF32) out[i] = nextDownF32(hiF32);
    }
  }

  /** Fills `out` with normal values of mean 0 and standard deviation `std`. */
  fillNormal(out: Float32Array, std: number): void {
    for (let i = 0; i < out.length; i++) out[i] = std * this.normal();
  }

  /** Uniform integer in [0, n) without modulo bias (rejection sampling), n ≤ 2^32. */
  #below(n: number): number {
    const limit = TWO_POW_32 - (TWO_POW_32 % n); // multiples of n below 2^32
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles `a` in place (Fisher–Yates), every permutation equally likely. */
  shuffle<T>(a: T[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.#below(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
  }

  /**
   * Plain JSON-serializable state: `[s0, s1, s2, s3, hasSpare, spare]` (u32 words, 0 | 1, the
   * cached normal or 0). JSON round-trips doubles exactly, so the spare survives a checkpoint.
   */
  getState(): number[] {
    return [
      this.#s0 >>> 0,
      this.#s1 >>> 0,
      this.#s2 >>> 0,
      this.#s3 >>> 0,
      this.#spare === null ? 0 : 1,
      this.#spare ?? 0,
    ];
  }

  /** Rebuilds a generator from `getState()`; it continues the identical stream. */
  static fromState(state: number[]): Rng {
    if (!Array.isArray(state) || (state.length !== 4 && state.length !== 6)) {
      throw new TypeError(
        "Rng state must be [s0, s1, s2, s3] or [s0, s1, s2, s3, hasSpare, spare]",
      );
    }
    for (let i = 0; i < 4; i++) {
      const w = state[i];
      if (!Number.isInteger(w) || w < 0 || w >= TWO_POW_32) {
        throw new RangeError(`Rng state word ${i} is not a u32: ${w}`);
      }
    }
    if ((state[0] | state[1] | state[2] | state[3]) === 0) {
      throw new RangeError("Rng state must not be all zero");
    }
    const rng = new Rng(0);
    rng.#s0 = state[0] | 0;
    rng.#s1 = state[1] | 0;
    rng.#s2 = state[2] | 0;
    rng.#s3 = state[3] | 0;
    rng.#spare = state.length === 6 && state[4] === 1 ? state[5] : null;
    return rng;
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Largest f32 strictly below the f32 value `x` (x finite). */
function nextDownF32(x: number): number {
  f32Scratch[0] = x;
  if (x > 0) u32Scratch[0] -= 1;
  else if (x < 0) u32Scratch[0] += 1;
  else u32Scratch[0] = 0x80000001; // below ±0: the smallest negative subnormal
  return f32Scratch[0];
}
