/**
 * The key/value cache of autoregressive decoding, allocated once from the arena. Per layer, K
 * and V are stored HEAD-MAJOR: `[numKvHeads][capacity][headDim]` f32 in the kernels' linear
 * memory (keys after RoPE at their absolute position). Head-major, the cached keys of one kv head
 * are one contiguous row-major `[slots, headDim]` matrix, which is what the GEMM kernels take
 * (they have no leading dimension): decode-step attention runs `q · Kᵀ` and `P · V` on the cache
 * in place, with no gather. The price is a scatter of each new token's `[Hkv·hd]` row into `Hkv`
 * places ({@link KvCache.store}), O(new tokens), against the O(cached tokens) a gather would cost.
 *
 * A full-attention layer holds `maxLen` positions (prompt + new tokens), position p in slot p. A
 * sliding layer whose window W is shorter than that is a RING of W slots: position p lives in
 * slot `p mod W`, so storing p overwrites p - W, the first position its query no longer sees
 * (a sliding query at p attends to p - W + 1 .. p). Its memory is W positions, whatever the
 * context (docs/design.md, "Generation").
 *
 * @example
 * ```ts
 * import { KvCache } from "./kv_cache.ts";
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { tinyConfig } from "../model/random_weights.ts";
 * const { arena } = loadKernelsSync({ variant: "reference" });
 * const cache = new KvCache(tinyConfig("qwen2"), arena, 32);
 * console.log(cache.bytes); // 3 layers x 2 x 2 kv heads x 32 rows x 16 floats x 4 bytes = 24576
 * ```
 */
import type { Ptr } from "../runtime/ptr.ts";
import { layerWindow, type ModelConfig } from "../model/config.ts";
import type { Arena } from "../runtime/arena.ts";

/** Floats a head's block is padded to, so every block starts 64-byte aligned (ABI: 16). */
const HEAD_ALIGN_FLOATS = 16;

/** Per-layer, per-kv-head K and V rows: `maxLen` positions, or a sliding layer's window. */
export class KvCache {
  /** Floats of one token's K (or V) over all kv heads: `numKvHeads * headDim`. */
  readonly rowFloats: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Slots of each layer: `maxLen`, or `min(window, maxLen)` for a sliding layer. */
  readonly capacity: number[] = [];
  /** Whether layer i is a ring (a sliding window shorter than `maxLen`). */
  readonly ring: boolean[] = [];
  /** Floats from one kv head's block to the next in each layer (`capacity * headDim`, padded). */
  readonly headStride: number[] = [];
  /** K base pointer of each layer (head 0's block; see {@link kHead}). */
  readonly k: Ptr[] = [];
  /** V base pointer of each layer. */
  readonly v: Ptr[] = [];
  /** Bytes of the one allocation. */
  readonly bytes: number;
  /** Positions filled so far (the next token's absolute position). */
  length = 0;

  constructor(config: ModelConfig, private readonly arena: Arena, readonly maxLen: number) {
    if (!Number.isSafeInteger(maxLen) || maxLen < 1) {
      throw new RangeError(`KV cache: maxLen must be a positive integer, got ${maxLen}`);
    }
    this.numKvHeads = config.numKvHeads;
    this.headDim = config.headDim;
    this.rowFloats = config.numKvHeads * config.headDim;
    const layerBytes: number[] = [];
    for (let i = 0; i < config.numLayers; i++) {
      const window = layerWindow(config, i);
      const ring = window > 0 && window < maxLen;
      const cap = ring ? window : maxLen;
      const stride = Math.ceil(cap * config.headDim / HEAD_ALIGN_FLOATS) * HEAD_ALIGN_FLOATS;
      this.capacity.push(cap);
      this.ring.push(ring);
      this.headStride.push(stride);
      layerBytes.push(config.numKvHeads * stride * 4);
    }
    this.bytes = 2 * layerBytes.reduce((a, b) => a + b, 0);
    let p = arena.alloc(this.bytes);
    for (let i = 0; i < config.numLayers; i++) {
      this.k.push(p);
      this.v.push(p + layerBytes[i]);
      p += 2 * layerBytes[i];
    }
  }

  /** Byte address of kv head `head`'s keys in `layer`: `[capacity, headDim]`, row = slot. */
  kHead(layer: number, head: number): Ptr {
    return this.k[layer] + head * this.headStride[layer] * 4;
  }

  /** Byte address of kv head `head`'s values in `layer` (layout as {@link kHead}). */
  vHead(layer: number, head: number): Ptr {
    return this.v[layer] + head * this.headStride[layer] * 4;
  }

  /** The slot of absolute position `pos` in `layer`. */
  slot(layer: number, pos: number): number {
    return this.ring[layer] ? pos % this.capacity[layer] : pos;
  }

  /**
   * Copies `M` token rows of K and V, each `[M, numKvHeads * headDim]` as the projections produce
   * them, into the slots of positions `pos0 .. pos0 + M - 1` of `layer` (one `headDim` run per
   * token and head). A ring keeps only the last `capacity` of them. Does not change
   * {@link length}.
   */
  store(layer: number, pos0: number, k: Ptr, v: Ptr, M: number): void {
    if (pos0 < 0 || pos0 + M > this.maxLen) {
      throw new RangeError(`KV cache: rows ${pos0}..${pos0 + M - 1} outside 0..${this.maxLen - 1}`);
    }
    // One view of the whole memory: copyWithin is a memmove inside the buffer, with no
    // per-run view objects.
    const mem = new Float32Array(this.arena.memory.buffer);
    const hd = this.headDim;
    const Dkv = this.rowFloats;
    const stride = this.headStride[layer];
    const skip = Math.max(0, M - this.capacity[layer]); // rows a ring overwrites within this store
    for (const [src, dst] of [[k, this.k[layer]], [v, this.v[layer]]]) {
      for (let t = skip; t < M; t++) {
        const d0 = dst / 4 + this.slot(layer, pos0 + t) * hd;
        const s0 = src / 4 + t * Dkv;
        for (let h = 0; h < this.numKvHeads; h++) {
          const s = s0 + h * hd;
          mem.copyWithin(d0 + h * stride, s, s + hd);
        }
      }
    }
  }

  /**
   * The longest prefix of at most `length` cached positions that can be kept and continued
   * exactly: a later query at position q >= L of a sliding layer needs positions L - W + 1 ..
   * L - 1, and a ring holds only the last `capacity` positions stored. Either `length` or 0
   * (a ring that has wrapped can rewind by at most one position).
   */
  reusablePrefix(length: number): number {
    const len = Math.min(length, this.length);
    for (let i = 0; i < this.capacity.length; i++) {
      if (!this.ring[i]) continue;
      const heldFrom = Math.max(0, this.length - this.capacity[i]);
      const neededFrom = Math.max(0, len - this.capacity[i] + 1);
      if (len > 0 && neededFrom < heldFrom) return 0;
    }
    return len;
  }

  /** Room for `n` more positions, or a RangeError naming the limit. */
  checkRoom(n: number): void {
    if (this.length + n > this.maxLen) {
      throw new RangeError(
        `KV cache full: ${this.length} + ${n} positions exceed its ${this.maxLen}`,
      );
    }
  }
}
