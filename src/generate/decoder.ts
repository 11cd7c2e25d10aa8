/**
 * Autoregressive inference over a {@link WeightStore}: a portable decoder with a per-layer KV
 * cache. `append(ids)` runs the new tokens through every block at their absolute positions
 * (the prompt as one prefill of M rows, then one row per generated token) and returns the logits
 * of the last one (or of every appended row).
 *
 * Per block, for M new rows at positions `p0 .. p0+M-1` (HF Qwen2 / Llama / Gemma 3 semantics,
 * docs/design.md, "The model"): `n1 = rmsnorm(x)`, q/k/v = linears (+bias, + LoRA `s·B(A n1)`, never merged into
 * W), Qwen3's and Gemma's per-head RMSNorm of q and k, RoPE (Gemma's sliding layers: their own
 * tables) at
 * the absolute positions, K and V copied into the (head-major) cache rows `p0 ..`, causal GQA
 * attention of the new queries against cache rows `0 .. p` (the `attentionForward` kernel when
 * the cache was empty, i.e. a prefill from position 0; otherwise per kv head `q · Kᵀ` and `P · V`
 * GEMMs on the cache with a TS softmax between), `x += o(attn)`, then the MLP in row chunks.
 * Gemma: the embedding times `embedScale`, the attention and MLP outputs through their sandwich
 * norms, the tanh-GELU MLP, and a sliding layer's query at position p attends to positions
 * `p - window + 1 .. p` only (its cache is a ring of `window` slots). The final norm and the LM head (over
 * `store.headChunks`) run on the requested rows only, so `[tokens, vocab]` logits never exist
 * unless asked for. With int4 weights a decode step's linears are GEMVs (`int4MatmulXWt`, M = 1).
 *
 * Memory: the cache (`2 · Hkv·hd` floats per slot; `maxLen` slots a full layer, `window` a
 * sliding one), the RoPE tables for `maxLen`
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
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import { baseForward, baseForwardBias, loraLinearForward } from "../model/linear.ts";
import type { BlockLora, LoraLinear, LoraTensors } from "../model/lora.ts";
import { linearShape, peftName } from "../model/lora.ts";
import {
  attentionScale,
  hasLocalRope,
  layerType,
  layerWindow,
  type ModelConfig,
} from "../model/config.ts";
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
  tensors: LoraTensors;
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
  /**
   * Most floats of the attention score tile `[query rows × heads per kv head, positions]` when
   * tokens are appended to a non-empty cache (default 2^20 = 4 MiB); a long append runs in passes
   * of fewer query rows. One decode step always fits (its tile is one token's).
   */
  scoreBudget?: number;
}

