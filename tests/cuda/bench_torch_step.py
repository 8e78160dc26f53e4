#!/usr/bin/env python3
"""PyTorch eager baseline for cpc_cuda_bench_step: the same audio CPC model (five strided Conv1d with
channel LayerNorm + ReLU, 512 channels; GRU 256; K = 12 linear heads; InfoNCE over N = 128 negatives
gathered per anchor, the positive excluded; Adam 2e-4) trained on random 1.28 s windows, timed per
step on the GPU. Prints seconds per step, audio-seconds per second and peak device memory per batch.

Usage: python3 tests/cuda/bench_torch_step.py [steps] [batch ...]   (default: 10 steps, batch 8 32 64)
Runs on the GPU machine (PyTorch 2.x with CUDA); full FP32 matmuls (no TF32), as cpc's cuBLAS calls.
"""
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ChannelNormReLU(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = nn.LayerNorm(c)

    def forward(self, x):  # x [B, C, T]
        return F.relu(self.norm(x.transpose(1, 2))).transpose(1, 2)


class CPC(nn.Module):
    def __init__(self, channels=512, hidden=256, steps=12):
        super().__init__()
        layers, c_in = [], 1
        for k, s, p in [(10, 5, 3), (8, 4, 2), (4, 2, 1), (4, 2, 1), (4, 2, 1)]:
            layers += [nn.Conv1d(c_in, channels, k, s, p), ChannelNormReLU(channels)]
            c_in = channels
        self.encoder = nn.Sequential(*layers)
        self.gru = nn.GRU(channels, hidden, batch_first=True)
        self.heads = nn.ModuleList([nn.Linear(hidden, channels, bias=False) for _ in range(steps)])

    def forward(self, audio, negatives):
        z = self.encoder(audio.unsqueeze(1)).transpose(1, 2)  # [B, T, C]
        c, _ = self.gru(z)
        B, T, D = z.shape
        flat = z.reshape(B * T, D)
        losses = []
        for k, head in enumerate(self.heads, start=1):
            p = head(c[:, : T - k])  # [B, T-k, D]
            pos = z[:, k:]  # [B, T-k, D]
            neg = flat[negatives[k - 1][:, : T - k]]  # [B, T-k, N, D]
            cand = torch.cat([pos.unsqueeze(2), neg], dim=2)  # [B, T-k, N+1, D]
            logits = torch.einsum("btd,btnd->btn", p, cand)
            target = torch.zeros(logits.shape[:2], dtype=torch.long, device=logits.device)
            losses.append(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1)))
        return torch.stack(losses).mean()


def negatives_for(B, T, K, N, device):
    """[K, B, T, N] flat frame indices, uniform over the batch's frames except the positive."""
    out = []
    frames = torch.arange(B * T, device=device).view(B, T)
    for k in range(1, K + 1):
        pos = torch.roll(frames, -k, dims=1).unsqueeze(-1)  # positive of (b, t) is (b, t + k)
        idx = torch.randint(0, B * T - 1, (B, T, N), device=device)
        out.append(idx + (idx >= pos).long())
    return out


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    batches = [int(b) for b in sys.argv[2:]] or [8, 32, 64]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    print(f"{'batch':<6} {'s/step':<12} {'audio-s/s':<14} {'peak MiB':<16} {'loss':<10}")
    for B in batches:
        torch.manual_seed(5)
        model = CPC().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=2e-4)
        audio = torch.rand(B, 20480, device=device) - 0.5
        T = 128

        def step():
            negs = negatives_for(B, T, 12, 128, device)
            opt.zero_grad(set_to_none=True)
            loss = model(audio, negs)
            loss.backward()
            opt.step()
            return loss

        for _ in range(2):
            step()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        for _ in range(steps):
            loss = step()
        torch.cuda.synchronize()
        secs = (time.perf_counter() - t) / steps
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"{B:<6} {secs:<12.4f} {B * 1.28 / secs:<14.1f} {peak:<16.0f} {loss.item():<10.4f}")
        del model, opt, audio
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
