/**
 * A planned allocator over one `WebAssembly.Memory`: the only way slimtune obtains linear memory.
 *
 * Linear memory never shrinks, so memory discipline IS the method: buffers are bump-allocated and
 * released in reverse order (`mark` / `release`), and every growth of the memory is counted so a
 * steady-state training step can be checked to grow nothing.
 *
 * @example
 * ```ts
 * import { Arena } from "./arena.ts";
 * const arena = new Arena(new WebAssembly.Memory({ initial: 1 }), 1024);
 * const m = arena.mark();
 * const x = arena.allocF32(256);
 * arena.f32(x, 256).fill(1);
 * arena.release(m);
 * ```
 */
import type { Ptr } from "./ptr.ts";
import { MemViews } from "./mem_views.ts";

const PAGE = 65536;
/** Alignment of every allocation: a cache line, which also satisfies v128 alignment. */
export const ARENA_ALIGN = 64;

/** Thrown when an allocation would exceed the arena's byte limit. */
export class ArenaLimitError extends Error {
  constructor(readonly requested: number, readonly inUse: number, readonly limit: number) {
    super(
      `out of planned memory: need ${requested} more bytes with ${inUse} in use, limit ${limit} bytes`,
    );
    this.name = "ArenaLimitError";
  }
}

export class Arena extends MemViews {
  /** Next free byte. */
  private top: number;
  /** Highest `top` ever reached (bytes of linear memory the trainer needed). */
  highWater: number;
  /** How many times `alloc` had to grow the memory. */
  grows = 0;
  /** Optional ceiling for `top` (bytes), e.g. from `--max-memory`. */
  limit = Infinity;

  constructor(memory: WebAssembly.Memory, readonly base: number) {
    super(memory);
    this.top = alignUp(base, ARENA_ALIGN);
    this.highWater = this.top;
  }

  /** Bytes in use now (from address 0, so the kernels' static data counts too). */
  get used(): number {
    return this.top;
  }

  /** Bytes of linear memory committed (what the engine holds for us). */
  get committed(): number {
    return this.memory.buffer.byteLength;
  }

  /** Allocates `bytes` (rounded up to 64) and returns the byte offset. Contents are unspecified. */
  alloc(bytes: number): Ptr {
    if (!Number.isSafeInteger(bytes) || bytes < 0) {
      throw new RangeError(`bad allocation size ${bytes}`);
    }
    const ptr = this.top;
    const end = ptr + alignUp(bytes, ARENA_ALIGN);
    if (end > this.limit) throw new ArenaLimitError(end - ptr, ptr, this.limit);
    this.ensure(end);
    this.top = end;
    if (end > this.highWater) this.highWater = end;
    return ptr;
  }

  /** Allocates and zero-fills. */
  allocZeroed(bytes: number): Ptr {
    const p = this.alloc(bytes);
    new Uint8Array(this.memory.buffer, p, bytes).fill(0);
    return p;
  }

  allocF32(n: number): Ptr {
    return this.alloc(n * 4);
  }

  allocI32(n: number): Ptr {
    return this.alloc(n * 4);
  }

  /** Current top, to hand back to `release`. */
  mark(): number {
    return this.top;
  }

  /** Frees everything allocated since `mark` (stack order). */
  release(mark: number): void {
    if (mark > this.top || mark < alignUp(this.base, ARENA_ALIGN)) {
      throw new Error(`arena release(${mark}) outside [${this.base}, ${this.top}]`);
    }
    this.top = mark;
  }

  /** Grows the memory up front so that `bytes` total are committed (planned, counted once). */
  reserve(bytes: number): void {
    this.ensure(bytes);
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    const pages = Math.ceil((end - have) / PAGE);
    try {
      this.memory.grow(pages);
    } catch (e) {
      throw new ArenaLimitError(end - this.top, this.top, have + (e instanceof Error ? 0 : 0));
    }
    this.grows++;
  }
}

/** Rounds `n` up to a multiple of `a` (a power of two). */
export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
