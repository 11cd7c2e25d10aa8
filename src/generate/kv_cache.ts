/**
 * The key/value cache of autoregressive decoding, allocated once from the arena for
 * `prompt + max new tokens` positions. Per layer, K and V are stored HEAD-MAJOR:
 * `[numKvHeads][maxLen][headDim]` f32 in the kernels' linear memory (keys after RoPE at their
 * absolute position). Head-major, the cached keys of one kv head are one contiguous row-major
 * `[positions, headDim]` matrix, which is what the GEMM kernels take (they have no leading
 * dimension): decode-step attention runs `q · Kᵀ` and `P · V` on the cache in place, with no
 * gather. The price is a scatter of each new token's `[Hkv·hd]` row into `Hkv` places
 * ({@link KvCache.store}), O(new tokens), against the O(cached tokens) a gather would cost.
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
import type { Ptr } from "../kernels/abi.ts";
import type { ModelConfig } from "../model/config.ts";
import type { Arena } from "../runtime/arena.ts";

/** Floats a head's block is padded to, so every block starts 64-byte aligned (ABI: 16). */
const HEAD_ALIGN_FLOATS = 16;

/** Per-layer, per-kv-head K and V rows for up to `maxLen` positions. */
export class KvCache {
  /** Floats of one token's K (or V) over all kv heads: `numKvHeads * headDim`. */
  readonly rowFloats: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  /** Floats from one kv head's block to the next (`maxLen * headDim`, padded). */
  readonly headStride: number;
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
    const block = maxLen * config.headDim;
    this.headStride = Math.ceil(block / HEAD_ALIGN_FLOATS) * HEAD_ALIGN_FLOATS;
    const layerBytes = config.numKvHeads * this.headStride * 4;
    this.bytes = 2 * config.numLayers * layerBytes;
    const base = arena.alloc(this.bytes);
    for (let i = 0; i < config.numLayers; i++) {
      this.k.push(base + 2 * i * layerBytes);
      this.v.push(base + (2 * i + 1) * layerBytes);
    }
  }

  /** Byte address of kv head `head`'s keys in `layer`: `[maxLen, headDim]`, row = position. */
  kHead(layer: number, head: number): Ptr {
    return this.k[layer] + head * this.headStride * 4;
  }

  /** Byte address of kv head `head`'s values in `layer` (layout as {@link kHead}). */
  vHead(layer: number, head: number): Ptr {
    return this.v[layer] + head * this.headStride * 4;
  }

  /**
   * Copies `M` token rows of K and V, each `[M, numKvHeads * headDim]` as the projections produce
   * them, into positions `pos0 .. pos0 + M - 1` of `layer` (one `headDim` run per token and head).
   * Does not change {@link length}.
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
    for (const [src, dst] of [[k, this.k[layer]], [v, this.v[layer]]]) {
      const s0 = src / 4;
      for (let h = 0; h < this.numKvHeads; h++) {
        let d = dst / 4 + h * this.headStride + pos0 * hd;
        let s = s0 + h * hd;
        for (let t = 0; t < M; t++, s += Dkv, d += hd) mem.copyWithin(d, s, s + hd);
      }
    }
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
