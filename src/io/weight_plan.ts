/**
 * What a checkpoint's base weights become in linear memory: for every frozen matrix its source
 * (a float tensor, or an MLX 4-bit triple) and its target format (int4 affine or f32), checked
 * against the shapes the config implies BEFORE any tensor data is read; and the byte layout of a
 * block slot / a row window of a matrix, so resident and streamed stores place weights the same way.
 */
import type { ModelConfig } from "../model/config.ts";
import {
  type BlockWeights,
  LINEAR_NAMES,
  type LinearName,
  type LinearWeight,
} from "../model/weights.ts";
import type { Ptr } from "../runtime/ptr.ts";
import { isFloatDtype } from "./dtype.ts";
import { SafetensorsError } from "./safetensors.ts";
import type { TensorRef, TensorSet } from "./tensor_set.ts";

/** Every region in a slot starts on a cache line (the ABI needs 16 bytes). */
export const SLOT_ALIGN = 64;

const align = (n: number) => Math.ceil(n / SLOT_ALIGN) * SLOT_ALIGN;

/** Where a frozen matrix `[out, in]` comes from and what it becomes. */
export interface MatrixPlan {
  /** Tensor name without `.weight` (e.g. `model.layers.0.self_attn.q_proj`). */
  prefix: string;
  out: number;
  in: number;
  /** `float`: `<prefix>.weight` BF16/F16/F32/F64; `mlx`: `.weight` U32 + `.scales` + `.biases`. */
  source: "float" | "mlx";
  target: "int4" | "f32";
  /** Group size of the int4 target; 0 for f32 targets. */
  groupSize: number;
  /** Group size of an MLX source; 0 for float sources. */
  sourceGroupSize: number;
}

/** Byte offsets of one matrix's row window inside a slot (relative to the slot base). */
export interface MatrixRegion {
  plan: MatrixPlan;
  /** Rows the region holds. */
  rows: number;
  /** int4: q, scales, biases; f32: w. Unused ones are -1. */
  q: number;
  scales: number;
  biases: number;
  w: number;
}

/** Lays out `rows` rows of `plan` starting at byte `at`; returns the region and the next free byte. */
export function matrixRegion(plan: MatrixPlan, rows: number, at: number): [MatrixRegion, number] {
  if (plan.target === "f32") {
    return [{ plan, rows, q: -1, scales: -1, biases: -1, w: at }, align(at + rows * plan.in * 4)];
  }
  const groups = plan.in / plan.groupSize;
  const q = at;
  const scales = align(q + rows * plan.in / 2);
  const biases = align(scales + rows * groups * 4);
  return [{ plan, rows, q, scales, biases, w: -1 }, align(biases + rows * groups * 4)];
}

/** Bytes of one row of `plan` in each array: q (int4) or w (f32), and scales/biases. */
export function rowBytes(plan: MatrixPlan): { q: number; sb: number; w: number } {
  return {
    q: plan.in / 2,
    sb: plan.groupSize ? (plan.in / plan.groupSize) * 4 : 0,
    w: plan.in * 4,
  };
}

/** A region's weights as a {@link LinearWeight} at `base`. */
export function linearAt(
  region: MatrixRegion,
  base: Ptr,
  bias: Ptr | null,
  rows = region.rows,
): LinearWeight {
  const { plan } = region;
  if (plan.target === "f32") {
    return { kind: "f32", out: rows, in: plan.in, w: base + region.w, bias };
  }
  return {
    kind: "int4",
    out: rows,
    in: plan.in,
    q: base + region.q,
    scales: base + region.scales,
    biases: base + region.biases,
    groupSize: plan.groupSize,
    bias,
  };
}

/** One block: seven linears, optional q/k/v biases, two norms (+ Qwen3's q/k head norms). */
export interface BlockLayout {
  index: number;
  linears: {
    name: LinearName;
    region: MatrixRegion;
    bias: number | null;
    biasName: string | null;
  }[];
  inputNorm: number;
  /** The MLP-input norm (see `BlockWeights.postAttentionNorm`). */
  postNorm: number;
  /** Offsets and tensor names of `q_norm` / `k_norm` (`[headDim]` each), or null. */
  qkNorm: { q: number; k: number; qName: string; kName: string; headDim: number } | null;
  /** Offsets and tensor names of Gemma 3's attention-output and MLP-output norms, or null. */
  sandwichNorms:
    | { attnOut: number; mlpOut: number; attnOutName: string; mlpOutName: string }
    | null;
  /** What the loader adds to every norm weight (1 for Gemma's zero-centred weights). */
  normWeightOffset: 0 | 1;
  /** Bytes of the whole slot. */
  bytes: number;
  /** Tensor names of the norms. */
  inputNormName: string;
  postNormName: string;
}

