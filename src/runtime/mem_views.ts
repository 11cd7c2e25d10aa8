/**
 * Typed views over the current buffer of a `WebAssembly.Memory`. They are made anew on every
 * call because growing the memory replaces (detaches) its buffer: never cache a view.
 */
import type { Ptr } from "./ptr.ts";

export class MemViews {
  constructor(readonly memory: WebAssembly.Memory) {}

  f32(ptr: Ptr, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  i32(ptr: Ptr, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }

  u32(ptr: Ptr, n: number): Uint32Array {
    return new Uint32Array(this.memory.buffer, ptr, n);
  }

  u8(ptr: Ptr, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }
}
