/**
 * An independent float64 plain-TypeScript forward of the LoRA transformer (HF Qwen2 / Qwen3 /
 * Llama / Gemma 3 semantics; Qwen3's and Gemma's q_norm / k_norm normalize each head's head_dim
 * values before RoPE; Gemma's sandwich norms, tanh-GELU MLP, embedding scale, attention scale,
 * sliding-window layers with their own RoPE theta), written from the maths in docs/design.md and
 * sharing no code with `src/model/`: used by
 * the exactness tests for central finite differences of the loss. It also computes the LCSB
 * surrogate loss, where a non-selected block's output is `x + c` with `c = block(x0) - x0` frozen
 * at the unperturbed point (`h + stopgrad(block(h) - h)`).
 */
import type { Kernels } from "../src/kernels/abi.ts";
import type { ModelConfig } from "../src/model/config.ts";
import {
  LINEAR_NAMES,
  type LinearName,
  type LinearWeight,
  type WeightStore,
} from "../src/model/weights.ts";
import type { Arena } from "../src/runtime/arena.ts";

export interface RefBlock {
  w: Record<LinearName, Float64Array>;
  bias: Partial<Record<LinearName, Float64Array>>;
  n1: Float64Array;
  n2: Float64Array;
  /** Qwen3's q_norm / k_norm weights [headDim], absent without head norms. */
  qNorm?: Float64Array;
  kNorm?: Float64Array;
  /** Gemma's attention-output and MLP-output norm multipliers [D], absent without them. */
  attnOutNorm?: Float64Array;
  mlpOutNorm?: Float64Array;
}

export interface RefModel {
  config: ModelConfig;
  embed: Float64Array;
  head: Float64Array;
  finalNorm: Float64Array;
  blocks: RefBlock[];
}

/** Adapter tensors by `${block}.${linear}.A|B`, with the scale. */
export interface RefLora {
  scale: number;
  t: Map<string, Float64Array>;
}

function toF64(v: Float32Array): Float64Array {
  return Float64Array.from(v);
}

function readLinear(k: Kernels, arena: Arena, w: LinearWeight): Float64Array {
  const n = w.out * w.in;
  if (w.kind === "f32") return toF64(arena.f32(w.w, n));
  const mark = arena.mark();
  const out = arena.allocF32(n);
  k.int4Dequantize(out, w.q, w.scales, w.biases, w.out, w.in, w.groupSize);
  const r = toF64(arena.f32(out, n));
  arena.release(mark);
  return r;
}

/** Reads every (dequantized) weight of a store through the WeightStore interface. */
export async function readRefModel(
  store: WeightStore,
  k: Kernels,
  arena: Arena,
): Promise<RefModel> {
  const c = store.config;
  const D = c.hiddenSize;
  const V = c.vocabSize;
  const mark = arena.mark();
  const ids = arena.allocI32(V);
  arena.i32(ids, V).set(Int32Array.from({ length: V }, (_, i) => i));
  const e = arena.allocF32(V * D);
  await store.embed(e, ids, V);
  const embed = toF64(arena.f32(e, V * D));
  arena.release(mark);
  const head = new Float64Array(V * D);
  for await (const { v0, weight } of store.headChunks(16 * 4)) {
    head.set(readLinear(k, arena, weight), v0 * D);
  }
  const blocks: RefBlock[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const bw = await store.acquireBlock(i);
    const w = {} as Record<LinearName, Float64Array>;
    const bias: Partial<Record<LinearName, Float64Array>> = {};
    for (const name of LINEAR_NAMES) {
      const lw = bw.linears[name];
      w[name] = readLinear(k, arena, lw);
      if (lw.bias !== null) bias[name] = toF64(arena.f32(lw.bias, lw.out));
    }
    blocks.push({
      w,
      bias,
      n1: toF64(arena.f32(bw.inputNorm, D)),
      n2: toF64(arena.f32(bw.postAttentionNorm, D)),
      qNorm: bw.qkNorm ? toF64(arena.f32(bw.qkNorm.q, c.headDim)) : undefined,
      kNorm: bw.qkNorm ? toF64(arena.f32(bw.qkNorm.k, c.headDim)) : undefined,
      attnOutNorm: bw.sandwichNorms ? toF64(arena.f32(bw.sandwichNorms.attnOut, D)) : undefined,
      mlpOutNorm: bw.sandwichNorms ? toF64(arena.f32(bw.sandwichNorms.mlpOut, D)) : undefined,
    });
    store.releaseBlock(i);
  }
  return { config: c, embed, head, finalNorm: toF64(arena.f32(store.finalNorm, D)), blocks };
}

function rmsnorm(
  x: Float64Array,
  w: Float64Array,
  T: number,
  D: number,
  eps: number,
): Float64Array {
  const y = new Float64Array(T * D);
  for (let t = 0; t < T; t++) {
    let ss = 0;
    for (let j = 0; j < D; j++) ss += x[t * D + j] ** 2;
    const r = 1 / Math.sqrt(ss / D + eps);
    for (let j = 0; j < D; j++) y[t * D + j] = x[t * D + j] * r * w[j];
  }
  return y;
}