/** The weights of block `layout.index` in a slot at `base`. */
export function blockWeightsAt(layout: BlockLayout, base: Ptr): BlockWeights {
  const linears = {} as Record<LinearName, LinearWeight>;
  for (const l of layout.linears) {
    linears[l.name] = linearAt(l.region, base, l.bias === null ? null : base + l.bias);
  }
  const qk = layout.qkNorm;
  const sw = layout.sandwichNorms;
  return {
    index: layout.index,
    linears,
    inputNorm: base + layout.inputNorm,
    postAttentionNorm: base + layout.postNorm,
    qkNorm: qk ? { q: base + qk.q, k: base + qk.k } : null,
    sandwichNorms: sw ? { attnOut: base + sw.attnOut, mlpOut: base + sw.mlpOut } : null,
  };
}

/** The plan of every frozen tensor of a model. */
export interface ModelPlan {
  blocks: BlockLayout[];
  embedding: MatrixPlan;
  /** The LM head: the embedding plan itself when tied. */
  head: MatrixPlan;
  finalNormName: string;
  /** Largest block slot. */
  maxBlockBytes: number;
}

const HF_LINEAR: Record<LinearName, string> = {
  q: "self_attn.q_proj",
  k: "self_attn.k_proj",
  v: "self_attn.v_proj",
  o: "self_attn.o_proj",
  gate: "mlp.gate_proj",
  up: "mlp.up_proj",
  down: "mlp.down_proj",
};

/** Default int4 group size when quantizing float checkpoints. */
export const DEFAULT_GROUP_SIZE = 64;

function shapeError(ref: TensorRef, expected: readonly number[], note = ""): SafetensorsError {
  return new SafetensorsError(
    ref.file.name,
    `tensor ${ref.info.name} has shape [${ref.info.shape.join(", ")}] (${ref.info.dtype}), ` +
      `expected [${expected.join(", ")}]${note}`,
  );
}

function checkFloat(ref: TensorRef, shape: readonly number[]): void {
  const s = ref.info.shape;
  if (s.length !== shape.length || s.some((d, i) => d !== shape[i])) throw shapeError(ref, shape);
  if (!isFloatDtype(ref.info.dtype)) {
    throw new SafetensorsError(
      ref.file.name,
      `tensor ${ref.info.name} has dtype ${ref.info.dtype}, expected BF16, F16, F32 or F64`,
    );
  }
}

/** Checks `<prefix>.weight` (and the MLX triple) against `[out, in]` and decides the format. */
export function planMatrix(
  set: TensorSet,
  prefix: string,
  out: number,
  inDim: number,
  quant: "int4" | "none",
  groupSize: number,
): MatrixPlan {
  const weight = set.get(`${prefix}.weight`);
  if (set.has(`${prefix}.scales`)) {
    const scales = set.get(`${prefix}.scales`);
    const biases = set.get(`${prefix}.biases`);
    if (
      weight.info.dtype !== "U32" || weight.info.shape.length !== 2 ||
      weight.info.shape[0] !== out || weight.info.shape[1] * 8 !== inDim
    ) {
      throw shapeError(weight, [out, inDim / 8], " U32 (MLX 4-bit: 8 nibbles per u32)");
    }
    const groups = scales.info.shape[1];
    const gs = inDim / groups;
    if (scales.info.shape.length !== 2 || !Number.isInteger(gs) || gs % 8 !== 0) {
      throw shapeError(scales, [out, inDim / DEFAULT_GROUP_SIZE], " (one scale per group)");
    }
    checkFloat(scales, [out, groups]);
    checkFloat(biases, [out, groups]);
    return {
      prefix,
      out,
      in: inDim,
      source: "mlx",
      target: quant === "int4" ? "int4" : "f32",
      groupSize: quant === "int4" ? gs : 0,
      sourceGroupSize: gs,
    };
  }
  checkFloat(weight, [out, inDim]);
  if (quant === "int4" && inDim % groupSize !== 0) {
    throw new SafetensorsError(
      weight.file.name,
      `tensor ${prefix}.weight: input size ${inDim} is not a multiple of the int4 group size ` +
        `${groupSize}; use quant "none" or another group size`,
    );
  }
  return {
    prefix,
    out,
    in: inDim,
    source: "float",
    target: quant === "int4" ? "int4" : "f32",
    groupSize: quant === "int4" ? groupSize : 0,
    sourceGroupSize: 0,
  };
}

