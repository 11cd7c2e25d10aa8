/**
 * Autoregressive inference over a {@link WeightStore}: a portable decoder with a per-layer KV
 * cache. `append(ids)` runs the new tokens through every block at their absolute positions
 * (the prompt as one prefill of M rows, then one row per generated token) and returns the logits
 * of the last one (or of every appended row).
 *
 * Per block, for M new rows at positions `p0 .. p0+M-1` (HF Qwen2 / Llama semantics, DESIGN.md):
 * `n1 = rmsnorm(x)`, q/k/v = linears (+bias, + LoRA `s·B(A n1)`, never merged into W), RoPE at
 * the absolute positions, K and V written straight into the cache rows `p0 ..`, causal GQA
 * attention of the new queries against cache rows `0 .. p` (the `attentionForward` kernel when
 * the cache was empty, i.e. a prefill from position 0; a small f64 loop over arena views
 * otherwise), `x += o(attn)`, then the MLP in row chunks. The final norm and the LM head (over
 * `store.headChunks`) run on the requested rows only, so `[tokens, vocab]` logits never exist
 * unless asked for. With int4 weights a decode step's linears are GEMVs (`int4MatmulXWt`, M = 1).
 *
 * Memory: the cache (`2 · layers · maxLen · Hkv·hd` floats), the RoPE tables for `maxLen`
 * positions and the adapter are allocated once from the arena; each `append` works above them
 * and releases what it allocated before returning.
 *
 * @example
 * ```ts
 * import { Decoder } from "./decoder.ts";
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { createRandomWeightStore, tinyConfig } from "../model/random_weights.ts";
 * const { kernels, arena } = loadKernelsSync();
 * const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 1 });
 * const dec = Decoder.create({ store, kernels, arena, maxLen: 16 });
 * let logits = await dec.append([1, 2, 3]); // prefill: logits of position 2
 * logits = await dec.append([7]); // one decode step at position 3
 * dec.dispose();
 * ```
 */
import type { Kernels, Ptr } from "../kernels/abi.ts";
import { baseForward, loraLinearForward } from "../model/linear.ts";
import type { BlockLora, LoraLinear } from "../model/lora.ts";
import { linearShape, peftName } from "../model/lora.ts";
import type { ModelConfig } from "../model/config.ts";
import { ropeTables } from "../model/rope_tables.ts";
import type { BlockWeights, LinearName, WeightStore } from "../model/weights.ts";
import type { Arena } from "../runtime/arena.ts";
import { KvCache } from "./kv_cache.ts";

const F = 4; // bytes per f32

/** A LoRA adapter to apply: `r`, `lora_alpha`, targets, and tensors by PEFT name. */
export interface DecoderAdapter {
  r: number;
  alpha: number;
  targets: readonly LinearName[];
  /** A `[r, in]` and B `[out, r]` of every target of every layer, by PEFT name. */
  tensors: Map<string, { shape: [number, number]; data: Float32Array }>;
}

export interface DecoderOptions {
  store: WeightStore;
  kernels: Kernels;
  arena: Arena;
  /** Positions the KV cache holds: prompt + new tokens. */
  maxLen: number;
  adapter?: DecoderAdapter | null;
  /** Vocabulary rows per LM-head chunk (default 4096; the store may cap it). */
  headChunkRows?: number;
  /** Token rows per MLP chunk of a prefill (default 64). */
  mlpChunkRows?: number;
}

/**
 * Copies an adapter's tensors into the arena as per-block {@link BlockLora}s (parameters only:
 * no gradient buffers). Every tensor of every target must be present with its PEFT shape.
 */
