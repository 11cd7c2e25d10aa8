import assert from "node:assert/strict";
import { openModel } from "./model_source.ts";
import { MemoryCacheStore } from "./cache_store.ts";
import { serializeSafetensors, type TensorData } from "./safetensors_writer.ts";
import { loadKernelsSync } from "../kernels/wasm.ts";
import { LINEAR_NAMES, type LinearWeight, type WeightStore } from "../model/weights.ts";
import { makeRandom } from "../kernels/_testing.ts";

// A hand-made mlx-community style 4-bit checkpoint: Llama layout, hidden 64, group size 32,
// `weight` U32 [out, in/8], `scales`/`biases` F16 [out, in/32]; norms BF16.
const H = 64, INTER = 96, HEADS = 4, KV = 2, HD = 16, VOCAB = 40, GS = 32, LAYERS = 2;

const f32 = Math.fround;
const rand = makeRandom(99);
const nibble = () => Math.floor(((rand() + 1) / 2) * 16) & 15;

/** Random values k/1024 (exact in f16 for 1 <= |k| < 2048) with their f16 bit patterns. */
function f16Values(
  n: number,
  lo: number,
  span: number,
): { bits: Uint16Array; values: Float32Array } {
  const bits = new Uint16Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let k = Math.round((lo + ((rand() + 1) / 2) * span) * 1024);
    if (k === 0) k = 1;
    const v = k / 1024;
    values[i] = v;
    const e = Math.floor(Math.log2(Math.abs(v))); // 1 <= |v| / 2^e < 2
    const mantissa = Math.round((Math.abs(v) / 2 ** e - 1) * 1024);
    bits[i] = (v < 0 ? 0x8000 : 0) | ((e + 15) << 10) | mantissa;
  }
  return { bits, values };
}

interface Quantized {
  words: Uint32Array;
  nibbles: Uint8Array;
  scales: Float32Array;
  biases: Float32Array;
  tensors: TensorData[];
}

function quantized(prefix: string, out: number, inDim: number): Quantized {
  const nibbles = new Uint8Array(out * inDim).map(nibble);
  const words = new Uint32Array(out * inDim / 8);
  for (let i = 0; i < nibbles.length; i++) words[i >> 3] |= nibbles[i] << ((i & 7) * 4);
  const s = f16Values(out * inDim / GS, 0.001, 0.01);
  const b = f16Values(out * inDim / GS, -0.1, 0.05);
  const u8 = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return {
    words,
    nibbles,
    scales: s.values,
    biases: b.values,
    tensors: [
      { name: `${prefix}.weight`, dtype: "U32", shape: [out, inDim / 8], data: u8(words) },
      { name: `${prefix}.scales`, dtype: "F16", shape: [out, inDim / GS], data: u8(s.bits) },
      { name: `${prefix}.biases`, dtype: "F16", shape: [out, inDim / GS], data: u8(b.bits) },
    ],
  };
}

/** The MLX formula, computed here: w[n, k] = scale[n, k/GS] * q[n, k] + bias[n, k/GS]. */
function mlxDense(q: Quantized, out: number, inDim: number): Float32Array {
  const w = new Float32Array(out * inDim);
  for (let n = 0; n < out; n++) {
    for (let k = 0; k < inDim; k++) {
      const g = n * (inDim / GS) + Math.floor(k / GS);
      w[n * inDim + k] = f32(f32(q.scales[g] * q.nibbles[n * inDim + k]) + q.biases[g]);
    }
  }
  return w;
}

const dims: Record<string, [string, number, number]> = {
  q: ["self_attn.q_proj", HEADS * HD, H],
  k: ["self_attn.k_proj", KV * HD, H],
  v: ["self_attn.v_proj", KV * HD, H],
  o: ["self_attn.o_proj", H, HEADS * HD],
  gate: ["mlp.gate_proj", INTER, H],
  up: ["mlp.up_proj", INTER, H],
  down: ["mlp.down_proj", H, INTER],
};

/**
 * The fixture as Llama, as Qwen3 (q/k norms of 1.5, stored as multipliers), or as Gemma 3 text
 * (zero-centred BF16 norms of 0.5, q/k norms, 4 norms).
 */