/** y[T, out] = x W^T (+ b) (+ s (x A^T) B^T). */
function linear(
  x: Float64Array,
  T: number,
  inF: number,
  outF: number,
  w: Float64Array,
  b: Float64Array | undefined,
  A: Float64Array | undefined,
  B: Float64Array | undefined,
  s: number,
): Float64Array {
  const y = new Float64Array(T * outF);
  const r = A ? A.length / inF : 0;
  const h = new Float64Array(r);
  for (let t = 0; t < T; t++) {
    for (let q = 0; q < r; q++) {
      let acc = 0;
      for (let j = 0; j < inF; j++) acc += x[t * inF + j] * A![q * inF + j];
      h[q] = acc;
    }
    for (let o = 0; o < outF; o++) {
      let acc = b ? b[o] : 0;
      for (let j = 0; j < inF; j++) acc += x[t * inF + j] * w[o * inF + j];
      let lo = 0;
      for (let q = 0; q < r; q++) lo += h[q] * B![o * r + q];
      y[t * outF + o] = acc + s * lo;
    }
  }
  return y;
}

/**
 * HF inverse frequencies in f64, with the llama3 rope_scaling rule; `theta` overrides the
 * config's (Gemma's sliding layers).
 */
export function refInvFreq(c: ModelConfig, theta = c.ropeTheta): Float64Array {
  const half = c.headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / c.headDim);
  const s = c.ropeScaling;
  if (s) {
    const lowWave = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
    const highWave = s.originalMaxPositionEmbeddings / s.highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wave = 2 * Math.PI / inv[i];
      if (wave > lowWave) inv[i] = inv[i] / s.factor;
      else if (wave >= highWave) {
        const smooth = (s.originalMaxPositionEmbeddings / wave - s.lowFreqFactor) /
          (s.highFreqFactor - s.lowFreqFactor);
        inv[i] = (1 - smooth) * inv[i] / s.factor + smooth * inv[i];
      }
    }
  }
  return inv;
}

function rope(x: Float64Array, T: number, H: number, hd: number, inv: Float64Array): void {
  const half = hd / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const o = (t * H + h) * hd;
      for (let i = 0; i < half; i++) {
        const c = Math.cos(t * inv[i]);
        const s = Math.sin(t * inv[i]);
        const x1 = x[o + i];
        const x2 = x[o + i + half];
        x[o + i] = x1 * c - x2 * s;
        x[o + i + half] = x2 * c + x1 * s;
      }
    }
  }
}

/** Causal attention; with `window` > 0 query t sees keys j with t - j < window only. */
function attention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  T: number,
  c: ModelConfig,
  window: number,
): Float64Array {
  const { numHeads: Hq, numKvHeads: Hkv, headDim: hd } = c;
  const out = new Float64Array(T * Hq * hd);
  const scale = c.attentionScale ?? 1 / Math.sqrt(hd);
  const p = new Float64Array(T);
  for (let h = 0; h < Hq; h++) {
    const kh = Math.floor(h / (Hq / Hkv));
    for (let t = 0; t < T; t++) {
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        if (window > 0 && t - j >= window) {
          p[j] = -Infinity;
          continue;
        }
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[(t * Hq + h) * hd + d] * k[(j * Hkv + kh) * hd + d];
        p[j] = s * scale;
        max = Math.max(max, p[j]);
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) sum += p[j] = Math.exp(p[j] - max);
      for (let d = 0; d < hd; d++) {
        let acc = 0;
        for (let j = 0; j <= t; j++) acc += p[j] * v[(j * Hkv + kh) * hd + d];
        out[(t * Hq + h) * hd + d] = acc / sum;
      }
    }
  }
  return out;
}

/** HF's `gelu_pytorch_tanh`. */
export function geluTanh(z: number): number {
  return 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));
}