export function adapterBlocks(
  config: ModelConfig,
  arena: Arena,
  adapter: DecoderAdapter,
): BlockLora[] {
  const r = adapter.r;
  if (!(Number.isInteger(r) && r > 0)) throw new RangeError(`adapter: bad rank ${r}`);
  if (!(adapter.alpha > 0)) throw new RangeError(`adapter: bad lora_alpha ${adapter.alpha}`);
  const scale = adapter.alpha / r;
  const blocks: BlockLora[] = [];
  const load = (name: string, rows: number, cols: number): Ptr => {
    const t = adapter.tensors.get(name);
    if (!t) throw new Error(`adapter: missing tensor ${name}`);
    if (t.shape[0] !== rows || t.shape[1] !== cols || t.data.length !== rows * cols) {
      throw new Error(`adapter: ${name} has shape [${t.shape}], expected [${rows},${cols}]`);
    }
    const p = arena.allocF32(rows * cols);
    arena.f32(p, rows * cols).set(t.data);
    return p;
  };
  for (let i = 0; i < config.numLayers; i++) {
    const block: BlockLora = {};
    for (const name of adapter.targets) {
      const [out, inF] = linearShape(config, name);
      const aName = peftName(i, name, "A");
      const bName = peftName(i, name, "B");
      const l: LoraLinear = {
        block: i,
        linear: name,
        rank: r,
        inFeatures: inF,
        outFeatures: out,
        scale,
        a: { name: aName, ptr: load(aName, r, inF), grad: 0, n: r * inF },
        b: { name: bName, ptr: load(bName, out, r), grad: 0, n: out * r },
      };
      block[name] = l;
    }
    blocks.push(block);
  }
  return blocks;
}

/** Which rows' logits `append` returns. */
export type LogitRows = "last" | "all";

/** The KV-cache decoder (see the module doc). */
export class Decoder {
  readonly config: ModelConfig;
  readonly cache: KvCache;
  readonly headChunkRows: number;
  readonly mlpChunkRows: number;
  private readonly store: WeightStore;
  private readonly kernels: Kernels;
  private readonly arena: Arena;
  private readonly lora: BlockLora[];
  private readonly cos: Ptr;
  private readonly sin: Ptr;
  private readonly scores: Float64Array;
  private readonly acc: Float64Array;
  private readonly baseMark: number;
  private disposed = false;

  private constructor(o: DecoderOptions) {
    this.store = o.store;
    this.kernels = o.kernels;
    this.arena = o.arena;
    this.config = o.store.config;
    const c = this.config;
    this.headChunkRows = o.headChunkRows ?? 4096;
    this.mlpChunkRows = o.mlpChunkRows ?? 64;
    if (!(this.headChunkRows > 0 && this.headChunkRows % 16 === 0)) {
      throw new RangeError(`headChunkRows must be a positive multiple of 16`);
    }
    if (!(Number.isInteger(this.mlpChunkRows) && this.mlpChunkRows > 0)) {
      throw new RangeError(`mlpChunkRows must be a positive integer`);
    }
    if (!Number.isSafeInteger(o.maxLen) || o.maxLen < 1) {
      throw new RangeError(`maxLen must be a positive integer, got ${o.maxLen}`);
    }
    if (c.numHeads % c.numKvHeads !== 0) {
      throw new RangeError(`num_heads ${c.numHeads} is not a multiple of ${c.numKvHeads}`);
    }
    const arena = o.arena;
    this.baseMark = arena.mark();
    try {
      this.lora = o.adapter
        ? adapterBlocks(c, arena, o.adapter)
        : Array.from({ length: c.numLayers }, () => ({}));
      this.cache = new KvCache(c, arena, o.maxLen);
      const half = c.headDim / 2;
      this.cos = arena.allocF32(o.maxLen * half);
      this.sin = arena.allocF32(o.maxLen * half);
      const positions = Array.from({ length: o.maxLen }, (_, t) => t);
      ropeTables(c, positions, {
        cos: arena.f32(this.cos, o.maxLen * half),
        sin: arena.f32(this.sin, o.maxLen * half),
      });
    } catch (e) {
      arena.release(this.baseMark);
      throw e;
    }
    this.scores = new Float64Array(o.maxLen);
    this.acc = new Float64Array(c.headDim);
  }

