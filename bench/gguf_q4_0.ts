/**
 * Writes a slimtune weight store (Qwen2 architecture) as a llama.cpp GGUF file with Q4_0 linears
 * and embedding, so bench/decode.ts can run llama.cpp on the same random model. Bench-only: the
 * int4 weights are dequantized (the kernels' own dequantization) and re-quantized to Q4_0 (blocks
 * of 32 along the input axis, an f16 scale d = the signed extreme / -8, q = x / d + 8 rounded and
 * clamped to 0..15, elements j and j + 16 of a block sharing byte j); norms and biases stay f32.
 * The vocabulary is the bundled Qwen2.5 tokenizer's (BPE, padded to the model's vocab size).
 */
import type { Kernels } from "../src/kernels/abi.ts";
import type { Arena } from "../src/runtime/arena.ts";
import type { LinearWeight, WeightStore } from "../src/model/weights.ts";

const GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6, GGUF_STRING = 8, GGUF_ARRAY = 9;
const GGML_F32 = 0, GGML_Q4_0 = 2;
const ALIGN = 32;

/** Little-endian byte writer. */
class Bytes {
  parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array) {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v, true);
    this.push(b);
  }
  i32(v: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.push(b);
  }
  u64(v: number) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  f32(v: number) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.push(b);
  }
  str(s: string) {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.push(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

/** f32 -> IEEE half bits, round to nearest even (the scale of a Q4_0 block). */
function toHalf(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer)[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  e = h >>> 10;
  return sign | h;
}

function fromHalf(h: number): number {
  const e = (h >>> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Q4_0 of rows of `cols` floats (cols % 32 == 0): 18 bytes per block of 32. */
function quantizeQ4_0(x: Float32Array, cols: number): Uint8Array {
  const blocks = x.length / 32;
  const out = new Uint8Array(blocks * 18);
  const dv = new DataView(out.buffer);
  if (cols % 32 !== 0) throw new Error(`Q4_0 needs rows of a multiple of 32, got ${cols}`);
  for (let b = 0; b < blocks; b++) {
    const o = b * 32;
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const hd = toHalf(max / -8);
    const d = fromHalf(hd);
    const id = d !== 0 ? 1 / d : 0;
    dv.setUint16(b * 18, hd, true);
    for (let j = 0; j < 16; j++) {
      const q0 = Math.min(15, Math.trunc(x[o + j] * id + 8.5));
      const q1 = Math.min(15, Math.trunc(x[o + 16 + j] * id + 8.5));
      out[b * 18 + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

interface TensorOut {
  name: string;
  dims: number[];
  type: number;
  data: Uint8Array;
}

/** A linear's W [out, in] as f32 (int4: the kernels' dequantization). */
function linearF32(w: LinearWeight, kernels: Kernels, arena: Arena): Float32Array {
  if (w.kind === "f32") return arena.f32(w.w, w.out * w.in).slice();
  const mark = arena.mark();
  const p = arena.allocF32(w.out * w.in);
  kernels.int4Dequantize(p, w.q, w.scales, w.biases, w.out, w.in, w.groupSize);
  const v = arena.f32(p, w.out * w.in).slice();
  arena.release(mark);
  return v;
}

function f32Tensor(name: string, v: Float32Array): TensorOut {
  return { name, dims: [v.length], type: GGML_F32, data: new Uint8Array(v.slice().buffer) };
}

/** Writes `store` (qwen2, tied embeddings) as a Q4_0 GGUF at `path`. */
export async function writeQwen2GgufQ4_0(
  path: string,
  store: WeightStore,
  kernels: Kernels,
  arena: Arena,
  tokenizerJsonPath: string,
): Promise<void> {
  const c = store.config;
  if (c.architecture !== "qwen2") throw new Error("writeQwen2GgufQ4_0: qwen2 only");
  const tensors: TensorOut[] = [];
  const d = c.hiddenSize;
  // The tied embedding, from the head's chunks.
  const emb = new Float32Array(c.vocabSize * d);
  for await (const ch of store.headChunks(4096)) {
    emb.set(linearF32(ch.weight, kernels, arena), ch.v0 * d);
  }
  tensors.push({
    name: "token_embd.weight",
    dims: [d, c.vocabSize],
    type: GGML_Q4_0,
    data: quantizeQ4_0(emb, d),
  });
  tensors.push(f32Tensor("output_norm.weight", arena.f32(store.finalNorm, d)));
  const names = {
    q: "attn_q",
    k: "attn_k",
    v: "attn_v",
    o: "attn_output",
    gate: "ffn_gate",
    up: "ffn_up",
    down: "ffn_down",
  } as const;
  for (let i = 0; i < c.numLayers; i++) {
    const b = await store.acquireBlock(i);
    tensors.push(f32Tensor(`blk.${i}.attn_norm.weight`, arena.f32(b.inputNorm, d)));
    tensors.push(f32Tensor(`blk.${i}.ffn_norm.weight`, arena.f32(b.postAttentionNorm, d)));
    for (const [ours, theirs] of Object.entries(names)) {
      const w = b.linears[ours as keyof typeof names];
      tensors.push({
        name: `blk.${i}.${theirs}.weight`,
        dims: [w.in, w.out],
        type: GGML_Q4_0,
        data: quantizeQ4_0(linearF32(w, kernels, arena), w.in),
      });
      if (w.bias !== null) {
        tensors.push(f32Tensor(`blk.${i}.${theirs}.bias`, arena.f32(w.bias, w.out)));
      }
    }
    store.releaseBlock(i);
  }

  const tok = JSON.parse(await Deno.readTextFile(tokenizerJsonPath));
  const tokens: string[] = new Array(c.vocabSize);
  const types: number[] = new Array(c.vocabSize).fill(1);
  for (const [t, id] of Object.entries(tok.model.vocab as Record<string, number>)) tokens[id] = t;
  for (const a of tok.added_tokens as { id: number; content: string; special: boolean }[]) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4;
  }
  for (let i = 0; i < c.vocabSize; i++) {
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = 4;
    }
  }
  const merges: string[] = (tok.model.merges as (string | string[])[]).map((m) =>
    typeof m === "string" ? m : m.join(" ")
  );

  const h = new Bytes();
  const kvs: [string, (b: Bytes) => void][] = [];
  const kvU32 = (k: string, v: number) =>
    kvs.push([k, (b) => {
      b.u32(GGUF_U32);
      b.u32(v);
    }]);
  const kvF32 = (k: string, v: number) =>
    kvs.push([k, (b) => {
      b.u32(GGUF_F32);
      b.f32(v);
    }]);
  const kvStr = (k: string, v: string) =>
    kvs.push([k, (b) => {
      b.u32(GGUF_STRING);
      b.str(v);
    }]);
  kvStr("general.architecture", "qwen2");
  kvStr("general.name", "slimtune random qwen2");
  kvU32("general.alignment", ALIGN);
  kvU32("general.file_type", 2);
  kvU32("qwen2.context_length", c.maxPositionEmbeddings);
  kvU32("qwen2.embedding_length", d);
  kvU32("qwen2.block_count", c.numLayers);
  kvU32("qwen2.feed_forward_length", c.intermediateSize);
  kvU32("qwen2.attention.head_count", c.numHeads);
  kvU32("qwen2.attention.head_count_kv", c.numKvHeads);
  kvF32("qwen2.rope.freq_base", c.ropeTheta);
  kvF32("qwen2.attention.layer_norm_rms_epsilon", c.rmsNormEps);
  kvStr("tokenizer.ggml.model", "gpt2");
  kvStr("tokenizer.ggml.pre", "qwen2");
  kvs.push(["tokenizer.ggml.tokens", (b) => {
    b.u32(GGUF_ARRAY);
    b.u32(GGUF_STRING);
    b.u64(tokens.length);
    for (const t of tokens) b.str(t);
  }]);
  kvs.push(["tokenizer.ggml.token_type", (b) => {
    b.u32(GGUF_ARRAY);
    b.u32(GGUF_I32);
    b.u64(types.length);
    for (const t of types) b.i32(t);
  }]);
  kvs.push(["tokenizer.ggml.merges", (b) => {
    b.u32(GGUF_ARRAY);
    b.u32(GGUF_STRING);
    b.u64(merges.length);
    for (const m of merges) b.str(m);
  }]);
  kvU32("tokenizer.ggml.eos_token_id", 151643);
  kvU32("tokenizer.ggml.padding_token_id", 151643);

  h.push(new TextEncoder().encode("GGUF"));
  h.u32(3);
  h.u64(tensors.length);
  h.u64(kvs.length);
  for (const [k, write] of kvs) {
    h.str(k);
    write(h);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    h.str(t.name);
    h.u32(t.dims.length);
    for (const n of t.dims) h.u64(n);
    h.u32(t.type);
    h.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.data.length / ALIGN) * ALIGN;
  }
  const header = h.concat();
  const pad = (n: number) => new Uint8Array((ALIGN - (n % ALIGN)) % ALIGN);
  const tmp = `${path}.tmp`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const writeAll = async (b: Uint8Array) => {
      let o = 0;
      while (o < b.length) o += await f.write(b.subarray(o));
    };
    await writeAll(header);
    await writeAll(pad(header.length));
    for (const t of tensors) {
      await writeAll(t.data);
      await writeAll(pad(t.data.length));
    }
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}
