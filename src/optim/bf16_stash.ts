/**
 * A bf16 copy of gradients, for clipping by the global norm without a whole-model f32 gradient
 * buffer: each block's f32 gradient is summed into the norm exactly, then stashed at half the
 * size (round to nearest even, relative error <= 2^-8 per value) until the norm is known and the
 * clipped update can run.
 *
 * @example
 * ```ts
 * import { stashBf16, unstashBf16 } from "./bf16_stash.ts";
 * const stash = new Uint16Array(2);
 * stashBf16(new Float32Array([1, 3.14159]), stash, 0);
 * const back = new Float32Array(2);
 * unstashBf16(stash, 0, back); // [1, 3.140625]
 * ```
 */

/** Writes `src` as bf16 into `stash[at .. at+src.length)` (round to nearest even; NaN stays NaN). */
export function stashBf16(src: Float32Array, stash: Uint16Array, at: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i];
    if ((u & 0x7fffffff) > 0x7f800000) {
      stash[at + i] = (u >>> 16) | 0x40;
      continue;
    }
    stash[at + i] = (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
  }
}

/** Reads `out.length` bf16 values from `stash[at ..]` into `out` (exact widening). */
export function unstashBf16(stash: Uint16Array, at: number, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) bits[i] = stash[at + i] << 16;
}
