"""Golden values for cpc::strided_conv_encoder: the paper's g_enc at a small width in PyTorch.

Blocks i = 0..4: Conv1d(C_in, 4, kernel_i, stride_i, padding_i) -> LayerNorm(4) over channels
(CPC's channel norm) -> ReLU, with kernels 10,8,4,4,4, strides 5,4,2,2,2, paddings 3,2,1,1,1.
Audio [2, 1600] -> z [2, 10, 4]. All parameters (including the norms' weight and bias) are random;
the fixture holds z and every parameter gradient for a random dz. Audio, parameters and dz are
rounded to multiples of 1/64 to keep the fixture short; the maths is done in float64.
"""
import torch
from golden_io import write


def q(t):
    return torch.round(t * 64) / 64


torch.manual_seed(0)
C, B, S = 4, 2, 1600
kernels, strides, paddings = [10, 8, 4, 4, 4], [5, 4, 2, 2, 2], [3, 2, 1, 1, 1]
convs, norms = [], []
for i, (k, s, p) in enumerate(zip(kernels, strides, paddings)):
    conv = torch.nn.Conv1d(1 if i == 0 else C, C, k, stride=s, padding=p).double()
    norm = torch.nn.LayerNorm(C).double()
    with torch.no_grad():
        conv.weight.copy_(q(conv.weight * 2))
        conv.bias.copy_(q(conv.bias))
        norm.weight.copy_(q(1 + 0.3 * torch.randn(C, dtype=torch.float64)))
        norm.bias.copy_(q(0.3 * torch.randn(C, dtype=torch.float64)))
    convs.append(conv)
    norms.append(norm)

audio = q(0.5 * torch.randn(B, S, dtype=torch.float64))
h = audio.unsqueeze(1)  # [B, 1, S]
for conv, norm in zip(convs, norms):
    h = torch.relu(norm(conv(h).transpose(1, 2)).transpose(1, 2))
z = h.transpose(1, 2)  # [B, frames, C]
dz = q(torch.randn(z.shape, dtype=torch.float64))
z.backward(dz)

out = {"audio": audio, "z": z, "dz": dz}
for i, (conv, norm) in enumerate(zip(convs, norms)):
    out["conv%d.weight" % i] = conv.weight
    out["conv%d.bias" % i] = conv.bias
    out["norm%d.weight" % i] = norm.weight
    out["norm%d.bias" % i] = norm.bias
for i, (conv, norm) in enumerate(zip(convs, norms)):
    out["grad.conv%d.weight" % i] = conv.weight.grad
    out["grad.conv%d.bias" % i] = conv.bias.grad
    out["grad.norm%d.weight" % i] = norm.weight.grad
    out["grad.norm%d.bias" % i] = norm.bias.grad
write("encoder.txt", out, "strided_conv_encoder, channels 4, audio [2, 1600] -> z [2, 10, 4]; "
      "Conv1d -> LayerNorm over channels -> ReLU, kernels 10,8,4,4,4, strides 5,4,2,2,2, paddings 3,2,1,1,1")
