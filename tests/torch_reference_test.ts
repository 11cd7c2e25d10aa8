/**
 * slimtune vs PyTorch autograd (float64, tools/torch_reference.py) on tiny random checkpoints
 * written as real HF files (config.json + model.safetensors, F32) with a non-zero PEFT adapter:
 * Qwen2 (q/k/v biases), Llama with llama3 rope scaling, Qwen3 (q_norm / k_norm, head_dim 24
 * != hidden / heads, GQA 4/2; with and without attention_bias) and Gemma 3 (zero-centred (1 + w)
 * norms, sandwich norms, tanh-GELU, √hidden embedding scale, query_pre_attn_scalar 20, GQA 4:1,
 * sliding (window 3) and full layers with two RoPE thetas), batch 2, ragged T = 7, -100 labels.
 *
 * Tolerances: loss relative 1e-5; every LoRA gradient tensor max |ours - torch| <= 1e-5 x
 * max |torch| (slimtune computes in f32; observed differences are ~1e-6 of the scale).
 *
 * Skipped, with a printed reason, only when neither `python3` nor `/usr/bin/python3` imports torch.
 */
import assert from "node:assert/strict";
import { loadKernelsSync } from "../src/kernels/wasm.ts";
import type { KernelVariant } from "../src/kernels/wasm.ts";
import { serializeSafetensors, type TensorData } from "../src/io/safetensors_writer.ts";
import type { ModelConfig } from "../src/model/config.ts";
import { createRandomWeightStore, tinyConfig } from "../src/model/random_weights.ts";
import { LoraTrainingSession } from "../src/methods/session.ts";
import { Rng } from "../src/runtime/rng.ts";
import { LINEAR_NAMES, type LinearName } from "../src/model/weights.ts";
import { peftModule } from "../src/model/lora.ts";
import { readRefModel } from "./model_reference_f64.ts";
import { runWithDeadline } from "../scripts/harness.ts";

const VARIANT = (Deno.env.get("SLIMTUNE_KERNELS") ?? "reference") as KernelVariant;

/** `import torch` alone takes seconds; the reference's forward and backward on a tiny model too. */
const PYTHON_DEADLINE_MS = 3 * 60_000;

/** The first Python that imports torch: `python3` on PATH, else Debian's (python3-torch). */
async function pythonWithTorch(): Promise<string | null> {
  for (const python of ["python3", "/usr/bin/python3"]) {
    let r;
    try {
      r = await runWithDeadline(python, ["-c", "import torch"], {
        timeoutMs: PYTHON_DEADLINE_MS,
        what: `${python} -c "import torch"`,
      });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // not installed: try the next
      throw e;
    }
    if (r.success) return python;
  }
  return null;
}

const PYTHON = await pythonWithTorch();
const HAVE_TORCH = PYTHON !== null;
if (!HAVE_TORCH) {
  console.log(
    'torch_reference_test: SKIPPED, `python3 -c "import torch"` failed (install python3-torch)',
  );
}

function hfConfig(c: ModelConfig): Record<string, unknown> {
  if (c.architecture === "gemma3") {
    return {
      architectures: ["Gemma3ForCausalLM"],
      model_type: "gemma3_text",
      hidden_size: c.hiddenSize,
      intermediate_size: c.intermediateSize,
      num_hidden_layers: c.numLayers,
      num_attention_heads: c.numHeads,
      num_key_value_heads: c.numKvHeads,
      head_dim: c.headDim,
      vocab_size: c.vocabSize,
      rope_theta: c.ropeTheta,
      rope_local_base_freq: c.ropeLocalTheta,
      rope_scaling: null,
      rms_norm_eps: c.rmsNormEps,
      tie_word_embeddings: c.tieWordEmbeddings,
      max_position_embeddings: c.maxPositionEmbeddings,
      hidden_activation: "gelu_pytorch_tanh",
      query_pre_attn_scalar: Math.round(c.attentionScale! ** -2),
      sliding_window: c.slidingWindow,
      layer_types: c.layerTypes!.map((t) => `${t}_attention`),
      final_logit_softcapping: null,
      attn_logit_softcapping: null,
      torch_dtype: "float32",
    };
  }
  return {
    architectures: [
      { qwen2: "Qwen2ForCausalLM", qwen3: "Qwen3ForCausalLM", llama: "LlamaForCausalLM" }[
        c.architecture
      ],
    ],
    model_type: c.architecture,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    vocab_size: c.vocabSize,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling
      ? {
        rope_type: "llama3",
        factor: c.ropeScaling.factor,
        low_freq_factor: c.ropeScaling.lowFreqFactor,
        high_freq_factor: c.ropeScaling.highFreqFactor,
        original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings,
      }
      : null,
    rms_norm_eps: c.rmsNormEps,
    tie_word_embeddings: c.tieWordEmbeddings,
    max_position_embeddings: c.maxPositionEmbeddings,
    hidden_act: "silu",
    attention_bias: c.qkvBias,
    torch_dtype: "float32",
  };
}

