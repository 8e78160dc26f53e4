"""Golden values for cpc::transformer_info_nce: CPC_audio's InfoNCE with the transformer prediction
network (tests/golden/cpc_audio_torch.py), given fixed negatives: per-step losses and the gradients
of their mean with respect to z, c and every head parameter."""
import torch
from cpc_audio_torch import CPCCriterion
from golden_io import write

torch.manual_seed(7)
B, T, D, HEADS, FF, K, NNEG = 2, 7, 6, 2, 5, 2, 3
crit = CPCCriterion(K, D, D, "transformer", T, dff=FF, heads=HEADS).double()
with torch.no_grad():
    for name, p in crit.named_parameters():
        if "ln_" in name:
            p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.3, 0.3)
z = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
c = torch.randn(B, T, D, dtype=torch.float64, requires_grad=True)
neg = torch.randint(0, B * T, (K, B, T, NNEG))
losses = crit.step_losses(c, z * 3, neg)  # larger latents: scores away from 0
loss = sum(losses) / K
loss.backward()
tensors = {"z": z * 3, "c": c, "negatives": neg, "loss_per_step": torch.stack(losses).detach(),
           "dz": z.grad / 3, "dc": c.grad}
for name, p in crit.named_parameters():
    ours = name.replace("wPrediction.predictors.", "predictor.").replace(".0.", ".", 1)
    tensors[ours] = p
    tensors["d:" + ours] = p.grad
write("transformer_info_nce.txt", tensors,
      "CPC_audio-style InfoNCE, transformer prediction network: batch %d, %d frames, %d channels, %d heads, "
      "feed-forward %d, K = %d, %d negatives; loss = mean over steps" % (B, T, D, HEADS, FF, K, NNEG))