function block(
  m: RefModel,
  i: number,
  lora: RefLora,
  x: Float64Array,
  T: number,
  gelu: (z: number) => number = geluTanh,
): Float64Array {
  const c = m.config;
  const D = c.hiddenSize;
  const I = c.intermediateSize;
  const Dq = c.numHeads * c.headDim;
  const Dkv = c.numKvHeads * c.headDim;
  const b = m.blocks[i];
  const lin = (name: LinearName, inp: Float64Array, inF: number, outF: number) =>
    linear(
      inp,
      T,
      inF,
      outF,
      b.w[name],
      b.bias[name],
      lora.t.get(`${i}.${name}.A`),
      lora.t.get(`${i}.${name}.B`),
      lora.scale,
    );
  const n1 = rmsnorm(x, b.n1, T, D, c.rmsNormEps);
  const q = lin("q", n1, D, Dq);
  const k = lin("k", n1, D, Dkv);
  const v = lin("v", n1, D, Dkv);
  // Qwen3: each head's vector [hd] normalized on its own, i.e. [T * H] rows of hd.
  const qn = b.qNorm ? rmsnorm(q, b.qNorm, T * c.numHeads, c.headDim, c.rmsNormEps) : q;
  const kn = b.kNorm ? rmsnorm(k, b.kNorm, T * c.numKvHeads, c.headDim, c.rmsNormEps) : k;
  const sliding = c.layerTypes?.[i] === "sliding";
  const inv = refInvFreq(c, sliding ? c.ropeLocalTheta ?? c.ropeTheta : c.ropeTheta);
  rope(qn, T, c.numHeads, c.headDim, inv);
  rope(kn, T, c.numKvHeads, c.headDim, inv);
  const a = attention(qn, kn, v, T, c, sliding ? c.slidingWindow ?? 0 : 0);
  const oRaw = lin("o", a, Dq, D);
  const o = b.attnOutNorm ? rmsnorm(oRaw, b.attnOutNorm, T, D, c.rmsNormEps) : oRaw;
  const h1 = x.map((xv, j) => xv + o[j]);
  const n2 = rmsnorm(h1, b.n2, T, D, c.rmsNormEps);
  const g = lin("gate", n2, D, I);
  const u = lin("up", n2, D, I);
  const act = c.mlpActivation === "gelu_tanh"
    ? g.map((z, j) => gelu(z) * u[j])
    : g.map((z, j) => z / (1 + Math.exp(-z)) * u[j]);
  const dnRaw = lin("down", act, I, D);
  const dn = b.mlpOutNorm ? rmsnorm(dnRaw, b.mlpOutNorm, T, D, c.rmsNormEps) : dnRaw;
  return h1.map((hv, j) => hv + dn[j]);
}

/** LCSB surrogate: blocks not in `selected` add the frozen `consts[i][b]` instead of running. */
export interface Surrogate {
  selected: Set<number>;
  consts: Float64Array[][];
}

/**
 * Mean cross-entropy (HF shift, -100 ignored, mean over the whole batch). With `record`, stores
 * each block's `output - input` per sequence (the constants of a {@link Surrogate}).
 */
export function refLoss(
  m: RefModel,
  lora: RefLora,
  ids: Int32Array,
  labels: Int32Array,
  batchSize: number,
  T: number,
  surrogate?: Surrogate,
  record?: Float64Array[][],
): number {
  const c = m.config;
  const D = c.hiddenSize;
  let total = 0;
  let count = 0;
  for (let bi = 0; bi < batchSize; bi++) {
    let x: Float64Array = new Float64Array(T * D);
    for (let t = 0; t < T; t++) {
      x.set(m.embed.subarray(ids[bi * T + t] * D, (ids[bi * T + t] + 1) * D), t * D);
    }
    // Gemma: the input embedding (not the tied head) times √hidden as the config rounds it.
    const es = c.embedScale ?? 1;
    if (es !== 1) x = x.map((v) => v * es);
    for (let i = 0; i < c.numLayers; i++) {
      let y: Float64Array;
      if (surrogate && !surrogate.selected.has(i)) {
        const cst = surrogate.consts[i][bi];
        y = x.map((v, j) => v + cst[j]);
      } else {
        y = block(m, i, lora, x, T);
      }
      if (record) (record[i] ??= [])[bi] = y.map((v, j) => v - x[j]);
      x = y;
    }
    const n = rmsnorm(x, m.finalNorm, T, D, c.rmsNormEps);
    for (let t = 0; t + 1 < T; t++) {
      const target = labels[bi * T + t + 1];
      if (target === -100) continue;
      const logits = new Float64Array(c.vocabSize);
      let max = -Infinity;
      for (let v = 0; v < c.vocabSize; v++) {
        let s = 0;
        for (let j = 0; j < D; j++) s += n[t * D + j] * m.head[v * D + j];
        logits[v] = s;
        max = Math.max(max, s);
      }
      let sum = 0;
      for (let v = 0; v < c.vocabSize; v++) sum += Math.exp(logits[v] - max);
      total += max + Math.log(sum) - logits[target];
      count++;
    }
  }
  return total / count;
}

/**
 * Next-token log-probs `[T, V]` after each of one sequence's `ids`; `gelu` replaces the MLP's
 * tanh GELU (to model another runtime's approximation of it).
 */
export function refLogProbs(
  m: RefModel,
  lora: RefLora,
  ids: ArrayLike<number>,
  gelu: (z: number) => number = geluTanh,
): Float64Array {
  const c = m.config;
  const D = c.hiddenSize;
  const V = c.vocabSize;
  const T = ids.length;
  let x: Float64Array = new Float64Array(T * D);
  for (let t = 0; t < T; t++) x.set(m.embed.subarray(ids[t] * D, (ids[t] + 1) * D), t * D);
  const es = c.embedScale ?? 1;
  if (es !== 1) x = x.map((v) => v * es);
  for (let i = 0; i < c.numLayers; i++) x = block(m, i, lora, x, T, gelu);
  const n = rmsnorm(x, m.finalNorm, T, D, c.rmsNormEps);
  const out = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    let max = -Infinity;
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let j = 0; j < D; j++) s += n[t * D + j] * m.head[v * D + j];
      out[t * V + v] = s;
      max = Math.max(max, s);
    }
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(out[t * V + v] - max);
    const lse = max + Math.log(sum);
    for (let v = 0; v < V; v++) out[t * V + v] -= lse;
  }
  return out;
}
