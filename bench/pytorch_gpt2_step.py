"""GPT-2 family training steps in PyTorch: the reference that bench/vs_pytorch.sh (CPU) and
scripts/device-check.sh (GPU) time beside zerotrain on the same machine.

The model and step of zerotrain's gpt2 family: learned positions, tied embeddings, biases,
LayerNorm, tanh GELU; random tokens; AdamW (PyTorch's fused CPU kernel) after clipping the
gradient norm to 1. Attention is scaled_dot_product_attention (PyTorch's flash kernel). The
defaults are configs/gpt2-124m.yaml's shape. On a GPU (--device cuda) the step runs under
bf16 autocast with --dtype bf16 (fp32 master weights, as zerotrain's precision.compute: bf16),
and --compile wraps the model in torch.compile. Prints the median ms/step.

  python bench/pytorch_gpt2_step.py [--steps 6] [--warmup 2] [--threads 2] [--layers 12]
      [--heads 12] [--d 768] [--vocab 50257] [--batch 4] [--seq 64]
      [--device cpu|cuda] [--dtype fp32|bf16] [--compile]
"""
import argparse
import contextlib
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.fc_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.proj(y)
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab=50257, max_len=1024, layers=12, heads=12, d=768):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        for m in self.modules():  # GPT-2's initialization: N(0, 0.02) weights, zero biases
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied LM head
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--d", type=int, default=768)
    p.add_argument("--vocab", type=int, default=50257)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1337)
    dev = torch.device(a.device)
    model = GPT(vocab=a.vocab, max_len=a.seq, layers=a.layers, heads=a.heads, d=a.d).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.1, fused=True)
    step_model = torch.compile(model) if a.compile else model
    autocast = (torch.autocast(a.device, dtype=torch.bfloat16) if a.dtype == "bf16"
                else contextlib.nullcontext())
    sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
    times = []
    for step in range(a.warmup + a.steps):
        idx = torch.randint(0, a.vocab, (a.batch, a.seq), device=dev)
        targets = torch.randint(0, a.vocab, (a.batch, a.seq), device=dev)
        sync()
        t0 = time.perf_counter()
        with autocast:
            loss = step_model(idx, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sync()
        if step >= a.warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    where = (f"gpu {torch.cuda.get_device_name()}" if a.device == "cuda" else
             f"threads {torch.get_num_threads()} capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"pytorch {torch.__version__} ms/step {ms:.1f} (median of {a.steps}; fastest {min(times):.1f}) "
          f"tokens/s {a.batch * a.seq / ms * 1e3:.0f} {where} {a.dtype}"
          f"{' compiled' if a.compile else ''} loss {loss.item():.3f}")


if __name__ == "__main__":
    main()
