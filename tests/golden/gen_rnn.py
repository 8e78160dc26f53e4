"""Golden values for cpc::gru and cpc::lstm from torch.nn.GRU / torch.nn.LSTM (batch_first=True,
2 layers): forward outputs, final states, input gradient and every parameter gradient, with a
random initial state."""
import torch
from golden_io import write

B, T, I, H, L = 2, 4, 3, 3, 2
for name, cls in (("gru", torch.nn.GRU), ("lstm", torch.nn.LSTM)):
    torch.manual_seed(1 if name == "gru" else 2)
    rnn = cls(I, H, num_layers=L, batch_first=True).double()
    x = torch.randn(B, T, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(L, B, H, dtype=torch.float64)
    if name == "gru":
        y, h_n = rnn(x, h0)
        states = {"h0": h0, "h_n": h_n}
    else:
        c0 = torch.randn(L, B, H, dtype=torch.float64)
        y, (h_n, c_n) = rnn(x, (h0, c0))
        states = {"h0": h0, "c0": c0, "h_n": h_n, "c_n": c_n}
    dy = torch.randn(B, T, H, dtype=torch.float64)
    y.backward(dy)
    tensors = {"x": x, "y": y, "dy": dy, "dx": x.grad, **states}
    for pname, p in rnn.named_parameters():
        tensors[pname] = p
        tensors["d" + pname] = p.grad
    write(name + ".txt", tensors,
          "torch.nn.%s(%d, %d, num_layers=%d, batch_first=True), input [%d, %d, %d], random initial state"
          % (cls.__name__, I, H, L, B, T, I))
