"""What PyTorch autograd keeps for one decoder block: the bytes of every activation its tape saves.

Builds one decoder layer written the way Hugging Face's eager `Qwen2DecoderLayer` computes it
(RMSNorm in f32 as `w * (x * rsqrt(mean(x^2) + eps))`, rotate_half RoPE, `repeat_kv`, eager
softmax attention, SiLU-gated MLP) with PEFT-style LoRA (`y = W x + b + s * B(A x)`, dropout 0)
on the requested linears; `"arch": "qwen3"` drops the q/k/v biases and adds `Qwen3Attention`'s
`q_norm` / `k_norm` (RMSNorm of every head before RoPE); `"arch": "gemma3"` is
`Gemma3DecoderLayer`: `(1 + w)` norms, q/k head norms, the two sandwich norms after attention and
MLP, scores times `query_pre_attn_scalar^-0.5` (`"qpas"`), the tanh-GELU MLP, and with
`"window"` > 0 a sliding layer's banded mask. It runs the forward under
`torch.autograd.graph.saved_tensors_hooks`, and
sums the distinct storages the tape saved, leaving out parameters (base weights, LoRA A/B, norm
weights), the RoPE tables and the block input (the checkpoint, counted apart by every method).
Weights are random: the sizes depend only on the shapes.

usage: python3 bench/torch_tape.py '{"T":256,"D":896,"I":4864,"H":14,"KV":2,"hd":64,"r":8}'
       python3 bench/torch_tape.py '{"arch":"gemma3","window":512,"qpas":256,"T":256,...}'
Prints one JSON line: {"tape_bytes": ..., "tensors": ..., "by_shape": {...}}.
"""
import json
import sys

import torch


def main():
    s = json.loads(sys.argv[1])
    T, D, I, H, KV, hd, r = (s[k] for k in ("T", "D", "I", "H", "KV", "hd", "r"))
    targets = s.get("targets", ["q", "k", "v", "o", "gate", "up", "down"])
    arch = s.get("arch", "qwen2")
    window = s.get("window", 0)
    bias = arch == "qwen2"
    gemma = arch == "gemma3"
    attn_scale = s.get("qpas", hd) ** -0.5
    scale = 2.0  # alpha / r; a constant multiply saves nothing either way
    torch.manual_seed(0)
    excluded = set()

    def keep_out(t):
        excluded.add(t.data_ptr())
        return t

    def linear(name, n_in, n_out, bias=False):
        w = keep_out(torch.randn(n_out, n_in) * 0.02)
        b = keep_out(torch.randn(n_out) * 0.02) if bias else None
        if name not in targets:
            return lambda x: torch.nn.functional.linear(x, w, b)
        a = keep_out((torch.randn(r, n_in) * 0.02).requires_grad_())
        bb = keep_out((torch.randn(n_out, r) * 0.02).requires_grad_())
        return lambda x: (
            torch.nn.functional.linear(x, w, b)
            + torch.nn.functional.linear(torch.nn.functional.linear(x, a), bb) * scale
        )

    q_proj = linear("q", D, H * hd, bias)
    k_proj = linear("k", D, KV * hd, bias)
    v_proj = linear("v", D, KV * hd, bias)
    o_proj = linear("o", H * hd, D)
    gate_proj = linear("gate", D, I)
    up_proj = linear("up", D, I)
    down_proj = linear("down", I, D)
    w1 = keep_out(torch.ones(D))
    w2 = keep_out(torch.ones(D))
    w_attn_out = keep_out(torch.ones(D))
    w_mlp_out = keep_out(torch.ones(D))
    wq = keep_out(torch.ones(hd))
    wk = keep_out(torch.ones(hd))
    inv_freq = 1.0 / (1e6 ** (torch.arange(0, hd, 2).float() / hd))
    freqs = torch.outer(torch.arange(T).float(), inv_freq)
    emb = torch.cat((freqs, freqs), -1)
    cos = keep_out(emb.cos()[None, None].contiguous())
    sin = keep_out(emb.sin()[None, None].contiguous())
    mask = torch.full((T, T), float("-inf")).triu(1)
    if window > 0:
        mask = mask + torch.full((T, T), float("-inf")).tril(-window)
    mask = keep_out(mask)
    x = keep_out(torch.randn(1, T, D, requires_grad=True))

    def rmsnorm(h, w):
        var = h.pow(2).mean(-1, keepdim=True)
        if gemma:  # Gemma3RMSNorm: normalized * (1 + w), w stored zero-centred
            return (h * torch.rsqrt(var + 1e-6)) * (1.0 + w)
        return w * (h * torch.rsqrt(var + 1e-6))

    def head_norm(t, w):
        return rmsnorm(t, w) if arch in ("qwen3", "gemma3") else t

    def rotate_half(t):
        half = t.shape[-1] // 2
        return torch.cat((-t[..., half:], t[..., :half]), dim=-1)

    def repeat_kv(t):
        return t[:, :, None].expand(1, KV, H // KV, T, hd).reshape(1, H, T, hd)

    def block(h):
        n1 = rmsnorm(h, w1)
        q = head_norm(q_proj(n1).view(1, T, H, hd), wq).transpose(1, 2)
        k = head_norm(k_proj(n1).view(1, T, KV, hd), wk).transpose(1, 2)
        v = v_proj(n1).view(1, T, KV, hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k), repeat_kv(v)
        scores = torch.matmul(q, k.transpose(2, 3)) * attn_scale + mask
        p = torch.softmax(scores, dim=-1, dtype=torch.float32)
        a = torch.matmul(p, v).transpose(1, 2).contiguous().view(1, T, H * hd)
        if gemma:
            h1 = h + rmsnorm(o_proj(a), w_attn_out)
            n2 = rmsnorm(h1, w2)
            act = torch.nn.functional.gelu(gate_proj(n2), approximate="tanh")
            return h1 + rmsnorm(down_proj(act * up_proj(n2)), w_mlp_out)
        h1 = h + o_proj(a)
        n2 = rmsnorm(h1, w2)
        return h1 + down_proj(torch.nn.functional.silu(gate_proj(n2)) * up_proj(n2))

    saved = {}

    def pack(t):
        if t.data_ptr() not in excluded:
            st = t.storage()
            saved[st.data_ptr()] = (st.size() * t.element_size(), tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = block(x)
    y.sum().backward()  # the tape is a working one
    by_shape = {}
    for nbytes, shape in saved.values():
        key = "x".join(str(d) for d in shape)
        by_shape[key] = by_shape.get(key, 0) + nbytes
    print(json.dumps({
        "tape_bytes": sum(b for b, _ in saved.values()),
        "tensors": len(saved),
        "by_shape": by_shape,
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()