function buildFixture(arch: "llama" | "qwen3" | "gemma3" = "llama") {
  const tensors: TensorData[] = [];
  const linears = new Map<string, Quantized>();
  const add = (prefix: string, out: number, inDim: number) => {
    const q = quantized(prefix, out, inDim);
    linears.set(prefix, q);
    tensors.push(...q.tensors);
  };
  const ones = new Uint8Array(new Uint16Array(H).fill(0x3f80).buffer); // BF16 1.0
  add("model.embed_tokens", VOCAB, H);
  for (let i = 0; i < LAYERS; i++) {
    for (const [, [name, out, inDim]] of Object.entries(dims)) {
      add(`model.layers.${i}.${name}`, out, inDim);
    }
    const norms = arch === "gemma3"
      ? [
        "input_layernorm",
        "post_attention_layernorm",
        "pre_feedforward_layernorm",
        "post_feedforward_layernorm",
      ]
      : ["input_layernorm", "post_attention_layernorm"];
    for (const n of norms) {
      tensors.push({
        name: `model.layers.${i}.${n}.weight`,
        dtype: "BF16",
        shape: [H],
        data: arch === "gemma3" ? halves(H) : ones,
      });
    }
    if (arch !== "llama") {
      for (const n of ["q_norm", "k_norm"]) {
        tensors.push({
          name: `model.layers.${i}.self_attn.${n}.weight`,
          dtype: "BF16",
          shape: [HD],
          data: arch === "gemma3" ? halves(HD) : bf16Fill(HD, 0x3fc0),
        });
      }
    }
  }
  tensors.push({
    name: "model.norm.weight",
    dtype: "BF16",
    shape: [H],
    data: arch === "gemma3" ? halves(H) : ones,
  });
  const gemmaConfig = {
    architectures: ["Gemma3ForCausalLM"],
    model_type: "gemma3_text",
    hidden_size: H,
    intermediate_size: INTER,
    num_hidden_layers: LAYERS,
    num_attention_heads: HEADS,
    num_key_value_heads: KV,
    head_dim: HD,
    vocab_size: VOCAB,
    sliding_window: 4,
    layer_types: ["sliding_attention", "full_attention"],
    query_pre_attn_scalar: HD,
    torch_dtype: "bfloat16",
    quantization: { group_size: GS, bits: 4 },
  };
  const llamaConfig = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: H,
    intermediate_size: INTER,
    num_hidden_layers: LAYERS,
    num_attention_heads: HEADS,
    num_key_value_heads: KV,
    vocab_size: VOCAB,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
    quantization: { group_size: GS, bits: 4 },
  };
  const qwen3Config = {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    hidden_size: H,
    intermediate_size: INTER,
    num_hidden_layers: LAYERS,
    num_attention_heads: HEADS,
    num_key_value_heads: KV,
    head_dim: HD,
    vocab_size: VOCAB,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    attention_bias: false,
    tie_word_embeddings: true,
    torch_dtype: "bfloat16",
    quantization: { group_size: GS, bits: 4 },
  };
  const config = { llama: llamaConfig, qwen3: qwen3Config, gemma3: gemmaConfig }[arch];
  const files = {
    "config.json": new TextEncoder().encode(JSON.stringify(config)),
    "model.safetensors": serializeSafetensors(tensors, { format: "mlx" }),
  };
  return { files, linears };
}

/** n BF16 values 0.5 (zero-centred Gemma norms: multipliers 1.5). */
function halves(n: number): Uint8Array {
  return bf16Fill(n, 0x3f00);
}

/** n copies of the BF16 bit pattern `bits`. */
function bf16Fill(n: number, bits: number): Uint8Array {
  return new Uint8Array(new Uint16Array(n).fill(bits).buffer);
}

function dense(w: LinearWeight, store: { kernels: ReturnType<typeof loadKernelsSync> }) {
  const { kernels, arena } = store.kernels;
  if (w.kind === "f32") return arena.f32(w.w, w.out * w.in).slice();
  const m = arena.mark();
  const out = arena.allocF32(w.out * w.in);
  kernels.int4Dequantize(out, w.q, w.scales, w.biases, w.out, w.in, w.groupSize);
  const v = arena.f32(out, w.out * w.in).slice();
  arena.release(m);
  return v;
}

