#!/usr/bin/env python3
"""PyTorch float64 reference for slimtune's LoRA training maths.

Reads a Hugging Face checkpoint directory (config.json + model.safetensors, parsed with numpy: no
`safetensors` package needed), a PEFT LoRA adapter directory (adapter_config.json +
adapter_model.safetensors) and a token batch (JSON: {"input_ids": [[...]], "labels": [[...]]}),
builds the Qwen2 / Qwen3 / Llama decoder in plain torch (own code, float64, HF semantics:
rotate_half RoPE with llama3 rope_scaling, Qwen3's q_norm / k_norm RMSNorm of every head before
RoPE, causal grouped-query attention, SwiGLU MLP, RMSNorm, tied or separate LM head, loss shifted
by one with -100 ignored, mean over the whole batch), computes the loss and
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


def inv_freq(cfg):
    hd = cfg.get("head_dim")
    if not hd:
        # Qwen3Config's default head_dim is 128; the others derive it from hidden / heads.
        hd = 128 if cfg.get("model_type") == "qwen3" else cfg["hidden_size"] // cfg["num_attention_heads"]
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
    inv, hd = inv_freq(cfg)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    emb = torch.cat((ang, ang), dim=-1)
    cos, sin = emb.cos(), emb.sin()

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
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        n1 = rmsnorm(x, W[f"{p}.input_layernorm.weight"], eps)
        q = linear(f"{p}.self_attn.q_proj", f"{p}.self_attn.q_proj", n1).view(B, T, Hq, hd)
        k = linear(f"{p}.self_attn.k_proj", f"{p}.self_attn.k_proj", n1).view(B, T, Hkv, hd)
        v = linear(f"{p}.self_attn.v_proj", f"{p}.self_attn.v_proj", n1).view(B, T, Hkv, hd)
        if f"{p}.self_attn.q_norm.weight" in W:
            # Qwen3: normalize the last axis (one head's hd values) of [B, T, H, hd].
            q = rmsnorm(q, W[f"{p}.self_attn.q_norm.weight"], eps)
            k = rmsnorm(k, W[f"{p}.self_attn.k_norm.weight"], eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(Hq // Hkv, dim=1)
        v = v.repeat_interleave(Hq // Hkv, dim=1)
        s = q @ k.transpose(-1, -2) / math.sqrt(hd) + mask
        a = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, Hq * hd)
        h1 = x + linear(f"{p}.self_attn.o_proj", f"{p}.self_attn.o_proj", a)
        n2 = rmsnorm(h1, W[f"{p}.post_attention_layernorm.weight"], eps)
        g = linear(f"{p}.mlp.gate_proj", f"{p}.mlp.gate_proj", n2)
        u = linear(f"{p}.mlp.up_proj", f"{p}.mlp.up_proj", n2)
        x = h1 + linear(f"{p}.mlp.down_proj", f"{p}.mlp.down_proj", torch.nn.functional.silu(g) * u)
    n = rmsnorm(x, W["model.norm.weight"], eps)
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
