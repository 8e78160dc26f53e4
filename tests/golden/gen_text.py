"""Golden values for the text layers from PyTorch: cpc::embedding (torch.nn.Embedding with
padding_idx), cpc::masked_mean_pool (masked mean over time) and cpc::sentence_encoder
(Embedding -> Conv1d(padding (k-1)/2) -> ReLU -> masked mean over each sentence's tokens)."""
import torch
from golden_io import write

torch.manual_seed(0)
# Embedding: vocabulary 7, dim 3, padding id 0; ids [2, 4] with repeats and padding.
emb = torch.nn.Embedding(7, 3, padding_idx=0).double()
ids = torch.tensor([[3, 1, 3, 0], [6, 2, 0, 0]])
y = emb(ids)
dy = torch.randn(2, 4, 3, dtype=torch.float64)
y.backward(dy)
tensors = {"emb_ids": ids.double(), "emb_weight": emb.weight, "emb_y": y, "emb_dy": dy, "emb_dweight": emb.weight.grad}

# Masked mean pool: x [3, 5, 4], lengths 5, 2, 1.
x = torch.randn(3, 5, 4, dtype=torch.float64, requires_grad=True)
lengths = torch.tensor([5, 2, 1])
mask = (torch.arange(5)[None, :] < lengths[:, None]).double()[:, :, None]
p = (x * mask).sum(1) / lengths[:, None].double()
dp = torch.randn(3, 4, dtype=torch.float64)
p.backward(dp)
tensors.update({"pool_x": x, "pool_lengths": lengths.double(), "pool_y": p, "pool_dy": dp, "pool_dx": x.grad})

# Sentence encoder: vocabulary 11, embedding 4, 6 channels, kernel 3; ids [2, 2, 5] (B=2, S=2).
V, E, C, K = 11, 4, 6, 3
enc_emb = torch.nn.Embedding(V, E, padding_idx=0).double()
conv = torch.nn.Conv1d(E, C, K, padding=(K - 1) // 2).double()
sids = torch.tensor([[[4, 9, 2, 7, 5], [3, 3, 0, 0, 0]], [[10, 0, 0, 0, 0], [1, 8, 6, 0, 0]]])
flat = sids.reshape(4, 5)
lens = (flat != 0).long().cumprod(1).sum(1)
e = enc_emb(flat)                                  # [4, 5, E]
h = torch.relu(conv(e.transpose(1, 2))).transpose(1, 2)  # [4, 5, C]
m = (torch.arange(5)[None, :] < lens[:, None]).double()[:, :, None]
z = ((h * m).sum(1) / lens[:, None].double()).reshape(2, 2, C)
dz = torch.randn(2, 2, C, dtype=torch.float64)
z.backward(dz)
tensors.update({"enc_ids": sids.double(), "enc_embedding": enc_emb.weight, "enc_conv_weight": conv.weight,
                "enc_conv_bias": conv.bias, "enc_z": z, "enc_dz": dz, "enc_dembedding": enc_emb.weight.grad,
                "enc_dconv_weight": conv.weight.grad, "enc_dconv_bias": conv.bias.grad})
write("text.txt", tensors,
      "torch.nn.Embedding(7, 3, padding_idx=0); masked mean over time; sentence encoder\n"
      "Embedding(11, 4, padding_idx=0) -> Conv1d(4, 6, 3, padding=1) -> ReLU -> masked mean")
