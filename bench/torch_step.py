#!/usr/bin/python3
"""Native reference for bench/methods.ts: one LoRA training step of a Qwen2-shaped model in plain
PyTorch on CPU (torch 1.13, no transformers), random weights of its own.

Same step as slimtune's: batch 1, seq 256, LoRA rank 8 (alpha 16) on q,k,v,o,gate,up,down of
every block, tied embeddings as the LM head, HF causal-LM loss (labels shifted by one), SGD
lr 1e-4 on the LoRA parameters. Differences: the base weights are f32 (torch has no int4
matmul on CPU), and autograd keeps every activation plus the full [tokens x vocab] logits.

Prints one line `@@RESULT {json}` with seconds per step (first step excluded), tokens/s and the
peak RSS (ru_maxrss). Run with /usr/bin/python3 (the interpreter that has torch):

    /usr/bin/python3 bench/torch_step.py --model 0.5b --seq 256 --rank 8 --steps 2 --threads 1

`--checkpoint DIR` loads the base weights (and shapes) of a Qwen2 checkpoint in safetensors
(bf16, f16 or f32; tools/make_checkpoint.ts writes random ones) instead of making its own, and
`--tokens FILE` (JSON: a list of token-id lists, one per step, cycled) takes the steps' tokens
from a file, so a run can share both with slimtune's (bench/vs_torch.ts).
"""
import argparse
import json
import math
import os
import resource
import struct
import time

import torch
import torch.nn.functional as F

SHAPES = {
    # hidden, intermediate, layers, heads, kv heads, head_dim, vocab
    "0.5b": (896, 4864, 24, 14, 2, 64, 151936),
    "1.5b": (1536, 8960, 28, 12, 2, 128, 151936),
    "3b": (2048, 11008, 36, 16, 2, 128, 151936),
}


class LoraLinear(torch.nn.Module):
    def __init__(self, inf, out, rank, alpha, bias, gen):
        super().__init__()
        self.weight = torch.nn.Parameter(
            torch.randn(out, inf, generator=gen) * 0.02, requires_grad=False)
        self.bias = torch.nn.Parameter(
            torch.randn(out, generator=gen) * 0.02, requires_grad=False) if bias else None
        bound = 1.0 / math.sqrt(inf)  # kaiming-uniform(a = sqrt 5), as PEFT
        self.lora_A = torch.nn.Parameter((torch.rand(rank, inf, generator=gen) * 2 - 1) * bound)
        self.lora_B = torch.nn.Parameter(torch.zeros(out, rank))
        self.scale = alpha / rank

    def forward(self, x):
        return F.linear(x, self.weight, self.bias) + self.scale * F.linear(
            F.linear(x, self.lora_A), self.lora_B)


SAFETENSORS_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32}


