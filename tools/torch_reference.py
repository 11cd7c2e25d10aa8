#!/usr/bin/env python3
"""PyTorch float64 reference for slimtune's LoRA training maths.

Reads a Hugging Face checkpoint directory (config.json + model.safetensors, parsed with numpy: no
`safetensors` package needed), a PEFT LoRA adapter directory (adapter_config.json +
adapter_model.safetensors) and a token batch (JSON: {"input_ids": [[...]], "labels": [[...]]}),
builds the Qwen2 / Qwen3 / Llama / Gemma 3 decoder in plain torch (own code, float64, HF semantics:
rotate_half RoPE with llama3 rope_scaling, Qwen3's q_norm / k_norm RMSNorm of every head before
RoPE, causal grouped-query attention, SwiGLU MLP, RMSNorm, tied or separate LM head, loss shifted
by one with -100 ignored, mean over the whole batch; Gemma 3 (model_type gemma3_text): RMSNorm
times (1 + w) from the zero-centred weights, sandwich norms around attention and MLP, tanh-GELU
MLP, the embedding times sqrt(hidden) cast to the config's torch_dtype, scores scaled by
query_pre_attn_scalar^-0.5, sliding layers masked to the last sliding_window keys and rotated with
rope_local_base_freq), computes the loss and
every LoRA gradient by autograd and writes JSON {"loss": float, "grads": {peft_name: [floats]}}.

Usage: python3 tools/torch_reference.py CHECKPOINT_DIR ADAPTER_DIR BATCH_JSON OUT_JSON
"""
import json
import math
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "BF16": None}


