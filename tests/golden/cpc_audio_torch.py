"""A small PyTorch model with facebookresearch/CPC_audio's architecture, module names and
state-dict layout, written for cpc's tests from the public description of that repository
(Rivière et al. 2020, "Unsupervised pretraining transfers well across languages"; cpc/model.py,
cpc/transformers.py, cpc/criterion/criterion.py). It is not CPC_audio's code: only the names and
the maths follow it, so that a checkpoint saved from it has CPC_audio's layout.

Layout of a CPC_audio checkpoint folder (cpc/train.py):
  checkpoint_<epoch>.pt   torch.save({"gEncoder": model state dict, "cpcCriterion": criterion
                          state dict, "optimizer": ..., "best": ...})
  checkpoint_args.json    the training arguments (hiddenEncoder, hiddenGar, nLevelsGRU, arMode,
                          rnnMode, normMode, nPredicts, sizeWindow, ...)
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn


class ChannelNorm(nn.Module):
    """Per-frame normalisation over channels, unbiased variance (torch.var), weight/bias [1, C, 1]."""

    def __init__(self, channels, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1))
        self.epsilon = eps

    def forward(self, x):  # x [N, C, T]
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.epsilon) * self.weight + self.bias


class CPCEncoder(nn.Module):
    """Five strided convolutions (kernels 10,8,4,4,4, strides 5,4,2,2,2, paddings 3,2,1,1,1), each
    followed by a channel norm ("layerNorm" mode) and a ReLU: one frame per 160 samples."""

    GEOMETRY = ((10, 5, 3), (8, 4, 2), (4, 2, 1), (4, 2, 1), (4, 2, 1))

    def __init__(self, hidden):
        super().__init__()
        for i, (k, s, p) in enumerate(self.GEOMETRY):
            setattr(self, "conv%d" % i, nn.Conv1d(1 if i == 0 else hidden, hidden, k, stride=s, padding=p))
            setattr(self, "batchNorm%d" % i, ChannelNorm(hidden))
        self.DOWNSAMPLING = 160

    def forward(self, x):  # x [N, 1, samples] -> [N, hidden, frames]
        for i in range(len(self.GEOMETRY)):
            x = F.relu(getattr(self, "batchNorm%d" % i)(getattr(self, "conv%d" % i)(x)))
        return x


class CPCAR(nn.Module):
    """The autoregressor: a batch-first torch LSTM (or GRU) in `baseNet`."""

    def __init__(self, dim_in, dim_out, levels, mode="LSTM"):
        super().__init__()
        rnn = nn.LSTM if mode == "LSTM" else nn.GRU
        self.baseNet = rnn(dim_in, dim_out, num_layers=levels, batch_first=True)

    def forward(self, x):
        return self.baseNet(x)[0]


class CPCModel(nn.Module):
    def __init__(self, encoder, ar):
        super().__init__()
        self.gEncoder = encoder
        self.gAR = ar

    def forward(self, audio):  # audio [N, 1, samples] -> (c [N, T, hidden_ar], z [N, T, hidden_enc])
        z = self.gEncoder(audio).permute(0, 2, 1)
        return self.gAR(z), z


class ScaledDotProductAttention(nn.Module):
    """Causal attention of every head with the learned relative-position table Krelpos [dk, S]
    (added to the scores through the "skew" of Q Krelpos) and a -inf mask above the diagonal."""

    def __init__(self, size_seq, dk):
        super().__init__()
        self.sizeSeq = size_seq
        bound = 1.0 / math.sqrt(dk)
        self.Krelpos = nn.Parameter(torch.empty(dk, size_seq).uniform_(-bound, bound))
        self.register_buffer("z", torch.zeros(1, size_seq, 1))
        mask = torch.triu(torch.full((size_seq, size_seq), float("-inf")), diagonal=1)
        self.register_buffer("mask", mask.unsqueeze(0))

    def forward(self, q, k, v):  # [N * heads, S, dk]
        scores = torch.bmm(q, k.transpose(1, 2))
        qp = torch.cat((self.z.expand(q.size(0), -1, -1), q.matmul(self.Krelpos)), 2)
        scores = scores + qp.reshape(q.size(0), self.sizeSeq + 1, self.sizeSeq)[:, 1:, :]
        return torch.bmm(torch.softmax(scores / math.sqrt(k.size(-1)) + self.mask, dim=2), v)


class MultiHeadAttention(nn.Module):
    def __init__(self, size_seq, dmodel, heads):
        super().__init__()
        self.Wo = nn.Linear(dmodel, dmodel, bias=False)
        self.Wk = nn.Linear(dmodel, dmodel, bias=False)
        self.Wq = nn.Linear(dmodel, dmodel, bias=False)
        self.Wv = nn.Linear(dmodel, dmodel, bias=False)
        self.nheads = heads
        self.dk = dmodel // heads
        self.Att = ScaledDotProductAttention(size_seq, self.dk)

    def split(self, x):
        n, s, _ = x.shape
        return x.view(n, s, self.nheads, self.dk).transpose(1, 2).reshape(n * self.nheads, s, self.dk)

    def merge(self, x):
        n, s = x.size(0) // self.nheads, x.size(1)
        return x.view(n, self.nheads, s, self.dk).transpose(1, 2).reshape(n, s, self.nheads * self.dk)

    def forward(self, x):
        return self.Wo(self.merge(self.Att(self.split(self.Wq(x)), self.split(self.Wk(x)), self.split(self.Wv(x)))))


class FFNetwork(nn.Module):
    def __init__(self, d, dff):
        super().__init__()
        self.lin1 = nn.Linear(d, dff)
        self.lin2 = nn.Linear(dff, d)

    def forward(self, x):
        return self.lin2(F.relu(self.lin1(x)))


class TransformerLayer(nn.Module):
    def __init__(self, size_seq, dmodel, dff=2048, heads=8):
        super().__init__()
        self.multihead = MultiHeadAttention(size_seq, dmodel, heads)
        self.ln_multihead = nn.LayerNorm(dmodel)
        self.ffnetwork = FFNetwork(dmodel, dff)
        self.ln_ffnetwork = nn.LayerNorm(dmodel)

    def forward(self, x):
        y = self.ln_multihead(x + self.multihead(x))
        return self.ln_ffnetwork(y + self.ffnetwork(y))


class PredictionNetwork(nn.Module):
    """K heads; "transformer": nn.Sequential(TransformerLayer) each (state names predictors.k.0.*);
    otherwise a linear head without bias (predictors.k.weight)."""

    def __init__(self, k_steps, dim_ar, dim_enc, mode, size_seq, dff=2048, heads=8):
        super().__init__()
        self.predictors = nn.ModuleList()
        for _ in range(k_steps):
            if mode == "transformer":
                self.predictors.append(nn.Sequential(TransformerLayer(size_seq, dim_enc, dff, heads)))
            else:
                self.predictors.append(nn.Linear(dim_ar, dim_enc, bias=False))

    def forward(self, c):  # c [N, W, D] -> K predictions [N, W, D_enc]
        return [p(c) for p in self.predictors]


class CPCCriterion(nn.Module):
    def __init__(self, k_steps, dim_ar, dim_enc, mode, size_window_frames, dff=2048, heads=8):
        super().__init__()
        self.nPredicts = k_steps
        self.wPrediction = PredictionNetwork(k_steps, dim_ar, dim_enc, mode, size_window_frames - k_steps, dff, heads)

    def step_losses(self, c, z, negatives):
        """Per-step InfoNCE with CPC_audio's anchors (t < T - K for every k) and its score (the mean
        over channels of prediction * candidate). negatives [K, N_items, T, Nneg] are flat frame
        indices b * T + t (cpc's layout). Returns the K mean losses."""
        n, t, d = z.shape
        w = t - self.nPredicts
        preds = self.wPrediction(c[:, :w])
        flat = z.reshape(n * t, d)
        losses = []
        for k in range(1, self.nPredicts + 1):
            p = preds[k - 1]                                       # [N, W, D]
            pos = z[:, k:k + w]                                    # [N, W, D]
            neg = flat[negatives[k - 1][:, :w].reshape(-1)].view(n, w, -1, d)
            cand = torch.cat((pos.unsqueeze(2), neg), 2)           # [N, W, 1 + Nneg, D]
            logits = (p.unsqueeze(2) * cand).mean(dim=3)
            losses.append(F.cross_entropy(logits.reshape(n * w, -1), torch.zeros(n * w, dtype=torch.long)))
        return losses


def save_checkpoint(folder, epoch, model, criterion, args, optimizer=None):
    """Writes checkpoint_<epoch>.pt and checkpoint_args.json as CPC_audio's train.py does (the
    optimizer's state dict, when given: its param_groups hold floats, tuples and booleans)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "checkpoint_%d.pt" % epoch)
    torch.save({"gEncoder": model.state_dict(), "cpcCriterion": criterion.state_dict(),
                "optimizer": optimizer.state_dict() if optimizer is not None else {}, "best": None}, path)
    with open(os.path.join(folder, "checkpoint_args.json"), "w") as f:
        json.dump(args, f, indent=2)
    return path