const DEFAULT_SCORE_BUDGET = 1 << 20;

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
  /** Sliding layers' RoPE tables when their theta differs (else the same as cos / sin). */
  private readonly cosLocal: Ptr;
  private readonly sinLocal: Ptr;
  /** Most floats of one attention score tile (see {@link DecoderOptions.scoreBudget}). */
  private readonly scoreBudget: number;
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
    this.scoreBudget = o.scoreBudget ?? DEFAULT_SCORE_BUDGET;
    if (!(Number.isInteger(this.scoreBudget) && this.scoreBudget > 0)) {
      throw new RangeError(`scoreBudget must be a positive integer`);
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
      this.cosLocal = this.cos;
      this.sinLocal = this.sin;
      if (hasLocalRope(c)) {
        this.cosLocal = arena.allocF32(o.maxLen * half);
        this.sinLocal = arena.allocF32(o.maxLen * half);
        ropeTables(
          { headDim: c.headDim, ropeTheta: c.ropeLocalTheta!, ropeScaling: null },
          positions,
          {
            cos: arena.f32(this.cosLocal, o.maxLen * half),
            sin: arena.f32(this.sinLocal, o.maxLen * half),
          },
        );
      }
    } catch (e) {
      arena.release(this.baseMark);
      throw e;
    }
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

  /**
   * The longest prefix of at most `length` cached positions {@link truncate} can keep: `length`
   * itself, or 0 when a sliding layer's ring has wrapped past what that prefix's next query
   * would see (see {@link KvCache.reusablePrefix}).
   */
  reusablePrefix(length: number): number {
    return this.cache.reusablePrefix(length);
  }

  /**
   * Keeps only the first `length` cached positions (a shared prefix of the next input). Exact:
   * a position's K/V depend only on the tokens at and before it. A length
   * {@link reusablePrefix} does not return is refused.
   */
  truncate(length: number): void {
    if (!(Number.isInteger(length) && length >= 0 && length <= this.cache.length)) {
      throw new RangeError(`decoder: cannot truncate ${this.cache.length} positions to ${length}`);
    }
    if (this.cache.reusablePrefix(length) !== length) {
      throw new RangeError(
        `decoder: cannot truncate ${this.cache.length} positions to ${length}: a sliding ` +
          `layer's ring no longer holds the keys position ${length} would see`,
      );
    }
    this.cache.length = length;
  }

  /** Frees everything `create` allocated (it must be the arena's top allocation). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.arena.release(this.baseMark);
  }

  /**
   * Runs `ids` at positions `position ..` through the model, appends their K/V to the cache and
   * returns the logits `[vocab]` of the last token (`rows = "all"`: `[ids.length, vocab]`). With
   * `out`, the logits are written there and `out` is returned: a generation loop that hands back
   * the previous step's array allocates no new `[vocab]` array per token (at a 150k vocabulary
   * that is 0.6 MB a token the garbage collector would otherwise have to catch up with).
   */
  async append(
    ids: ArrayLike<number>,
    rows: LogitRows = "last",
    out?: Float32Array,
  ): Promise<Float32Array> {
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
    const want = (rows === "all" ? M : 1) * c.vocabSize;
    if (out !== undefined && out.length !== want) {
      throw new RangeError(`decoder: the logits buffer holds ${out.length} floats, not ${want}`);
    }
    const { kernels: k, arena, store } = this;
    const D = c.hiddenSize;
    const pos0 = this.cache.length;
    const mark = arena.mark();
    try {
      const idsPtr = arena.allocI32(M);
      arena.i32(idsPtr, M).set(Array.from(ids));
      const x = arena.allocF32(M * D);
      await store.embed(x, idsPtr, M);
      const embedScale = c.embedScale ?? 1;
      if (embedScale !== 1) k.scale(x, embedScale, M * D);
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
      const logits = out ?? new Float32Array(R * V);
      const chunk = arena.allocF32(R * this.headChunkRows);
      for await (const { v0, weight } of store.headChunks(this.headChunkRows)) {
        if (weight.out > this.headChunkRows) throw new Error("head chunk larger than asked for");
        if (weight.bias !== null) baseForwardBias(k, weight, weight.bias, chunk, n, R);
        else baseForward(k, weight, chunk, n, R, 0);
        const view = arena.f32(chunk, R * weight.out);
        for (let r = 0; r < R; r++) {
          logits.set(view.subarray(r * weight.out, (r + 1) * weight.out), r * V + v0);
        }
      }
      return logits;
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
    // The new K/V rows as [M, Hkv*hd] (what the prefill kernel reads), then scattered into the
    // head-major cache.
    const kNew = arena.allocF32(M * cache.rowFloats);
    const vNew = arena.allocF32(M * cache.rowFloats);
    loraLinearForward(k, arena, L.q, lora.q, q, n1, M);
    loraLinearForward(k, arena, L.k, lora.k, kNew, n1, M);
    loraLinearForward(k, arena, L.v, lora.v, vNew, n1, M);
    if (bw.qkNorm) {
      // Qwen3: RMSNorm of every query / key head, in place, before RoPE (the cache holds normed K).
      const m = arena.mark();
      const rstdQ = arena.allocF32(M * Hq);
      const rstdK = arena.allocF32(M * Hkv);
      k.rmsnormForward(q, rstdQ, q, bw.qkNorm.q, M * Hq, hd, c.rmsNormEps);
      k.rmsnormForward(kNew, rstdK, kNew, bw.qkNorm.k, M * Hkv, hd, c.rmsNormEps);
      arena.release(m);
    }
    const tableOffset = pos0 * (hd / 2) * F;
    const sliding = layerType(c, i) === "sliding";
    const cos = (sliding ? this.cosLocal : this.cos) + tableOffset;
    const sin = (sliding ? this.sinLocal : this.sin) + tableOffset;
    k.ropeApply(q, cos, sin, M, Hq, hd, 0);
    k.ropeApply(kNew, cos, sin, M, Hkv, hd, 0);
    const attn = arena.allocF32(M * Dq);
    const scale = attentionScale(c);
    const window = layerWindow(c, i);
    if (pos0 === 0) {
      // Prefill from an empty cache: the new rows are all the keys and values there are.
      const lse = arena.allocF32(Hq * M);
      k.attentionForward(attn, lse, q, kNew, vNew, M, Hq, Hkv, hd, scale, window);
      cache.store(i, pos0, kNew, vNew, M);
    } else if (!cache.ring[i]) {
      cache.store(i, pos0, kNew, vNew, M);
      const src = { k: (g: number) => cache.kHead(i, g), v: (g: number) => cache.vHead(i, g) };
      this.attendCached(attn, q, M, pos0, scale, window, { ...src, base: 0 });
    } else if (M === 1) {
      // A ring's slots after this store are exactly the positions the query sees (at most the
      // window), in slot order; softmax attention does not depend on the keys' order.
      cache.store(i, pos0, kNew, vNew, M);
      const slots = Math.min(pos0 + 1, cache.capacity[i]);
      const src = { k: (g: number) => cache.kHead(i, g), v: (g: number) => cache.vHead(i, g) };
      this.attendCached(attn, q, M, pos0, scale, 0, { ...src, base: pos0 + 1 - slots });
    } else {
      // Several rows against a ring: storing them first would overwrite keys the earlier ones
      // still see, so the visible old positions and the new rows are gathered in position order.
      this.attendRing(i, attn, q, kNew, vNew, M, pos0, scale, window);
      cache.store(i, pos0, kNew, vNew, M);
    }
    // h1 = x + o(attn) (Gemma: + rmsnorm(o(attn))); n1 is dead, so it holds o(attn).
    loraLinearForward(k, arena, L.o, lora.o, n1, attn, M);
    const sw = bw.sandwichNorms;
    if (sw) k.rmsnormForward(n1, rstd, n1, sw.attnOut, M, D, c.rmsNormEps);
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
      if (c.mlpActivation === "gelu_tanh") k.gegluTanhForward(act, gate, up, rows * I);
      else k.swigluForward(act, gate, up, rows * I);
      loraLinearForward(k, arena, L.down, lora.down, n2, act, rows); // n2 is dead: it holds down(act)
      if (sw) k.rmsnormForward(n2, rs, n2, sw.mlpOut, rows, D, c.rmsNormEps);
      k.add(xr, xr, n2, rows * D);
      arena.release(m);
    }
  }

  /**
   * Attention of M (> 1) new rows at positions `pos0 ..` of ring layer `i`: the old positions they
   * see (`pos0 - W + 1 .. pos0 - 1`, read from their slots) and the new K/V rows `[M, Hkv·hd]` are
   * copied into head-major temporaries in position order, and {@link attendCached} runs on them
   * with the window mask. Temporaries are released before returning.
   */
  private attendRing(
    i: number,
    out: Ptr,
    qPtr: Ptr,
    kNew: Ptr,
    vNew: Ptr,
    M: number,
    pos0: number,
    scale: number,
    window: number,
  ): void {
    const { arena, cache } = this;
    const hd = cache.headDim;
    const Dkv = cache.rowFloats;
    const old = Math.min(pos0, window - 1);
    const base = pos0 - old;
    const stride = Math.ceil((old + M) * hd / 16) * 16;
    const mark = arena.mark();
    try {
      const kt = arena.allocF32(cache.numKvHeads * stride);
      const vt = arena.allocF32(cache.numKvHeads * stride);
      const mem = new Float32Array(arena.memory.buffer);
      for (let g = 0; g < cache.numKvHeads; g++) {
        for (
          const [dst, head, rows] of [[kt, cache.kHead(i, g), kNew], [vt, cache.vHead(i, g), vNew]]
        ) {
          const d0 = dst / F + g * stride;
          for (let j = 0; j < old; j++) {
            const s = head / F + cache.slot(i, base + j) * hd;
            mem.copyWithin(d0 + j * hd, s, s + hd);
          }
          for (let t = 0; t < M; t++) {
            const s = rows / F + t * Dkv + g * hd;
            mem.copyWithin(d0 + (old + t) * hd, s, s + hd);
          }
        }
      }
      this.attendCached(out, qPtr, M, pos0, scale, window, {
        k: (g) => kt + g * stride * F,
        v: (g) => vt + g * stride * F,
        base,
      });
    } finally {
      arena.release(mark);
    }
  }

  /**
   * Causal GQA attention of M query rows at positions `pos0 + t` against the keys and values of
   * positions `src.base .. pos0 + t`, held per kv head g as contiguous `[positions, hd]` matrices
   * at `src.k(g)`, `src.v(g)` (row 0 = position `src.base`), on the GEMM kernels. Per kv head g
   * (serving query heads `g·G .. g·G+G-1`, G = Hq/Hkv) and per
   * pass of query rows: `S = scale · Q_g · K_gᵀ` (`matmulABt`; the head-major cache makes K_g a
   * contiguous `[positions, hd]`), a max-subtracted softmax of each row over its visible positions
   * (TS, O(rows · positions)), then `O_g = P · V_g` (`matmulAB`). With one new token (a decode
   * step) a group's G query heads are already a contiguous `[G, hd]` in `q` and `out`, so the
   * GEMMs read and write them in place; with several (a prefill that continues a cache) they are
   * gathered into / scattered from small temporaries. Temporaries are released before returning.
   */
  private attendCached(
    out: Ptr,
    qPtr: Ptr,
    M: number,
    pos0: number,
    scale: number,
    window: number,
    src: { k: (g: number) => Ptr; v: (g: number) => Ptr; base: number },
  ) {
    const { config: c, kernels: k, arena } = this;
    const Hq = c.numHeads;
    const hd = c.headDim;
    const Dq = Hq * hd;
    const G = Hq / c.numKvHeads;
    const gw = G * hd; // floats of one group's query heads in a row of q / out
    const rel = pos0 - src.base; // row of position pos0 in the source
    const end = rel + M;
    // Query tokens per pass, so the [rows·G, positions] score tile stays within the budget.
    const tRows = Math.max(1, Math.min(M, Math.floor(this.scoreBudget / (G * end))));
    const direct = M === 1;
    const mark = arena.mark();
    try {
      const S = arena.allocF32(tRows * G * end);
      const qg = direct ? qPtr : arena.allocF32(tRows * gw);
      const og = direct ? out : arena.allocF32(tRows * gw);
      for (let t0 = 0; t0 < M; t0 += tRows) {
        const rows = Math.min(tRows, M - t0);
        const R = rows * G; // GEMM rows: token-major, row t·G + h is token t0+t, head g·G + h
        const n = rel + t0 + rows; // source rows up to the pass's last token
        for (let g = 0; g < c.numKvHeads; g++) {
          let qp = qg + g * gw * F;
          let op = og + g * gw * F;
          if (!direct) {
            qp = qg;
            op = og;
            const mem = new Float32Array(arena.memory.buffer);
            for (let t = 0; t < rows; t++) {
              const src = qPtr / F + (t0 + t) * Dq + g * gw;
              mem.copyWithin(qg / F + t * gw, src, src + gw);
            }
          }
          k.matmulABt(S, qp, src.k(g), R, n, hd, scale, 0);
          // Kernels never grow the memory, so this view stays valid until the next pass.
          causalSoftmaxRows(arena.f32(S, R * n), R, n, G, rel + t0 + 1, window);
          k.matmulAB(op, S, src.v(g), R, hd, n, 1, 0);
          if (!direct) {
            const mem = new Float32Array(arena.memory.buffer);
            for (let t = 0; t < rows; t++) {
              const dst = out / F + (t0 + t) * Dq + g * gw;
              mem.copyWithin(dst, og / F + t * gw, og / F + (t + 1) * gw);
            }
          }
        }
      }
    } finally {
      arena.release(mark);
    }
  }
}

/**
 * In place on scores `s` [R, n], row r holding the scaled scores of query token ⌊r / G⌋ of a
 * pass: that token sees positions `0 .. firstVisible + ⌊r / G⌋ - 1` (with `window` > 0 only the
 * last `window` of them); its row becomes their softmax (max-subtracted, f64 sum) and 0
 * elsewhere, so `P · V` ignores the future positions and those before the window.
 */
export function causalSoftmaxRows(
  s: Float32Array,
  R: number,
  n: number,
  G: number,
  firstVisible: number,
  window = 0,
): void {
  for (let r = 0; r < R; r++) {
    const o = r * n;
    const visible = Math.min(n, firstVisible + Math.floor(r / G));
    const e = o + visible;
    const b = o + (window > 0 ? Math.max(0, visible - window) : 0);
    let max = -Infinity;
    for (let j = b; j < e; j++) if (s[j] > max) max = s[j];
    let sum = 0;
    for (let j = b; j < e; j++) {
      const x = Math.exp(s[j] - max);
      s[j] = x;
      sum += x;
    }
    const inv = 1 / sum;
    for (let j = b; j < e; j++) s[j] *= inv;
    s.fill(0, o, b);
    s.fill(0, e, o + n);
  }
}
