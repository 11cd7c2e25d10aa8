/**
 * Named buffer tables: a function's arena buffers as `name -> float count` (0: not allocated),
 * the one place their sizes are written. The function allocates each buffer by its name from the
 * table, and the memory plan walks the same tables with a {@link StackPeak} in the order the
 * function allocates and releases them, so allocation and accounting share every size.
 *
 * @example
 * ```ts
 * import { StackPeak, tableBytes } from "./buffer_table.ts";
 * const table = { rstd: 8, n: 8 * 32 };
 * console.log(tableBytes(table)); // 64 + 1024
 * const s = new StackPeak();
 * s.table(table);
 * s.temp(100);
 * console.log(s.peak); // 1088 + 128
 * ```
 */
import { alignUp, ARENA_ALIGN } from "../runtime/arena.ts";

/** A function's buffers by name: f32 / i32 element counts, 0 for one it does not allocate. */
export type BufferTable<K extends string = string> = Readonly<Record<K, number>>;

/** Arena bytes of `floats` 4-byte elements (0 for none), as `Arena.allocF32` rounds them. */
export function floatBytes(floats: number): number {
  return alignUp(floats * 4, ARENA_ALIGN);
}

/** Arena bytes of every buffer of `table`. */
export function tableBytes(table: BufferTable): number {
  let bytes = 0;
  for (const n of Object.values(table)) bytes += floatBytes(n);
  return bytes;
}

/**
 * The arena's stack discipline with sizes only: what a sequence of allocations, marks and releases
 * reaches at the most. The planner replays a function's allocation order on one.
 */
export class StackPeak {
  /** Bytes above the start now. */
  top = 0;
  /** The most `top` has been. */
  peak = 0;

  /** Allocates `floats` 4-byte elements (0: nothing). */
  alloc(floats: number): this {
    return this.bytes(floatBytes(floats));
  }

  /** Allocates every buffer of `table`, in its order. */
  table(table: BufferTable): this {
    return this.bytes(tableBytes(table));
  }

  /** Allocates `bytes` (already aligned). */
  bytes(bytes: number): this {
    this.top += bytes;
    if (this.top > this.peak) this.peak = this.top;
    return this;
  }

  /** A buffer of `floats` allocated and released at once (a callee's temporary). */
  temp(floats: number): this {
    return this.nested(floatBytes(floats));
  }

  /** A callee that reaches `peakBytes` above the current top and releases it all. */
  nested(peakBytes: number): this {
    this.peak = Math.max(this.peak, this.top + peakBytes);
    return this;
  }

  /** The current top, to hand back to {@link release}. */
  mark(): number {
    return this.top;
  }

  /** Frees everything above `mark`. */
  release(mark: number): this {
    this.top = mark;
    return this;
  }
}