/** Validates every tensor the model needs (names, shapes, dtypes) and lays out the slots. */
export function planModel(
  config: ModelConfig,
  set: TensorSet,
  quant: "int4" | "none",
  groupSize = DEFAULT_GROUP_SIZE,
): ModelPlan {
  const { hiddenSize: h, intermediateSize: inter, numHeads, numKvHeads, headDim } = config;
  const dims: Record<LinearName, [number, number]> = {
    q: [numHeads * headDim, h],
    k: [numKvHeads * headDim, h],
    v: [numKvHeads * headDim, h],
    o: [h, numHeads * headDim],
    gate: [inter, h],
    up: [inter, h],
    down: [h, inter],
  };
  const vector = (name: string, n: number) => checkFloat(set.get(name), [n]);
  const blocks: BlockLayout[] = [];
  let maxBlockBytes = 0;
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    let at = 0;
    const linears: BlockLayout["linears"] = [];
    for (const name of LINEAR_NAMES) {
      const [out, inDim] = dims[name];
      const plan = planMatrix(set, `${p}.${HF_LINEAR[name]}`, out, inDim, quant, groupSize);
      const [region, next] = matrixRegion(plan, out, at);
      at = next;
      let bias: number | null = null;
      let biasName: string | null = null;
      if (config.qkvBias && (name === "q" || name === "k" || name === "v")) {
        biasName = `${plan.prefix}.bias`;
        vector(biasName, out);
        bias = at;
        at = align(at + out * 4);
      }
      linears.push({ name, region, bias, biasName });
    }
    const inputNormName = `${p}.input_layernorm.weight`;
    const postNormName = config.sandwichNorms
      ? `${p}.pre_feedforward_layernorm.weight`
      : `${p}.post_attention_layernorm.weight`;
    vector(inputNormName, h);
    vector(postNormName, h);
    const inputNorm = at;
    const postNorm = align(inputNorm + h * 4);
    at = align(postNorm + h * 4);
    let qkNorm: BlockLayout["qkNorm"] = null;
    if (config.qkNorm) {
      const qName = `${p}.self_attn.q_norm.weight`;
      const kName = `${p}.self_attn.k_norm.weight`;
      vector(qName, headDim);
      vector(kName, headDim);
      const q = at;
      const k = align(q + headDim * 4);
      at = align(k + headDim * 4);
      qkNorm = { q, k, qName, kName, headDim };
    }
    let sandwichNorms: BlockLayout["sandwichNorms"] = null;
    if (config.sandwichNorms) {
      const attnOutName = `${p}.post_attention_layernorm.weight`;
      const mlpOutName = `${p}.post_feedforward_layernorm.weight`;
      vector(attnOutName, h);
      vector(mlpOutName, h);
      const attnOut = at;
      const mlpOut = align(attnOut + h * 4);
      at = align(mlpOut + h * 4);
      sandwichNorms = { attnOut, mlpOut, attnOutName, mlpOutName };
    }
    const bytes = at;
    blocks.push({
      index: i,
      linears,
      inputNorm,
      postNorm,
      qkNorm,
      sandwichNorms,
      normWeightOffset: config.normWeightOffset ?? 0,
      bytes,
      inputNormName,
      postNormName,
    });
    maxBlockBytes = Math.max(maxBlockBytes, bytes);
  }
  const embedding = planMatrix(
    set,
    "model.embed_tokens",
    config.vocabSize,
    h,
    quant,
    groupSize,
  );
  const head = config.tieWordEmbeddings
    ? embedding
    : planMatrix(set, "lm_head", config.vocabSize, h, quant, groupSize);
  const finalNormName = "model.norm.weight";
  vector(finalNormName, h);
  return { blocks, embedding, head, finalNormName, maxBlockBytes };
}
