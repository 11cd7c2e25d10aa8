/**
 * The key/value cache of autoregressive decoding: per layer, K and V as `[maxLen, Hkv*hd]` f32
 * rows in the kernels' linear memory (keys stored after RoPE at their absolute position), all
 * allocated once from the arena for `prompt + max new tokens` positions.
 *
 * @example
 * ```ts
 * import { KvCache } from "./kv_cache.ts";
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { tinyConfig } from "../model/random_weights.ts";
 * const { arena } = loadKernelsSync({ variant: "reference" });
 * const cache = new KvCache(tinyConfig("qwen2"), arena, 32);
 * console.log(cache.bytes); // 3 layers x 2 x 32 rows x 32 floats x 4 bytes = 24576
 * ```
 */
import type { Ptr } from "../kernels/abi.ts";
import type { ModelConfig } from "../model/config.ts";
import type { Arena } from "../runtime/arena.ts";

/** Per-layer K and V rows for up to `maxLen` positions. */
export class KvCache {
  /** Floats per cached row: `numKvHeads * headDim`. */
  readonly rowFloats: number;
  /** K base pointer of each layer (`[maxLen, rowFloats]`). */
  readonly k: Ptr[] = [];
  /** V base pointer of each layer. */
  readonly v: Ptr[] = [];
  /** Bytes of the one allocation. */
  readonly bytes: number;
  /** Positions filled so far (the next token's absolute position). */
  length = 0;

  constructor(config: ModelConfig, arena: Arena, readonly maxLen: number) {
    if (!Number.isSafeInteger(maxLen) || maxLen < 1) {
      throw new RangeError(`KV cache: maxLen must be a positive integer, got ${maxLen}`);
    }
    this.rowFloats = config.numKvHeads * config.headDim;
    const layerBytes = maxLen * this.rowFloats * 4;
    this.bytes = 2 * config.numLayers * layerBytes;
    const base = arena.alloc(this.bytes);
    for (let i = 0; i < config.numLayers; i++) {
      this.k.push(base + 2 * i * layerBytes);
      this.v.push(base + (2 * i + 1) * layerBytes);
    }
  }

  /** Byte address of row `pos` of layer `layer`'s K (or V). */
  kRow(layer: number, pos: number): Ptr {
    return this.k[layer] + pos * this.rowFloats * 4;
  }

  vRow(layer: number, pos: number): Ptr {
    return this.v[layer] + pos * this.rowFloats * 4;
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
