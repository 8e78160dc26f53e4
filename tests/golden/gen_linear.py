"""Golden values for cpc::linear from torch.nn.Linear (forward, input and parameter gradients)."""
import torch
from golden_io import write

torch.manual_seed(0)
B, T, I, O = 2, 3, 5, 4
layer = torch.nn.Linear(I, O).double()
x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
y = layer(x)
dy = torch.randn(B, T, O, dtype=torch.float64)
y.backward(dy)
write("linear.txt", {"x": x, "weight": layer.weight, "bias": layer.bias, "y": y, "dy": dy,
                     "dx": x.grad, "dweight": layer.weight.grad, "dbias": layer.bias.grad},
      "torch.nn.Linear(5, 4), input [2, 3, 5]")
