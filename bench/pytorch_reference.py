#!/usr/bin/python3
"""PyTorch reference of cpc's paper audio model, timed like bench/bench_train_step.cpp.

The model (same shapes, loss definition and negative count as cpc::audio_model<audio_paper>):
  encoder  5 x [Conv1d -> channel norm (LayerNorm over the 512 channels of each frame) -> ReLU],
           kernels 10,8,4,4,4, strides 5,4,2,2,2, paddings 3,2,1,1,1, 512 channels
  context  GRU(512 -> 256, one layer, batch_first)
  loss     K = 12 Linear(256 -> 512, bias=False) heads; for every anchor (b, t, k), t + k < T,
           candidates [z_{b,t+k}, N = 128 negatives drawn uniformly from the batch's B*T frames,
           fresh per step k]; score = (W_k c_t) . z_j; term = -log_softmax(scores)[0]; each
           step's loss is the mean of its terms, the loss the mean over the K steps
  optimiser Adam, lr 2e-4
Windows of 20480 samples (128 frames).

Two ways of writing the loss:
  public    as public CPC code writes it (facebookresearch/CPC_audio's CPCUnsupersivedCriterion):
            per step, cat the positives with the gathered negatives into a
            [B, N+1, T-k, D] tensor, multiply by the broadcast prediction and sum over D; autograd
            keeps every step's [B, N+1, T-k, D] tensors (~0.9 GB per batch item).
  gathered  the K heads as one [256 -> 12*512] GEMM; one batched GEMM [K, BT, D] x [D, BT] scores
            every anchor against every frame of the batch; each anchor's N+1 candidate logits
            are then gathered from it. No [.., N+1, .., D] tensor is built, at the price of
            K (BT)^2 D multiply-adds (12.9 GFLOP forward at batch 8, quadratic in the batch).
            Gathering the candidates' latents first and scoring them with a batched
            matrix-vector product ([BT, N+1, D] x [BT, D, 1]) was measured several times slower
            here (PyTorch 1.13's bmm on n = 1 and the 2.9 GB gather at batch 8).

Modes: train (forward, loss, backward, Adam step), encode (encoder + GRU under no_grad).
Prints one JSON line: seconds per step (median over --steps after one warm-up), CPU seconds per
step, peak RSS (getrusage ru_maxrss, bytes), the analytic GFLOP of a step and GFLOP/s (the same
count as bench_train_step.cpp). Run it under jemalloc as bench/compare.py does
(LD_PRELOAD=libjemalloc.so.2): with glibc's malloc PyTorch's step is many times slower here.

Usage: /usr/bin/python3 bench/pytorch_reference.py --variant gathered --mode train --batch 8 --threads 2
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SAMPLES = 20480
CHANNELS = 512
HIDDEN = 256
STEPS = 12
NEGATIVES = 128
KERNELS = (10, 8, 4, 4, 4)
STRIDES = (5, 4, 2, 2, 2)
PADDINGS = (3, 2, 1, 1, 1)


def frame_counts():
    t, out = SAMPLES, []
    for k, s, p in zip(KERNELS, STRIDES, PADDINGS):
        t = (t + 2 * p - k) // s + 1
        out.append(t)
    return out


def train_gflop_per_item():
    """Analytic FLOPs (2 per multiply-add), identical to bench/bench_train_step.cpp."""
    ts = frame_counts()
    conv = sum(2.0 * CHANNELS * t * (1 if i == 0 else CHANNELS) * KERNELS[i] for i, t in enumerate(ts))
    first = 2.0 * CHANNELS * ts[0] * KERNELS[0]
    frames = ts[-1]
    gru = 2.0 * frames * 3 * HIDDEN * (CHANNELS + HIDDEN)
    heads = 2.0 * STEPS * frames * HIDDEN * CHANNELS
    scores = sum(2.0 * (frames - k) * (NEGATIVES + 1) * CHANNELS for k in range(1, STEPS + 1))
    return (conv + (2 * conv - first) + 3 * gru + 3 * heads + 3 * scores) * 1e-9


def encode_gflop_per_item():
    ts = frame_counts()
    conv = sum(2.0 * CHANNELS * t * (1 if i == 0 else CHANNELS) * KERNELS[i] for i, t in enumerate(ts))
    return (conv + 2.0 * ts[-1] * 3 * HIDDEN * (CHANNELS + HIDDEN)) * 1e-9


class ChannelNorm(nn.Module):
    """LayerNorm over the channels of each frame, on [B, C, T] tensors."""

    def __init__(self, channels):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        layers, c_in = [], 1
        for k, s, p in zip(KERNELS, STRIDES, PADDINGS):
            layers += [nn.Conv1d(c_in, CHANNELS, k, stride=s, padding=p), ChannelNorm(CHANNELS), nn.ReLU()]
            c_in = CHANNELS
        self.net = nn.Sequential(*layers)

    def forward(self, audio):  # [B, S] -> [B, T, C]
        return self.net(audio.unsqueeze(1)).transpose(1, 2)


class Model(nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.variant = variant
        self.encoder = Encoder()
        self.gru = nn.GRU(CHANNELS, HIDDEN, batch_first=True)
        self.heads = nn.ModuleList([nn.Linear(HIDDEN, CHANNELS, bias=False) for _ in range(STEPS)])

    def encode(self, audio):
        z = self.encoder(audio)
        c, _ = self.gru(z)
        return z, c

    def loss(self, z, c):
        B, T, D = z.shape
        flat = z.reshape(B * T, D)
        losses = []
        if self.variant == "public":
            for k in range(1, STEPS + 1):
                W = T - k
                idx = torch.randint(0, B * T, (B * NEGATIVES * W,))
                neg = flat[idx].view(B, NEGATIVES, W, D)
                pos = z[:, k:].reshape(B, 1, W, D)
                cand = torch.cat((pos, neg), dim=1)  # [B, N+1, W, D]
                pred = self.heads[k - 1](c[:, :W]).view(B, 1, W, D)
                scores = (pred * cand).sum(dim=3)  # [B, N+1, W]
                losses.append(-F.log_softmax(scores, dim=1)[:, 0].mean())
        else:
            weight = torch.cat([h.weight for h in self.heads], dim=0)  # [K*D, H]
            preds = (c.reshape(B * T, -1) @ weight.t()).view(B * T, STEPS, D).transpose(0, 1)  # [K, BT, D]
            scores = torch.matmul(preds, flat.t())  # [K, BT, BT]: every anchor against every frame
            t_idx = torch.arange(T)
            for k in range(1, STEPS + 1):
                W = T - k
                anchors = (torch.arange(B).view(B, 1) * T + t_idx[:W].view(1, W)).reshape(-1)  # [B*W]
                neg = torch.randint(0, B * T, (B * W, NEGATIVES))
                cand = torch.cat(((anchors + k).view(-1, 1), neg), dim=1)  # [B*W, N+1], positive first
                logits = scores[k - 1].index_select(0, anchors).gather(1, cand)
                losses.append(-F.log_softmax(logits, dim=1)[:, 0].mean())
        return torch.stack(losses).mean()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["public", "gathered"], default="gathered")
    ap.add_argument("--mode", choices=["train", "encode"], default="train")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Model(a.variant)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    audio = torch.rand(a.batch, SAMPLES) - 0.5

    def train_step():
        opt.zero_grad(set_to_none=False)
        z, c = model.encode(audio)
        loss = model.loss(z, c)
        loss.backward()
        opt.step()
        return float(loss)

    def encode():
        with torch.no_grad():
            _, c = model.encode(audio)
        return float(c[0, 0, 0])

    step = train_step if a.mode == "train" else encode
    step()  # warm-up
    walls, cpus = [], []
    for _ in range(a.steps):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    gflop = a.batch * (train_gflop_per_item() if a.mode == "train" else encode_gflop_per_item())
    seconds = statistics.median(walls)
    out = {
        "side": "pytorch-" + a.variant,
        "mode": a.mode,
        "batch": a.batch,
        "threads": a.threads,
        "seconds": seconds,
        "cpu_seconds": statistics.median(cpus),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "gflop": gflop,
        "gflops": gflop / seconds,
        "torch": torch.__version__,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
