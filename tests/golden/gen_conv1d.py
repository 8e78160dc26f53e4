"""Golden values for cpc::conv1d from torch.nn.Conv1d (forward, input and parameter gradients).

cpc is channel-last ([batch, time, channels]); torch.nn.Conv1d is channel-first, so x and dy are
transposed on the way in and y, dx on the way out. Inputs and parameters are rounded to multiples
of 1/64 to keep the fixture short; the maths is done in float64.
Config a: the paper's first layer shape (C_in 1, kernel 10, stride 5, padding 3), odd length 23.
Config b: C_in 5, C_out 4, kernel 4, stride 2, padding 1, odd length 11 (the GEMM path).
"""
import torch
from golden_io import write


def q(t):
    return torch.round(t * 64) / 64


def case(tag, B, T, ci, co, k, s, p):
    conv = torch.nn.Conv1d(ci, co, k, stride=s, padding=p).double()
    with torch.no_grad():
        conv.weight.copy_(q(conv.weight * 4))
        conv.bias.copy_(q(conv.bias * 4))
    x = q(torch.randn(B, T, ci, dtype=torch.float64)).requires_grad_(True)
    y = conv(x.transpose(1, 2)).transpose(1, 2)
    dy = q(torch.randn(y.shape, dtype=torch.float64))
    y.backward(dy)
    return {tag + "x": x, tag + "weight": conv.weight, tag + "bias": conv.bias, tag + "y": y, tag + "dy": dy,
            tag + "dx": x.grad, tag + "dweight": conv.weight.grad, tag + "dbias": conv.bias.grad}


torch.manual_seed(0)
out = case("a_", 2, 23, 1, 3, 10, 5, 3)
out.update(case("b_", 2, 11, 5, 4, 4, 2, 1))
write("conv1d.txt", out, "torch.nn.Conv1d, channel-last tensors; a: Conv1d(1, 3, 10, stride 5, padding 3), "
      "x [2, 23, 1]; b: Conv1d(5, 4, 4, stride 2, padding 1), x [2, 11, 5]")
