#!/usr/bin/python3
"""PyTorch reference of cpc's paper audio model, timed like bench/bench_train_step.cpp.

The model (same shapes, loss definition and negative count as cpc::audio_model<audio_paper>):
  encoder  5 x [strided convolution -> channel norm (LayerNorm over the 512 channels of each
           frame) -> ReLU], kernels 10,8,4,4,4, strides 5,4,2,2,2, paddings 3,2,1,1,1
  context  GRU(512 -> 256, one layer, batch first)
  loss     K = 12 linear heads 256 -> 512 without bias; for every anchor (b, t, k), t + k < T, the
           candidates are [z_{b,t+k}, N = 128 negatives drawn uniformly from the batch's B*T frames,
           fresh for every step k]; score = (W_k c_t) . z_j; term = -log_softmax(scores)[0]; each
           step's loss is the mean of its terms, the loss the mean over the K steps
  optimiser Adam, lr 2e-4
Windows of 20480 samples (128 frames).

How it is written for speed (PyTorch 1.13 on CPU):
  * Activations stay channel-last, [B, T, C], from the first convolution to the loss. Each
    convolution is an im2col view of its zero-padded input (Tensor.unfold: no copy until the
    matrix product needs one) times the weight as a [K*C_in, C_out] matrix (torch.addmm with the
    bias): one BLAS SGEMM per layer, forward and backward. Channel norm is nn.LayerNorm over the
    last dimension, so no transposes anywhere. (Measured here: Conv1d on [B, C, T] through oneDNN
    with a transposed LayerNorm was 1.6x slower for the encoder's forward + backward; Conv2d in
    channels_last 2.1x.)
  * The K heads are one [256 -> 12*512] product. "gathered" scores every anchor of every step
    against every frame of the batch in ONE matrix product, [sum_k B*(T-k), 512] x [512, B*T]
    (11.7 GFLOP forward at batch 8), then takes each anchor's N+1 logits from it with one gather;
    negatives stay fresh per step. (Gathering the candidates' latents first costs 12 x 243 MB of
    copies per step at batch 8 because the negatives differ per step.)
  * "public" writes the loss as public CPC code does (facebookresearch/CPC_audio): per step a
    [B, N+1, T-k, D] candidate tensor multiplied by the broadcast prediction and summed
    (autograd keeps ~0.5 GB per batch item).
  * Environment (set by re-executing itself once, unless --no-reexec): jemalloc preloaded with
    page decay off (dirty_decay_ms:-1, muzzy_decay_ms:-1), so that freed tensors' pages stay in the
    process instead of being faulted in again every step (~15 us per 4 KiB page on these VMs), and
    transparent huge pages requested (thp:always; 3% faster here, as cpc's benchmarks also ask
    glibc for them);
    OpenBLAS (Debian libopenblas0-pthread) in front of the system BLAS; OPENBLAS_CORETYPE and
    OPENBLAS_L2_SIZE removed so that OpenBLAS uses its own CPU detection (AVX-512 kernels)
    unless --keep-coretype; OMP_NUM_THREADS and OPENBLAS_NUM_THREADS = --threads.

Modes: train (forward, loss, backward, Adam step), encode (encoder + GRU under inference_mode).
Prints one JSON line: seconds per step (median over --steps after --warmup steps), CPU seconds per
step, peak RSS (getrusage ru_maxrss, bytes), the analytic GFLOP of a step and GFLOP/s (the same
count as bench_train_step.cpp), and the environment it ran with.

Usage: /usr/bin/python3 bench/pytorch_reference.py --variant gathered --mode train --batch 8 --threads 2
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

SAMPLES = 20480
CHANNELS = 512
HIDDEN = 256
STEPS = 12
NEGATIVES = 128
KERNELS = (10, 8, 4, 4, 4)
STRIDES = (5, 4, 2, 2, 2)
PADDINGS = (3, 2, 1, 1, 1)
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1,thp:always"
OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["public", "gathered"], default="gathered")
    ap.add_argument("--mode", choices=["train", "encode"], default="train")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (they pay the page faults)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-coretype", action="store_true",
                    help="keep OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE from the environment")
    ap.add_argument("--no-reexec", action="store_true", help="run in the environment as given")
    return ap.parse_args()


def wanted_environment(a):
    """The environment variables this script sets for itself (None: removed)."""
    env = {"OMP_NUM_THREADS": str(a.threads), "OPENBLAS_NUM_THREADS": str(a.threads)}
    if os.path.exists(JEMALLOC):
        env["LD_PRELOAD"] = JEMALLOC
        env["MALLOC_CONF"] = JEMALLOC_CONF
    if os.path.isdir(OPENBLAS_DIR):
        paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p and p != OPENBLAS_DIR]
        env["LD_LIBRARY_PATH"] = ":".join([OPENBLAS_DIR] + paths)
    if not a.keep_coretype:
        env["OPENBLAS_CORETYPE"] = None
        env["OPENBLAS_L2_SIZE"] = None
    return env


def reexec_if_needed(a):
    want = wanted_environment(a)
    if a.no_reexec or all(os.environ.get(k) == v for k, v in want.items()):
        return
    for k, v in want.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    os.execv(sys.executable, [sys.executable] + sys.argv)


ARGS = parse_args()
reexec_if_needed(ARGS)

import torch  # noqa: E402  (after the environment is final)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def frame_counts():
    t, out = SAMPLES, []
    for k, s, p in zip(KERNELS, STRIDES, PADDINGS):
        t = (t + 2 * p - k) // s + 1
        out.append(t)
    return out


def conv_gflop_per_item():
    ts = frame_counts()
    return sum(2.0 * CHANNELS * t * (1 if i == 0 else CHANNELS) * KERNELS[i] for i, t in enumerate(ts)) * 1e-9


def train_gflop_per_item():
    """Analytic FLOPs (2 per multiply-add), identical to bench/bench_train_step.cpp."""
    ts = frame_counts()
    conv = conv_gflop_per_item() * 1e9
    first = 2.0 * CHANNELS * ts[0] * KERNELS[0]
    frames = ts[-1]
    gru = 2.0 * frames * 3 * HIDDEN * (CHANNELS + HIDDEN)
    heads = 2.0 * STEPS * frames * HIDDEN * CHANNELS
    scores = sum(2.0 * (frames - k) * (NEGATIVES + 1) * CHANNELS for k in range(1, STEPS + 1))
    return (conv + (2 * conv - first) + 3 * gru + 3 * heads + 3 * scores) * 1e-9


def encode_gflop_per_item():
    frames = frame_counts()[-1]
    return conv_gflop_per_item() + 2.0 * frames * 3 * HIDDEN * (CHANNELS + HIDDEN) * 1e-9


class StridedConv(nn.Module):
    """Conv1d on channel-last input [B, T, C_in] -> [B, T_out, C_out] as im2col view x matrix."""

    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding
        ref = nn.Conv1d(c_in, c_out, kernel, stride, padding)  # PyTorch's default initialisation
        # Rows ordered (tap, input channel), matching the im2col view below.
        self.weight = nn.Parameter(ref.weight.detach().permute(2, 1, 0).reshape(kernel * c_in, c_out).contiguous())
        self.bias = nn.Parameter(ref.bias.detach().clone())

    def forward(self, x):
        b = x.shape[0]
        xp = F.pad(x, (0, 0, self.padding, self.padding))  # zero frames at both ends
        cols = xp.unfold(1, self.kernel, self.stride)  # [B, T_out, C_in, K], a view of xp
        t_out = cols.shape[1]
        cols = cols.transpose(2, 3).reshape(b * t_out, -1)  # [B*T_out, K*C_in]
        return torch.addmm(self.bias, cols, self.weight).view(b, t_out, -1)


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.convs, self.norms, c_in = nn.ModuleList(), nn.ModuleList(), 1
        for k, s, p in zip(KERNELS, STRIDES, PADDINGS):
            self.convs.append(StridedConv(c_in, CHANNELS, k, s, p))
            self.norms.append(nn.LayerNorm(CHANNELS))
            c_in = CHANNELS

    def forward(self, audio):  # [B, S] -> [B, T, C]
        x = audio.unsqueeze(2)
        for conv, norm in zip(self.convs, self.norms):
            x = F.relu(norm(conv(x)))
        return x


class Model(nn.Module):
    def __init__(self, variant):
        super().__init__()
        self.variant = variant
        self.encoder = Encoder()
        self.gru = nn.GRU(CHANNELS, HIDDEN, batch_first=True)
        self.heads = nn.Linear(HIDDEN, STEPS * CHANNELS, bias=False)  # the K heads side by side

    def encode(self, audio):
        z = self.encoder(audio)
        c, _ = self.gru(z)
        return z, c

    def loss(self, z, c):
        b, t, d = z.shape
        preds = self.heads(c.reshape(b * t, HIDDEN)).view(b, t, STEPS, d)
        flat = z.reshape(b * t, d)
        if self.variant == "public":
            losses = []
            for k in range(1, STEPS + 1):
                w = t - k
                neg = flat[torch.randint(0, b * t, (b * NEGATIVES * w,))].view(b, NEGATIVES, w, d)
                pos = z[:, k:].reshape(b, 1, w, d)
                cand = torch.cat((pos, neg), dim=1)  # [B, N+1, T-k, D]
                scores = (preds[:, :w, k - 1].reshape(b, 1, w, d) * cand).sum(dim=3)  # [B, N+1, T-k]
                losses.append(-F.log_softmax(scores, dim=1)[:, 0].mean())
            return torch.stack(losses).mean()
        # gathered: every anchor of every step against every frame in one product, then the
        # N+1 logits of each anchor taken from it.
        anchors, cands, weights = [], [], []
        items = torch.arange(b).view(b, 1) * t
        for k in range(1, STEPS + 1):
            w = t - k
            anchors.append(preds[:, :w, k - 1].reshape(b * w, d))
            pos = (items + torch.arange(k, t).view(1, w)).reshape(b * w, 1)
            cands.append(torch.cat((pos, torch.randint(0, b * t, (b * w, NEGATIVES))), dim=1))
            weights.append(torch.full((b * w,), 1.0 / (STEPS * b * w)))
        scores = torch.cat(anchors) @ flat.t()  # [sum_k B*(T-k), B*T]
        logits = scores.gather(1, torch.cat(cands))  # [sum_k B*(T-k), N+1], positive first
        return -(F.log_softmax(logits, dim=1)[:, 0] * torch.cat(weights)).sum()


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Model(a.variant)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    audio = torch.rand(a.batch, SAMPLES) - 0.5

    def train_step():
        opt.zero_grad(set_to_none=True)
        z, c = model.encode(audio)
        loss = model.loss(z, c)
        loss.backward()
        opt.step()
        return float(loss)

    def encode():
        with torch.inference_mode():
            _, c = model.encode(audio)
        return float(c[0, 0, 0])

    step = train_step if a.mode == "train" else encode
    for _ in range(a.warmup):
        step()
    walls, cpus = [], []
    for _ in range(a.steps):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    gflop = a.batch * (train_gflop_per_item() if a.mode == "train" else encode_gflop_per_item())
    seconds = statistics.median(walls)
    print(json.dumps({
        "side": "pytorch-" + a.variant,
        "mode": a.mode,
        "batch": a.batch,
        "threads": a.threads,
        "seconds": seconds,
        "seconds_min": min(walls),
        "cpu_seconds": statistics.median(cpus),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "gflop": gflop,
        "gflops": gflop / seconds,
        "torch": torch.__version__,
        "env": {k: os.environ.get(k) for k in ("LD_PRELOAD", "MALLOC_CONF", "OPENBLAS_CORETYPE", "OMP_NUM_THREADS")},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
