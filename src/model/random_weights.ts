/**
 * A resident {@link WeightStore} with seeded random weights, built directly in the arena from a
 * {@link ModelConfig}: f32 (`quant: "none"`) or int4 (quantized with `kernels.int4Quantize`).
 * Used by tests and benchmarks that need a model of a given shape without a checkpoint.
 *
 * @example
 * ```ts
 * import { loadKernelsSync } from "../kernels/wasm.ts";
 * import { createRandomWeightStore, tinyConfig } from "./random_weights.ts";
 * const { kernels, arena } = loadKernelsSync({ variant: "reference" });
 * const store = createRandomWeightStore({ config: tinyConfig("qwen2"), kernels, arena, seed: 1 });
 * const block = await store.acquireBlock(0);
 * console.log(block.linears.q.out); // 64
 * store.releaseBlock(0);
 * ```
 */
import type { Kernels } from "../kernels/abi.ts";
import type { Ptr } from "../runtime/ptr.ts";
import type { Arena } from "../runtime/arena.ts";
import { Rng } from "../runtime/rng.ts";
import type { ModelConfig } from "./config.ts";
import { linearShape } from "./lora.ts";
import {
  type BlockWeights,
  type HeadChunk,
  LINEAR_NAMES,
  type LinearName,
  type LinearWeight,
  type WeightStore,
} from "./weights.ts";

/**
 * A small config for tests: hidden 64, 3 layers, 4 query / 2 kv heads (GQA), vocab 300. Qwen3
 * gets head_dim 24 (q_proj [96, 64]), so head_dim != hidden / heads as in the released models.
 * Gemma 3 gets head_dim 24, GQA 4:1, sliding and full layers alternating (sliding first), a
 * window of 3 keys (shorter than the test sequences), query_pre_attn_scalar 20 != head_dim,
 * two RoPE thetas and the √hidden embedding scale. Each is the `tiny-*` preset of src/io/presets.ts
 * but for the fields src/io/presets_test.ts lists with its reason.
 */
export function tinyConfig(
  architecture: "qwen2" | "qwen3" | "llama" | "gemma3",
  numLayers = 3,
): ModelConfig {
  if (architecture === "gemma3") {
    return {
      ...tinyConfig("qwen2", numLayers),
      architecture,
      numKvHeads: 1,
      headDim: 24,
      qkvBias: false,
      qkNorm: true,
      rmsNormEps: 1e-6,
      normWeightOffset: 1,
      sandwichNorms: true,
      mlpActivation: "gelu_tanh",
      embedScale: Math.fround(Math.sqrt(64)),
      attentionScale: Math.pow(20, -0.5),
      layerTypes: Array.from({ length: numLayers }, (_, i) => (i + 1) % 2 ? "sliding" : "full"),
      slidingWindow: 3,
      ropeTheta: 1e6,
      ropeLocalTheta: 1e4,
    };
  }
  if (architecture === "qwen3") {
    return {
      ...tinyConfig("qwen2", numLayers),
      architecture,
      headDim: 24,
      qkvBias: false,
      qkNorm: true,
    };
  }
  return {
    architecture,
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    vocabSize: 300,
    ropeTheta: architecture === "qwen2" ? 1e6 : 5e5,
    // Llama 3 scaling with a short original context so that all three frequency bands occur
    // (head_dim 16, theta 5e5: wavelengths 6.3 < 16 (high), 32.3 in [16, 64] (smoothed), >= 166 (low)).
    ropeScaling: architecture === "llama"
      ? {
        type: "llama3",
        factor: 8,
        lowFreqFactor: 1,
        highFreqFactor: 4,
        originalMaxPositionEmbeddings: 64,
      }
      : null,
    rmsNormEps: architecture === "qwen2" ? 1e-6 : 1e-5,
    tieWordEmbeddings: true,
    qkvBias: architecture === "qwen2",
    qkNorm: false,
    maxPositionEmbeddings: 4096,
    bosTokenId: null,
    eosTokenId: null,
    padTokenId: null,
  };
}

export interface RandomWeightStoreOptions {
  config: ModelConfig;
  kernels: Kernels;
  arena: Arena;
  seed: number;
  /** `none` keeps f32 weights; `int4` quantizes every linear and the embedding. Default none. */
  quant?: "none" | "int4";
  /** int4 group size along the input axis (default 64, or 32 when a dimension needs it). */
  groupSize?: number;
}

/** f32 values drawn per quantization chunk (4 MiB). */
const QUANTIZE_CHUNK_FLOATS = 1 << 20;

/**
 * Builds the store. Linear weights ~ N(0, 1/in), biases ~ N(0, 0.1²), norm weights (the
 * multipliers the norms apply, also for Gemma) ~ 1 + N(0, 0.1²), embedding ~ N(0, 4/hidden) so
 * logits are O(1).
 */
