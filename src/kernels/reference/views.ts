/** Typed views over the current buffer of a memory (re-made per call: growth detaches buffers). */
import type { Ptr } from "../abi.ts";

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
}