def read_checkpoint(path):
    """config.json and every tensor of a safetensors checkpoint dir, as f32 tensors by name."""
    with open(os.path.join(path, "config.json")) as f:
        config = json.load(f)
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors = {}
    for name in files:
        with open(os.path.join(path, name), "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
            start = 8 + n
            for key, t in header.items():
                if key == "__metadata__":
                    continue
                lo, hi = t["data_offsets"]
                f.seek(start + lo)
                raw = bytearray(f.read(hi - lo))
                v = torch.frombuffer(raw, dtype=SAFETENSORS_DTYPES[t["dtype"]])
                tensors[key] = v.to(torch.float32).reshape(t["shape"])
    return config, tensors


def load_weights(blocks, embed, final_norm, tensors):
    """Copies the checkpoint's base weights into the model (LoRA A stays random, B zero)."""
    embed.copy_(tensors["model.embed_tokens.weight"])
    final_norm.copy_(tensors["model.norm.weight"])
    for i, b in enumerate(blocks):
        p = "model.layers.%d." % i
        b.n1.data.copy_(tensors[p + "input_layernorm.weight"])
        b.n2.data.copy_(tensors[p + "post_attention_layernorm.weight"])
        for name, sub in (("q", "self_attn.q_proj"), ("k", "self_attn.k_proj"),
                          ("v", "self_attn.v_proj"), ("o", "self_attn.o_proj"),
                          ("gate", "mlp.gate_proj"), ("up", "mlp.up_proj"),
                          ("down", "mlp.down_proj")):
            lin = getattr(b, name)
            lin.weight.data.copy_(tensors[p + sub + ".weight"])
            if lin.bias is not None:
                lin.bias.data.copy_(tensors[p + sub + ".bias"])


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Block(torch.nn.Module):
    def __init__(self, D, I, H, KV, hd, rank, alpha, gen):
        super().__init__()
        self.H, self.KV, self.hd = H, KV, hd
        self.q = LoraLinear(D, H * hd, rank, alpha, True, gen)
        self.k = LoraLinear(D, KV * hd, rank, alpha, True, gen)
        self.v = LoraLinear(D, KV * hd, rank, alpha, True, gen)
        self.o = LoraLinear(H * hd, D, rank, alpha, False, gen)
        self.gate = LoraLinear(D, I, rank, alpha, False, gen)
        self.up = LoraLinear(D, I, rank, alpha, False, gen)
        self.down = LoraLinear(I, D, rank, alpha, False, gen)
        self.n1 = torch.nn.Parameter(torch.ones(D), requires_grad=False)
        self.n2 = torch.nn.Parameter(torch.ones(D), requires_grad=False)

    def forward(self, x, cos, sin, mask, eps):
        T = x.shape[0]
        h = rms_norm(x, self.n1, eps)
        q = self.q(h).view(T, self.H, self.hd).transpose(0, 1)
        k = self.k(h).view(T, self.KV, self.hd).transpose(0, 1)
        v = self.v(h).view(T, self.KV, self.hd).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.H // self.KV
        k = k.repeat_interleave(rep, dim=0)
        v = v.repeat_interleave(rep, dim=0)
        att = (q @ k.transpose(1, 2)) * (self.hd ** -0.5) + mask
        a = torch.softmax(att, dim=-1) @ v
        x = x + self.o(a.transpose(0, 1).reshape(T, self.H * self.hd))
        h = rms_norm(x, self.n2, eps)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="0.5b", choices=sorted(SHAPES))
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2, help="measured steps after one warm-up")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--layers", type=int, default=0, help="override the layer count (tests)")
    ap.add_argument("--checkpoint", help="Qwen2 safetensors dir: its shapes and base weights")
    ap.add_argument("--tokens", help="JSON list of token-id lists, one per step (cycled)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    D, I, L, H, KV, hd, V = SHAPES[a.model]
    eps, theta = 1e-6, 1e6
    tensors = None
    if a.checkpoint:
        c, tensors = read_checkpoint(a.checkpoint)
        if c.get("model_type") != "qwen2" or not c.get("tie_word_embeddings"):
            raise SystemExit("%s: only Qwen2 checkpoints with tied embeddings" % a.checkpoint)
        D, I, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
        H, KV, V = c["num_attention_heads"], c["num_key_value_heads"], c["vocab_size"]
        hd = c.get("head_dim", D // H)
        eps, theta = c["rms_norm_eps"], c["rope_theta"]
    if a.layers:
        L = a.layers
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        embed = torch.randn(V, D, generator=gen) * 0.02
        blocks = torch.nn.ModuleList(Block(D, I, H, KV, hd, a.rank, 2 * a.rank, gen)
                                     for _ in range(L))
        final_norm = torch.ones(D)
        if tensors is not None:
            load_weights(blocks, embed, final_norm, tensors)
            tensors = None  # the f32 copies live in the model now
    params = [p for p in blocks.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4)
    T = a.seq
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = torch.arange(T, dtype=torch.float32)[:, None] * inv[None, :]
    ang = torch.cat((ang, ang), dim=-1)
    cos, sin = ang.cos()[None], ang.sin()[None]
    mask = torch.full((T, T), float("-inf")).triu(1)

    def step(ids):
        x = embed[ids]
        for b in blocks:
            x = b(x, cos, sin, mask, eps)
        logits = rms_norm(x, final_norm, eps) @ embed.t()
        loss = F.cross_entropy(logits[:-1], ids[1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    token_steps = None
    if a.tokens:
        with open(a.tokens) as f:
            token_steps = json.load(f)
        if any(len(t) != T for t in token_steps):
            raise SystemExit("%s: every step needs --seq %d tokens" % (a.tokens, T))
    times, losses = [], []
    for s in range(a.steps + 1):
        if token_steps is not None:
            ids = torch.tensor(token_steps[s % len(token_steps)], dtype=torch.long)
        else:
            ids = torch.randint(0, V, (T,), generator=gen)
        t0 = time.perf_counter()
        losses.append(step(ids))
        times.append(time.perf_counter() - t0)
    measured = times[1:] if len(times) > 1 else times
    sps = sum(measured) / len(measured)
    r = {
        "model": a.checkpoint or a.model, "seq": T, "rank": a.rank, "threads": a.threads, "layers": L,
        "torch": torch.__version__, "base": "f32",
        "trainable_params": sum(p.numel() for p in params),
        "first_step_seconds": times[0], "step_seconds": measured,
        "seconds_per_step": sps, "tokens_per_second": T / sps, "losses": losses,
        "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }
    r["blas"] = blas_library()
    print("@@RESULT " + json.dumps(r), flush=True)


def blas_library():
    """The BLAS shared library this process mapped (Debian's python3-torch: libblas.so.3)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line}
        return sorted(libs)
    except OSError:
        return []


if __name__ == "__main__":
    main()
