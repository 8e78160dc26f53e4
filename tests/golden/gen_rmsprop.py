"""Golden values for cpc::rmsprop from torch.optim.RMSprop.

Two parameters, w [3, 4] and b [4], in float64, updated for 4 steps with fixed per-step
gradients g<s>.w / g<s>.b. For each configuration (plain, momentum, centered, centered with
momentum and weight decay, and a learning rate changed before each step) we store the parameters
after the last step and its state tensors (square_avg, momentum_buffer, grad_avg).
"""
import torch
from golden_io import write

torch.manual_seed(1)
STEPS = 4
w0 = torch.randn(3, 4, dtype=torch.float64)
b0 = torch.randn(4, dtype=torch.float64)
grads = [(torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)) for _ in range(STEPS)]
out = {"w0": w0, "b0": b0}
for s, (gw, gb) in enumerate(grads):
    out["g%d.w" % s] = gw
    out["g%d.b" % s] = gb


def run(tag, make, lrs=None, state_keys=("square_avg",)):
    w = torch.nn.Parameter(w0.clone())
    b = torch.nn.Parameter(b0.clone())
    opt = make([w, b])
    for s, (gw, gb) in enumerate(grads):
        if lrs is not None:
            opt.param_groups[0]["lr"] = lrs[s]
        w.grad = gw.clone()
        b.grad = gb.clone()
        opt.step()
    out[tag + ".w"] = w
    out[tag + ".b"] = b
    for k in state_keys:
        out[tag + "." + k + ".w"] = opt.state[w][k]
        out[tag + "." + k + ".b"] = opt.state[b][k]


RMS = torch.optim.RMSprop
run("rmsprop_default", lambda p: RMS(p))
run("rmsprop_momentum", lambda p: RMS(p, lr=0.005, alpha=0.9, eps=1e-5, momentum=0.8),
    state_keys=("square_avg", "momentum_buffer"))
run("rmsprop_centered", lambda p: RMS(p, lr=0.003, alpha=0.95, eps=1e-6, centered=True),
    state_keys=("square_avg", "grad_avg"))
run("rmsprop_all", lambda p: RMS(p, lr=0.01, alpha=0.99, eps=0.1, weight_decay=0.05, momentum=0.5,
                                 centered=True),
    lrs=[0.01, 0.02, 0.005, 0.001], state_keys=("square_avg", "momentum_buffer", "grad_avg"))

write("rmsprop.txt", out, "torch.optim.RMSprop for 4 steps on w [3, 4], b [4]: defaults; momentum; centered; "
      "centered + momentum + weight decay with per-step lr\ntorch " + torch.__version__)