/** Opens the fixture's files with int4 weights on `weights`, 16-row head chunks. */
function openFixture(
  files: Record<string, Uint8Array>,
  weights: "resident" | "streamed",
  k: ReturnType<typeof loadKernelsSync>,
): Promise<WeightStore> {
  return openModel({
    source: files,
    quant: "int4",
    weights,
    cache: new MemoryCacheStore(),
    headChunkRows: 16,
    ...k,
  });
}

/** One mesp step on every LoRA target, ids `t * stride mod VOCAB`: a finite, positive loss. */
async function assertTrainsAStep(
  store: WeightStore,
  k: ReturnType<typeof loadKernelsSync>,
  stride: number,
  what: string,
): Promise<void> {
  const { LoraTrainingSession } = await import("../methods/session.ts");
  const session = new LoraTrainingSession({
    store,
    ...k,
    method: "mesp",
    seed: 1,
    maxGradNorm: 0,
    lora: { rank: 2, alpha: 4, targets: [...LINEAR_NAMES] },
    optimizer: { kind: "sgd", lr: 1e-2, weightDecay: 0 },
    headChunkRows: 16,
  });
  const ids = Int32Array.from({ length: 9 }, (_, t) => (t * stride) % VOCAB);
  const r = await session.step([{ inputIds: ids, labels: ids, batchSize: 1, seqLen: 9 }], 1e-2);
  assert.ok(Number.isFinite(r.loss) && r.loss > 0, `${what}: loss ${r.loss}`);
}

Deno.test("MLX 4-bit checkpoint: loaded as is, dequantizes to scale * q + bias", async () => {
  const { files, linears } = buildFixture();
  for (const quant of ["int4", "none"] as const) {
    for (const weights of ["resident", "streamed"] as const) {
      const k = loadKernelsSync({ variant: "reference" });
      const store: WeightStore = await openModel({
        source: files,
        quant,
        weights,
        cache: new MemoryCacheStore(),
        headChunkRows: 16,
        ...k,
      });
      const where = `${quant}/${weights}`;
      for (let i = 0; i < LAYERS; i++) {
        const b = await store.acquireBlock(i);
        for (const n of LINEAR_NAMES) {
          const [name, out, inDim] = dims[n];
          const q = linears.get(`model.layers.${i}.${name}`)!;
          const w = b.linears[n];
          assert.equal(w.kind, quant === "int4" ? "int4" : "f32", where);
          if (w.kind === "int4") {
            assert.equal(w.groupSize, GS);
            // Packed words are kept exactly as the file has them.
            assert.deepEqual(k.arena.u32(w.q, out * inDim / 8), q.words, `${where} ${name}`);
            assert.deepEqual(k.arena.f32(w.scales, q.scales.length), q.scales);
          }
          assert.deepEqual(
            dense(w, { kernels: k }),
            mlxDense(q, out, inDim),
            `${where} block ${i} ${n}`,
          );
        }
        assert.deepEqual([...k.arena.f32(b.inputNorm, H)], new Array(H).fill(1));
        store.releaseBlock(i);
      }
      // Embedding rows and the tied head follow the same formula.
      const table = mlxDense(linears.get("model.embed_tokens")!, VOCAB, H);
      const m = k.arena.mark();
      const ids = k.arena.allocI32(3);
      k.arena.i32(ids, 3).set([7, 0, 39]);
      const out = k.arena.allocF32(3 * H);
      await store.embed(out, ids, 3);
      for (const [t, id] of [7, 0, 39].entries()) {
        assert.deepEqual(
          k.arena.f32(out + t * H * 4, H),
          table.subarray(id * H, (id + 1) * H),
          where,
        );
      }
      k.arena.release(m);
      let rows = 0;
      for await (const c of store.headChunks(16)) {
        assert.deepEqual(
          dense(c.weight, { kernels: k }),
          table.subarray(c.v0 * H, (c.v0 + c.weight.out) * H),
        );
        rows += c.weight.out;
      }
      assert.equal(rows, VOCAB);
      await store.close();
    }
  }
});

