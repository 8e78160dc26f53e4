"""Golden values for cpc::layer_norm / cpc::channel_norm from torch.nn.LayerNorm over the last
(channel) dimension of [batch, time, channels]: with affine parameters (random weight and bias),
without them, and followed by ReLU (the fused forward_relu / backward_relu)."""
import torch
from golden_io import write


def q(t):
    return torch.round(t * 64) / 64


torch.manual_seed(0)
B, T, C = 2, 3, 6
ln = torch.nn.LayerNorm(C).double()
with torch.no_grad():
    ln.weight.copy_(q(1 + 0.5 * torch.randn(C, dtype=torch.float64)))
    ln.bias.copy_(q(0.5 * torch.randn(C, dtype=torch.float64)))
x = q(2 * torch.randn(B, T, C, dtype=torch.float64) + 0.5)
dy = q(torch.randn(B, T, C, dtype=torch.float64))
out = {"x": x, "weight": ln.weight.detach().clone(), "bias": ln.bias.detach().clone(), "dy": dy}

xa = x.clone().requires_grad_(True)
y = ln(xa)
y.backward(dy)
out.update({"y": y, "dx": xa.grad, "dweight": ln.weight.grad.clone(), "dbias": ln.bias.grad.clone()})

ln.zero_grad()
xr = x.clone().requires_grad_(True)
yr = torch.relu(ln(xr))
yr.backward(dy)
out.update({"relu_y": yr, "relu_dx": xr.grad, "relu_dweight": ln.weight.grad, "relu_dbias": ln.bias.grad})

plain = torch.nn.LayerNorm(C, elementwise_affine=False).double()
xp = x.clone().requires_grad_(True)
yp = plain(xp)
yp.backward(dy)
out.update({"plain_y": yp, "plain_dx": xp.grad})
write("norms.txt", out, "torch.nn.LayerNorm(6) on x [2, 3, 6]: affine (random weight/bias), "
      "affine + ReLU (relu_*), and elementwise_affine=False (plain_*)")
