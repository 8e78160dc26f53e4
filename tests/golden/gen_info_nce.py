"""Golden values for cpc::info_nce: InfoNCE with K linear heads and FIXED negatives, written the
plain PyTorch way (one cross-entropy per (b, t, k) over [positive, negatives...]), with padding
(lengths), a head bias and the 1/sqrt(D) score scale. Loss = mean over k of per-step means."""
import math
import torch
from golden_io import write

torch.manual_seed(0)
B, T, D, C, K, N = 3, 7, 5, 4, 3, 4
lengths = [7, 5, 6]
scale = 1.0 / math.sqrt(D)
z = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
c = torch.randn(B, T, C, dtype=torch.float64, requires_grad=True)
heads = [torch.nn.Linear(C, D, bias=True).double() for _ in range(K)]
for h in heads:  # larger weights so the softmax is far from uniform
    with torch.no_grad():
        h.weight.mul_(3.0)

valid = [b * T + t for b in range(B) for t in range(lengths[b])]
neg = torch.full((K, B, T, N), -1, dtype=torch.int64)
g = torch.Generator().manual_seed(1)
for k in range(1, K + 1):
    for b in range(B):
        for t in range(lengths[b] - k):
            pos = b * T + t + k
            cands = [v for v in valid if v != pos]
            pick = torch.randint(len(cands), (N,), generator=g)
            neg[k - 1, b, t] = torch.tensor([cands[i] for i in pick])

zf = z.reshape(B * T, D)
step_losses, accs, terms = [], [], []
for k in range(1, K + 1):
    p = heads[k - 1](c)  # [B, T, D]
    logits, n = [], 0
    for b in range(B):
        for t in range(lengths[b] - k):
            idx = torch.cat([torch.tensor([b * T + t + k]), neg[k - 1, b, t]])
            logits.append(scale * (zf[idx] * p[b, t]).sum(-1))
    logits = torch.stack(logits)  # [terms, N+1], candidate axis last
    target = torch.zeros(logits.shape[0], dtype=torch.int64)
    step_losses.append(torch.nn.functional.cross_entropy(logits, target))
    accs.append((logits.argmax(-1) == 0).double().mean())
    terms.append(logits.shape[0])
loss = torch.stack(step_losses).mean()
loss.backward()

out = {"z": z, "c": c, "lengths": torch.tensor(lengths, dtype=torch.float64),
       "negatives": neg.double(), "loss": loss.reshape(1),
       "loss_per_step": torch.stack(step_losses), "accuracy": torch.stack(accs),
       "terms": torch.tensor(terms, dtype=torch.float64), "dz": z.grad, "dc": c.grad}
for k, h in enumerate(heads):
    out["weight%d" % k] = h.weight
    out["bias%d" % k] = h.bias
    out["dweight%d" % k] = h.weight.grad
    out["dbias%d" % k] = h.bias.grad
write("info_nce.txt", out,
      "InfoNCE, B=3 T=7 D=5 C=4 K=3 N=4, lengths 7,5,6, bias, scale 1/sqrt(D), fixed negatives;\n"
      "loss = mean over k of per-step mean cross-entropy over [positive, negatives]")
print("loss", loss.item(), "acc", [a.item() for a in accs], "terms", terms)