export function createRandomWeightStore(o: RandomWeightStoreOptions): WeightStore {
  const { config, kernels, arena } = o;
  const quant = o.quant ?? "none";
  const d = config.hiddenSize;
  const rng = new Rng(o.seed);
  const dims = [d, config.intermediateSize, config.numHeads * config.headDim];
  const groupSize = o.groupSize ?? (dims.every((x) => x % 64 === 0) ? 64 : 32);

  const normal = (n: number, std: number, mean = 0): Ptr => {
    const p = arena.allocF32(n);
    const v = arena.f32(p, n);
    rng.fillNormal(v, std);
    if (mean !== 0) { for (let i = 0; i < n; i++) v[i] += mean; }
    return p;
  };
  const linear = (out: number, inF: number, std: number, bias: boolean): LinearWeight => {
    if (quant === "none") {
      const w = normal(out * inF, std);
      return { kind: "f32", out, in: inF, w, bias: bias ? normal(out, 0.1) : null };
    }
    if (inF % groupSize !== 0) throw new RangeError(`in ${inF} not a multiple of ${groupSize}`);
    const q = arena.alloc(out * inF / 2);
    const scales = arena.allocF32(out * inF / groupSize);
    const biases = arena.allocF32(out * inF / groupSize);
    const b = bias ? normal(out, 0.1) : null;
    // Draw and quantize a few rows at a time (at most ~4 MB of f32), not the whole f32 matrix:
    // a large embedding would otherwise set the arena's high-water for the whole run. The
    // values are the same: the RNG stream is sequential and int4 groups never span rows.
    const rowsPerChunk = Math.max(1, Math.floor(QUANTIZE_CHUNK_FLOATS / inF));
    const groups = inF / groupSize;
    for (let r0 = 0; r0 < out; r0 += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, out - r0);
      const mark = arena.mark();
      const w = normal(rows * inF, std);
      kernels.int4Quantize(
        q + r0 * (inF / 2),
        scales + r0 * groups * 4,
        biases + r0 * groups * 4,
        w,
        rows,
        inF,
        groupSize,
      );
      arena.release(mark);
    }
    return { kind: "int4", out, in: inF, q, scales, biases, groupSize, bias: b };
  };

  const embedding = linear(config.vocabSize, d, 2 / Math.sqrt(d), false);
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < config.numLayers; i++) {
    const linears = {} as Record<LinearName, LinearWeight>;
    for (const name of LINEAR_NAMES) {
      const [out, inF] = linearShape(config, name);
      const bias = config.qkvBias && (name === "q" || name === "k" || name === "v");
      linears[name] = linear(out, inF, 1 / Math.sqrt(inF), bias);
    }
    const inputNorm = normal(d, 0.1, 1);
    const postAttentionNorm = normal(d, 0.1, 1);
    // Drawn after the other norms, so Qwen2 / Llama stores keep their values.
    const qkNorm = config.qkNorm
      ? { q: normal(config.headDim, 0.1, 1), k: normal(config.headDim, 0.1, 1) }
      : null;
    const sandwichNorms = config.sandwichNorms
      ? { attnOut: normal(d, 0.1, 1), mlpOut: normal(d, 0.1, 1) }
      : null;
    blocks.push({ index: i, linears, inputNorm, postAttentionNorm, qkNorm, sandwichNorms });
  }
  const finalNorm = normal(d, 0.1, 1);
  const head = config.tieWordEmbeddings
    ? embedding
    : linear(config.vocabSize, d, 1 / Math.sqrt(d), false);
  return new ResidentStore(config, quant, kernels, blocks, embedding, head, finalNorm);
}

/** Row range `[v0, v0 + rows)` of a weight, as a weight of its own (pointers offset, no copy). */
export function weightRows(w: LinearWeight, v0: number, rows: number): LinearWeight {
  if (w.kind === "f32") {
    return { kind: "f32", out: rows, in: w.in, w: w.w + v0 * w.in * 4, bias: null };
  }
  const groups = w.in / w.groupSize;
  return {
    kind: "int4",
    out: rows,
    in: w.in,
    q: w.q + v0 * (w.in / 2),
    scales: w.scales + v0 * groups * 4,
    biases: w.biases + v0 * groups * 4,
    groupSize: w.groupSize,
    bias: null,
  };
}

/** Every tensor already in linear memory; acquire/release are bookkeeping only. */
class ResidentStore implements WeightStore {
  readonly #acquired = new Set<number>();
  constructor(
    readonly config: ModelConfig,
    readonly quant: "int4" | "none",
    readonly kernels: Kernels,
    readonly blocks: BlockWeights[],
    readonly embedding: LinearWeight,
    readonly head: LinearWeight,
    readonly finalNorm: Ptr,
  ) {}

  acquireBlock(i: number): Promise<BlockWeights> {
    if (i < 0 || i >= this.blocks.length) throw new RangeError(`no block ${i}`);
    this.#acquired.add(i);
    return Promise.resolve(this.blocks[i]);
  }

  releaseBlock(i: number): void {
    if (!this.#acquired.delete(i)) throw new Error(`block ${i} released but not acquired`);
  }

  embed(out: Ptr, ids: Ptr, T: number): Promise<void> {
    const e = this.embedding;
    if (e.kind === "f32") this.kernels.embeddingGather(out, ids, e.w, T, e.in);
    else this.kernels.int4GatherRows(out, ids, e.q, e.scales, e.biases, T, e.in, e.groupSize);
    return Promise.resolve();
  }

  async *headChunks(rows: number): AsyncIterable<HeadChunk> {
    if (!(rows > 0 && rows % 16 === 0)) {
      throw new RangeError(`head chunk rows ${rows}: need a multiple of 16`);
    }
    const V = this.head.out;
    for (let v0 = 0; v0 < V; v0 += rows) {
      yield { v0, weight: weightRows(this.head, v0, Math.min(rows, V - v0)) };
    }
  }

  jsBytesHeld(): number {
    return 0;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