function f32Tensor(name: string, shape: number[], values: ArrayLike<number>): TensorData {
  const f = Float32Array.from(values);
  return { name, dtype: "F32", shape, data: new Uint8Array(f.buffer) };
}

// Qwen3 twice: as released (no biases) and with `attention_bias: true` (biases and head norms).
for (
  const [arch, bias] of [
    ["qwen2", true],
    ["llama", false],
    ["qwen3", false],
    ["qwen3", true],
    ["gemma3", false],
  ] as const
) {
  Deno.test({
    name: `torch float64 autograd reference: loss and every LoRA gradient, ${arch}` +
      (arch === "qwen3" && bias ? " with attention_bias" : ""),
    ignore: !HAVE_TORCH,
    async fn() {
      // Gemma: three layers (sliding, full, sliding).
      const config: ModelConfig = { ...tinyConfig(arch, arch === "gemma3" ? 3 : 2), qkvBias: bias };
      const { kernels, arena } = loadKernelsSync({ variant: VARIANT });
      const store = createRandomWeightStore({ config, kernels, arena, seed: 21 });
      const session = new LoraTrainingSession({
        store,
        kernels,
        arena,
        method: "mesp",
        seed: 5,
        maxGradNorm: 0,
        lora: { rank: 4, alpha: 8, targets: [...LINEAR_NAMES] },
        optimizer: { kind: "sgd", lr: 1e-3, weightDecay: 0 },
        headChunkRows: 64,
      });
      const lora = session.loraTensors();
      const rng = new Rng(12);
      for (const [name, t] of lora) if (name.includes("lora_B")) rng.fillNormal(t.data, 0.2);
      session.setLoraTensors(lora);

      const B = 2;
      const T = 7;
      const ids = Int32Array.from({ length: B * T }, () => rng.nextU32() % config.vocabSize);
      const labels = ids.slice();
      labels[2] = -100;
      labels[T + 4] = -100;
      const batch = { inputIds: ids, labels, batchSize: B, seqLen: T };
      const { lossSum, tokens } = await session.accumulateGradients([batch]);
      const loss = lossSum / tokens;

      const dir = await Deno.makeTempDir({ prefix: "slimtune_torch_" });
      try {
        // The checkpoint: the store's exact f32 values as HF tensors. The store holds each norm's
        // multiplier; Gemma checkpoints hold it zero-centred (m - 1 is exact in f32 for m near 1).
        const ref = await readRefModel(store, kernels, arena);
        const offset = config.normWeightOffset ?? 0;
        const norm = (m: Float64Array) => m.map((v) => Math.fround(v - offset));
        const D = config.hiddenSize;
        const tensors: TensorData[] = [
          f32Tensor("model.embed_tokens.weight", [config.vocabSize, D], ref.embed),
        ];
        ref.blocks.forEach((b, i) => {
          const p = `model.layers.${i}`;
          for (const name of LINEAR_NAMES) {
            const w = b.w[name as LinearName];
            const out = w.length /
              (name === "o"
                ? config.numHeads * config.headDim
                : name === "down"
                ? config.intermediateSize
                : D);
            const inF = w.length / out;
            tensors.push(f32Tensor(`${p}.${peftModule(name)}.weight`, [out, inF], w));
            const bias = b.bias[name as LinearName];
            if (bias) tensors.push(f32Tensor(`${p}.${peftModule(name)}.bias`, [out], bias));
          }
          tensors.push(f32Tensor(`${p}.input_layernorm.weight`, [D], norm(b.n1)));
          if (b.attnOutNorm && b.mlpOutNorm) {
            tensors.push(
              f32Tensor(`${p}.post_attention_layernorm.weight`, [D], norm(b.attnOutNorm)),
            );
            tensors.push(f32Tensor(`${p}.pre_feedforward_layernorm.weight`, [D], norm(b.n2)));
            tensors.push(
              f32Tensor(`${p}.post_feedforward_layernorm.weight`, [D], norm(b.mlpOutNorm)),
            );
          } else {
            tensors.push(f32Tensor(`${p}.post_attention_layernorm.weight`, [D], norm(b.n2)));
          }
          if (b.qNorm && b.kNorm) {
            const hd = config.headDim;
            tensors.push(f32Tensor(`${p}.self_attn.q_norm.weight`, [hd], norm(b.qNorm)));
            tensors.push(f32Tensor(`${p}.self_attn.k_norm.weight`, [hd], norm(b.kNorm)));
          }
        });
        tensors.push(f32Tensor("model.norm.weight", [D], norm(ref.finalNorm)));
        await Deno.writeFile(`${dir}/model.safetensors`, serializeSafetensors(tensors));
        await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(hfConfig(config)));
        const adapter = [...lora].map(([name, t]) => f32Tensor(name, t.shape, t.data));
        await Deno.writeFile(`${dir}/adapter_model.safetensors`, serializeSafetensors(adapter));
        await Deno.writeTextFile(
          `${dir}/adapter_config.json`,
          JSON.stringify({
            peft_type: "LORA",
            r: 4,
            lora_alpha: 8,
            target_modules: LINEAR_NAMES.map((n) => `${n}_proj`),
            lora_dropout: 0,
            bias: "none",
            task_type: "CAUSAL_LM",
            use_rslora: false,
          }),
        );
        const rows = (a: Int32Array) => [Array.from(a.subarray(0, T)), Array.from(a.subarray(T))];
        await Deno.writeTextFile(
          `${dir}/batch.json`,
          JSON.stringify({ input_ids: rows(ids), labels: rows(labels) }),
        );
        const script = new URL("../tools/torch_reference.py", import.meta.url).pathname;
        const r = await runWithDeadline(
          PYTHON!,
          [script, dir, dir, `${dir}/batch.json`, `${dir}/out.json`],
          { timeoutMs: PYTHON_DEADLINE_MS, what: "tools/torch_reference.py" },
        );
        assert.ok(r.success, `torch_reference.py failed: ${r.stderr}`);
        const out = JSON.parse(await Deno.readTextFile(`${dir}/out.json`)) as {
          loss: number;
          grads: Record<string, number[]>;
        };
        assert.ok(
          Math.abs(loss - out.loss) <= 1e-5 * out.loss,
          `loss ${loss} vs torch ${out.loss}`,
        );
        const ours = new Map(session.lora.params.map((p) => [p.name, arena.f32(p.grad, p.n)]));
        assert.equal(Object.keys(out.grads).length, ours.size);
        for (const [name, g] of Object.entries(out.grads)) {
          const mine = ours.get(name);
          assert.ok(mine, `torch gradient ${name} has no slimtune tensor`);
          let diff = 0;
          let scale = 0;
          for (let i = 0; i < g.length; i++) {
            diff = Math.max(diff, Math.abs(mine[i] - g[i]));
            scale = Math.max(scale, Math.abs(g[i]));
          }
          assert.ok(scale > 0, `${name}: torch gradient is zero`);
          assert.ok(diff <= 1e-5 * scale, `${name}: max diff ${diff} vs scale ${scale}`);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
