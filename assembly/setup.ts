// Kernel-wide set-up: where the TS arena may start, and the scratch region kernels share.
// The AS runtime is "stub" and kernels never allocate: all memory comes from the TS-side arena.

/** Bytes of scratch every build needs; any kernel may use all of it for the length of one call. */
export const SCRATCH_BYTES: i32 = 4 << 20;

/** Start of the scratch region handed over by `init` (0 until then). */
export let scratchBase: usize = 0;

export function heapBase(): usize {
  return __heap_base;
}

export function scratchBytes(): i32 {
  return SCRATCH_BYTES;
}

export function init(scratch: usize, bytes: i32): void {
  if (bytes < SCRATCH_BYTES) unreachable();
  scratchBase = scratch;
}