  /** Allocates the cache, RoPE tables and adapter on the arena top. */
  static create(o: DecoderOptions): Decoder {
    return new Decoder(o);
  }

  /** Tokens in the cache (the absolute position of the next token). */
  get position(): number {
    return this.cache.length;
  }

  /** Forgets every cached position (the buffers are kept). */
  reset(): void {
    this.cache.length = 0;
  }

  /** Frees everything `create` allocated (it must be the arena's top allocation). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.arena.release(this.baseMark);
  }

  /**
   * Runs `ids` at positions `position ..` through the model, appends their K/V to the cache and
   * returns the logits `[vocab]` of the last token (`rows = "all"`: `[ids.length, vocab]`).
   */
  async append(ids: ArrayLike<number>, rows: LogitRows = "last"): Promise<Float32Array> {
    if (this.disposed) throw new Error("decoder: used after dispose()");
    const c = this.config;
    const M = ids.length;
    if (M < 1) throw new RangeError("decoder: append needs at least one token");
    for (let t = 0; t < M; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new RangeError(`token id ${id} outside the vocabulary 0..${c.vocabSize - 1}`);
      }
    }
    this.cache.checkRoom(M);
    const { kernels: k, arena, store } = this;
    const D = c.hiddenSize;
    const pos0 = this.cache.length;
    const mark = arena.mark();
    try {
      const idsPtr = arena.allocI32(M);
      arena.i32(idsPtr, M).set(Array.from(ids));
      const x = arena.allocF32(M * D);
      await store.embed(x, idsPtr, M);
      for (let i = 0; i < c.numLayers; i++) {
        const bw = await store.acquireBlock(i);
        try {
          this.block(i, bw, x, M, pos0);
        } finally {
          store.releaseBlock(i);
        }
      }
      this.cache.length = pos0 + M;
      // Final norm and LM head on the requested rows only.
      const R = rows === "all" ? M : 1;
      const V = c.vocabSize;
      const rstd = arena.allocF32(R);
      const n = arena.allocF32(R * D);
      k.rmsnormForward(n, rstd, x + (M - R) * D * F, store.finalNorm, R, D, c.rmsNormEps);
      const out = new Float32Array(R * V);
      const chunk = arena.allocF32(R * this.headChunkRows);
      for await (const { v0, weight } of store.headChunks(this.headChunkRows)) {
        if (weight.out > this.headChunkRows) throw new Error("head chunk larger than asked for");
        baseForward(k, weight, chunk, n, R, 0);
        if (weight.bias !== null) k.addBias(chunk, weight.bias, R, weight.out);
        const view = arena.f32(chunk, R * weight.out);
        for (let r = 0; r < R; r++) {
          out.set(view.subarray(r * weight.out, (r + 1) * weight.out), r * V + v0);
        }
      }
      return out;
    } finally {
      arena.release(mark);
    }
  }

  /** One block in place on `x` [M, D] for rows at positions `pos0 ..`, filling cache rows. */
  private block(i: number, bw: BlockWeights, x: Ptr, M: number, pos0: number): void {
    const { config: c, kernels: k, arena, cache } = this;
    const lora = this.lora[i];
    const L = bw.linears;
    const D = c.hiddenSize;
    const I = c.intermediateSize;
    const Hq = c.numHeads;
    const Hkv = c.numKvHeads;
    const hd = c.headDim;
    const Dq = Hq * hd;
    const mark = arena.mark();
    // Attention half.
    const rstd = arena.allocF32(M);
    const n1 = arena.allocF32(M * D);
    k.rmsnormForward(n1, rstd, x, bw.inputNorm, M, D, c.rmsNormEps);
    const q = arena.allocF32(M * Dq);
    const kNew = cache.kRow(i, pos0);
    const vNew = cache.vRow(i, pos0);
    loraLinearForward(k, arena, L.q, lora.q, q, n1, M);
    loraLinearForward(k, arena, L.k, lora.k, kNew, n1, M);
    loraLinearForward(k, arena, L.v, lora.v, vNew, n1, M);
    const tableOffset = pos0 * (hd / 2) * F;
    k.ropeApply(q, this.cos + tableOffset, this.sin + tableOffset, M, Hq, hd, 0);
    k.ropeApply(kNew, this.cos + tableOffset, this.sin + tableOffset, M, Hkv, hd, 0);
    const attn = arena.allocF32(M * Dq);
    const scale = 1 / Math.sqrt(hd);
    if (pos0 === 0) {
      // Prefill from an empty cache: cache rows 0..M-1 are exactly the [T, Hkv*hd] k and v.
      const lse = arena.allocF32(Hq * M);
      k.attentionForward(attn, lse, q, cache.k[i], cache.v[i], M, Hq, Hkv, hd, scale);
    } else {
      this.attendCached(i, attn, q, M, pos0, scale);
    }
    // h1 = x + o(attn); n1 is dead, so it holds o(attn).
    loraLinearForward(k, arena, L.o, lora.o, n1, attn, M);
    k.add(x, x, n1, M * D);
    arena.release(mark);
    // MLP half, in row chunks.
    for (let r0 = 0; r0 < M; r0 += this.mlpChunkRows) {
      const rows = Math.min(this.mlpChunkRows, M - r0);
      const m = arena.mark();
      const xr = x + r0 * D * F;
      const rs = arena.allocF32(rows);
      const n2 = arena.allocF32(rows * D);
      k.rmsnormForward(n2, rs, xr, bw.postAttentionNorm, rows, D, c.rmsNormEps);
      const gate = arena.allocF32(rows * I);
      const up = arena.allocF32(rows * I);
      loraLinearForward(k, arena, L.gate, lora.gate, gate, n2, rows);
      loraLinearForward(k, arena, L.up, lora.up, up, n2, rows);
      const act = arena.allocF32(rows * I);
      k.swigluForward(act, gate, up, rows * I);
      loraLinearForward(k, arena, L.down, lora.down, n2, act, rows); // n2 is dead: it holds down(act)
      k.add(xr, xr, n2, rows * D);
      arena.release(m);
    }
  }

  /**
   * Causal GQA attention of M query rows at positions `pos0 + t` against cache rows `0 .. pos0+t`
   * (f64 accumulation over arena views; no allocation, so the views stay valid).
   */
  private attendCached(i: number, out: Ptr, qPtr: Ptr, M: number, pos0: number, scale: number) {
    const { config: c, arena, cache } = this;
    const Hq = c.numHeads;
    const hd = c.headDim;
    const Dq = Hq * hd;
    const Dkv = cache.rowFloats;
    const group = Hq / c.numKvHeads;
    const end = pos0 + M;
    const q = arena.f32(qPtr, M * Dq);
    const K = arena.f32(cache.k[i], end * Dkv);
    const V = arena.f32(cache.v[i], end * Dkv);
    const o = arena.f32(out, M * Dq);
    const s = this.scores;
    const acc = this.acc;
    for (let t = 0; t < M; t++) {
      const p = pos0 + t;
      for (let h = 0; h < Hq; h++) {
        const kvo = Math.floor(h / group) * hd;
        const qo = t * Dq + h * hd;
        let max = -Infinity;
        for (let j = 0; j <= p; j++) {
          const ko = j * Dkv + kvo;
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qo + d] * K[ko + d];
          s[j] = dot * scale;
          if (s[j] > max) max = s[j];
        }
        let sum = 0;
        for (let j = 0; j <= p; j++) sum += s[j] = Math.exp(s[j] - max);
        acc.fill(0);
        for (let j = 0; j <= p; j++) {
          const w = s[j];
          const vo = j * Dkv + kvo;
          for (let d = 0; d < hd; d++) acc[d] += w * V[vo + d];
        }
        for (let d = 0; d < hd; d++) o[qo + d] = acc[d] / sum;
      }
    }
  }
}
