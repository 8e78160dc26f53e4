"""Golden values for cpc::transformer_layer: a one-layer causal transformer written here after the
public description of facebookresearch/CPC_audio's prediction network (cpc/transformers.py:
TransformerLayer with abspos off, i.e. multi-head attention with a learned relative-position
table "Krelpos" shared by the heads, added to the scores through the "skew" of Q Krelpos, a causal
-inf mask, post-norm residual blocks, a ReLU feed-forward network; no dropout in eval mode).
Input length = the table's length (CPC_audio's layer accepts exactly sizeSeq steps)."""
import math

import torch
from golden_io import write

torch.manual_seed(5)
B, S, D, HEADS, FF = 2, 5, 6, 2, 7
DK = D // HEADS
dt = torch.float64


def linear(n_out, n_in, bias):
    layer = torch.nn.Linear(n_in, n_out, bias=bias).double()
    return layer


Wo, Wk, Wq, Wv = (linear(D, D, False) for _ in range(4))
Krelpos = torch.nn.Parameter(torch.empty(DK, S, dtype=dt).uniform_(-1 / math.sqrt(DK), 1 / math.sqrt(DK)))
ln1 = torch.nn.LayerNorm(D).double()
lin1 = linear(FF, D, True)
lin2 = linear(D, FF, True)
ln2 = torch.nn.LayerNorm(D).double()
with torch.no_grad():  # non-trivial norm parameters
    for ln in (ln1, ln2):
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.3, 0.3)


def heads_first(t):  # [B, S, D] -> [B * HEADS, S, DK]
    return t.view(B, S, HEADS, DK).transpose(1, 2).reshape(B * HEADS, S, DK)


def heads_last(t):  # [B * HEADS, S, DK] -> [B, S, D]
    return t.view(B, HEADS, S, DK).transpose(1, 2).reshape(B, S, D)


def attention(q, k, v):
    scores = torch.bmm(q, k.transpose(1, 2))
    # Relative term by the skew: prepend a zero column to Q Krelpos, view as [S + 1, S], drop row 0.
    qp = q.matmul(Krelpos)
    qp = torch.cat((torch.zeros(q.size(0), S, 1, dtype=dt), qp), 2)
    scores = scores + qp.reshape(q.size(0), S + 1, S)[:, 1:, :]
    mask = torch.triu(torch.full((S, S), float("-inf"), dtype=dt), diagonal=1)
    a = torch.softmax(scores / math.sqrt(DK) + mask, dim=2)
    return torch.bmm(a, v)


def layer(x):
    o = heads_last(attention(heads_first(Wq(x)), heads_first(Wk(x)), heads_first(Wv(x))))
    y1 = ln1(x + Wo(o))
    return ln2(y1 + lin2(torch.relu(lin1(y1))))


x = torch.randn(B, S, D, dtype=dt, requires_grad=True)
y = layer(x)
dy = torch.randn(B, S, D, dtype=dt)
y.backward(dy)
params = {
    "multihead.Wo.weight": Wo.weight, "multihead.Wk.weight": Wk.weight, "multihead.Wq.weight": Wq.weight,
    "multihead.Wv.weight": Wv.weight, "multihead.Att.Krelpos": Krelpos,
    "ln_multihead.weight": ln1.weight, "ln_multihead.bias": ln1.bias,
    "ffnetwork.lin1.weight": lin1.weight, "ffnetwork.lin1.bias": lin1.bias,
    "ffnetwork.lin2.weight": lin2.weight, "ffnetwork.lin2.bias": lin2.bias,
    "ln_ffnetwork.weight": ln2.weight, "ln_ffnetwork.bias": ln2.bias,
}
tensors = {"x": x, "y": y, "dy": dy, "dx": x.grad}
for name, p in params.items():
    tensors[name] = p
    tensors["d:" + name] = p.grad
write("transformer.txt", tensors,
      "CPC_audio-style TransformerLayer (relative positions, causal), batch %d, %d steps, %d channels, "
      "%d heads, feed-forward %d" % (B, S, D, HEADS, FF))