Deno.test("MLX 4-bit Gemma 3 text checkpoint: loads as it is; every norm (BF16, zero-centred) becomes 1 + w; a step trains", async () => {
  const { files, linears } = buildFixture("gemma3");
  for (const weights of ["resident", "streamed"] as const) {
    const k = loadKernelsSync({ variant: "reference" });
    const store = await openFixture(files, weights, k);
    assert.equal(store.config.architecture, "gemma3");
    assert.deepEqual(store.config.layerTypes, ["sliding", "full"]);
    assert.deepEqual([...k.arena.f32(store.finalNorm, H)], new Array(H).fill(1.5));
    for (let i = 0; i < LAYERS; i++) {
      const b = await store.acquireBlock(i);
      const [name, out, inDim] = dims.gate;
      assert.deepEqual(
        dense(b.linears.gate, { kernels: k }),
        mlxDense(linears.get(`model.layers.${i}.${name}`)!, out, inDim),
      );
      for (
        const p of [
          b.inputNorm,
          b.postAttentionNorm,
          b.sandwichNorms!.attnOut,
          b.sandwichNorms!.mlpOut,
        ]
      ) {
        assert.deepEqual([...k.arena.f32(p, H)], new Array(H).fill(1.5), weights);
      }
      assert.deepEqual([...k.arena.f32(b.qkNorm!.q, HD)], new Array(HD).fill(1.5));
      store.releaseBlock(i);
    }
    await assertTrainsAStep(store, k, 7, weights);
    await store.close();
  }
});

Deno.test("MLX 4-bit Qwen3 checkpoint: loads as it is; q/k norms stay multipliers (no 1 + w); a step trains", async () => {
  const { files, linears } = buildFixture("qwen3");
  for (const weights of ["resident", "streamed"] as const) {
    const k = loadKernelsSync({ variant: "reference" });
    const store = await openFixture(files, weights, k);
    assert.equal(store.config.architecture, "qwen3");
    assert.equal(store.config.qkNorm, true);
    assert.equal(store.config.headDim, HD);
    for (let i = 0; i < LAYERS; i++) {
      const b = await store.acquireBlock(i);
      const [name, out, inDim] = dims.q;
      assert.deepEqual(
        dense(b.linears.q, { kernels: k }),
        mlxDense(linears.get(`model.layers.${i}.${name}`)!, out, inDim),
      );
      assert.deepEqual([...k.arena.f32(b.qkNorm!.q, HD)], new Array(HD).fill(1.5), weights);
      assert.deepEqual([...k.arena.f32(b.qkNorm!.k, HD)], new Array(HD).fill(1.5), weights);
      assert.deepEqual([...k.arena.f32(b.inputNorm, H)], new Array(H).fill(1), weights);
      store.releaseBlock(i);
    }
    await assertTrainsAStep(store, k, 5, weights);
    await store.close();
  }
});

Deno.test("MLX checkpoint errors: 8-bit config, wrong packed shape", async () => {
  const { files } = buildFixture();
  const cfg = JSON.parse(new TextDecoder().decode(files["config.json"]));
  const k = loadKernelsSync({ variant: "reference" });
  const eight = {
    ...files,
    "config.json": new TextEncoder().encode(
      JSON.stringify({ ...cfg, quantization: { group_size: 32, bits: 8 } }),
    ),
  };
  await assert.rejects(
    () => openModel({ source: eight, quant: "int4", ...k }),
    /config.json: unsupported quantization bits 8/,
  );
  // Claim a wider hidden size: the packed weights no longer fit [out, in/8].
  const wide = {
    ...files,
    "config.json": new TextEncoder().encode(JSON.stringify({ ...cfg, intermediate_size: 128 })),
  };
  await assert.rejects(
    () => openModel({ source: wide, quant: "int4", ...k }),
    /model.safetensors: tensor model.layers.0.mlp.gate_proj.weight has shape \[96, 8\] \(U32\), expected \[128, 8\] U32/,
  );
});