def read_safetensors(path):
    """Returns {name: float64 numpy array} from a safetensors file."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin : base + end]
        dtype = info["dtype"]
        if dtype == "BF16":
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = u16.view(np.float32)
        elif dtype in DTYPES:
            arr = np.frombuffer(raw, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<"))
        else:
            raise ValueError(f"unsupported dtype {dtype} for {name}")
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def inv_freq(cfg, theta=None):
    hd = cfg.get("head_dim")
    if not hd:
        # Qwen3Config's default head_dim is 128, Gemma3TextConfig's 256; the others derive it.
        defaults = {"qwen3": 128, "gemma3_text": 256}
        hd = defaults.get(cfg.get("model_type")) or cfg["hidden_size"] // cfg["num_attention_heads"]
    if theta is None:
        theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rs = cfg.get("rope_scaling") or cfg.get("rope_parameters")
    if rs and (rs.get("rope_type") or rs.get("type")) == "llama3":
        factor, low, high = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        low_wave, high_wave = old / low, old / high
        wave = 2 * math.pi / inv
        scaled = torch.where(wave > low_wave, inv / factor, inv)
        smooth = (old / wave - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wave >= high_wave) & (wave <= low_wave)
        inv = torch.where(medium, smoothed, scaled)
    return inv, hd


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gemma_layer_types(cfg):
    """'sliding_attention' / 'full_attention' per layer: layer_types, else every Nth is full."""
    if cfg.get("layer_types"):
        return cfg["layer_types"]
    pattern = cfg.get("sliding_window_pattern", 6)
    n = cfg["num_hidden_layers"]
    return ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(n)]


def main():
    ckpt_dir, adapter_dir, batch_path, out_path = sys.argv[1:5]
    with open(f"{ckpt_dir}/config.json") as f:
        cfg = json.load(f)
    W = {k: torch.tensor(v) for k, v in read_safetensors(f"{ckpt_dir}/model.safetensors").items()}
    with open(f"{adapter_dir}/adapter_config.json") as f:
        acfg = json.load(f)
    scale = acfg["lora_alpha"] / acfg["r"]
    lora = {
        k: torch.tensor(v, requires_grad=True)
        for k, v in read_safetensors(f"{adapter_dir}/adapter_model.safetensors").items()
    }
    with open(batch_path) as f:
        batch = json.load(f)
    ids = torch.tensor(batch["input_ids"], dtype=torch.long)
    labels = torch.tensor(batch["labels"], dtype=torch.long)
    B, T = ids.shape

    eps = cfg["rms_norm_eps"]
    Hq = cfg["num_attention_heads"]
    Hkv = cfg.get("num_key_value_heads", Hq)
    gemma = cfg.get("model_type") == "gemma3_text"

    def tables(theta=None):
        inv, hd = inv_freq(cfg, theta)
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
        emb = torch.cat((ang, ang), dim=-1)
        return emb.cos(), emb.sin(), hd

    cos, sin, hd = tables()
    causal = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    # Per layer: (cos, sin, mask, norm offset); Gemma's sliding layers differ in all but the last.
    layer_types = gemma_layer_types(cfg) if gemma else ["full_attention"] * cfg["num_hidden_layers"]
    if gemma:
        local_cos, local_sin, _ = tables(cfg.get("rope_local_base_freq", 10000.0))
        i_idx = torch.arange(T)[:, None]
        j_idx = torch.arange(T)[None, :]
        window = cfg.get("sliding_window", 4096)
        sliding_mask = causal.masked_fill(i_idx - j_idx >= window, float("-inf"))
        score_scale = cfg.get("query_pre_attn_scalar", 256) ** -0.5
    else:
        score_scale = 1 / math.sqrt(hd)

    def norm(x, name):
        w = W[name]
        # Gemma stores zero-centred weights and multiplies by (1 + w).
        return rmsnorm(x, 1 + w if gemma else w, eps)

    def linear(prefix, peft, x):
        y = x @ W[f"{prefix}.weight"].T
        if f"{prefix}.bias" in W:
            y = y + W[f"{prefix}.bias"]
        a = lora.get(f"base_model.model.{peft}.lora_A.weight")
        if a is not None:
            b = lora[f"base_model.model.{peft}.lora_B.weight"]
            y = y + scale * ((x @ a.T) @ b.T)
        return y

    x = W["model.embed_tokens.weight"][ids]  # [B, T, D]
    if gemma:
        # sqrt(hidden) as a float32 tensor cast to the weight dtype (bf16: 25.25 at 640).
        dt = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(cfg.get("torch_dtype"), torch.float32)
        x = x * torch.tensor(cfg["hidden_size"] ** 0.5, dtype=torch.float32).to(dt).double()
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        sliding = layer_types[i] == "sliding_attention"
        lcos, lsin = (local_cos, local_sin) if sliding else (cos, sin)
        mask = sliding_mask if sliding else causal
        n1 = norm(x, f"{p}.input_layernorm.weight")
        q = linear(f"{p}.self_attn.q_proj", f"{p}.self_attn.q_proj", n1).view(B, T, Hq, hd)
        k = linear(f"{p}.self_attn.k_proj", f"{p}.self_attn.k_proj", n1).view(B, T, Hkv, hd)
        v = linear(f"{p}.self_attn.v_proj", f"{p}.self_attn.v_proj", n1).view(B, T, Hkv, hd)
        if f"{p}.self_attn.q_norm.weight" in W:
            # Qwen3: normalize the last axis (one head's hd values) of [B, T, H, hd].
            q = norm(q, f"{p}.self_attn.q_norm.weight")
            k = norm(k, f"{p}.self_attn.k_norm.weight")
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * lcos + rotate_half(q) * lsin
        k = k * lcos + rotate_half(k) * lsin
        k = k.repeat_interleave(Hq // Hkv, dim=1)
        v = v.repeat_interleave(Hq // Hkv, dim=1)
        s = (q @ k.transpose(-1, -2)) * score_scale + mask
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, Hq * hd)
        o = linear(f"{p}.self_attn.o_proj", f"{p}.self_attn.o_proj", a)
        if gemma:
            h1 = x + norm(o, f"{p}.post_attention_layernorm.weight")
            n2 = norm(h1, f"{p}.pre_feedforward_layernorm.weight")
        else:
            h1 = x + o
            n2 = norm(h1, f"{p}.post_attention_layernorm.weight")
        g = linear(f"{p}.mlp.gate_proj", f"{p}.mlp.gate_proj", n2)
        u = linear(f"{p}.mlp.up_proj", f"{p}.mlp.up_proj", n2)
        if gemma:
            act = torch.nn.functional.gelu(g, approximate="tanh") * u
            m = linear(f"{p}.mlp.down_proj", f"{p}.mlp.down_proj", act)
            x = h1 + norm(m, f"{p}.post_feedforward_layernorm.weight")
        else:
            x = h1 + linear(f"{p}.mlp.down_proj", f"{p}.mlp.down_proj", torch.nn.functional.silu(g) * u)
    n = norm(x, "model.norm.weight")
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    logits = n @ head.T
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    loss.backward()
    out = {"loss": loss.item(), "grads": {k: v.grad.reshape(-1).tolist() for k, v in lora.items()}}
    with open(out_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
