"""Golden values for cpc::adam, cpc::sgd, the schedules and clip_grad_norm from torch.optim.

Two parameters, w [3, 4] and b [4], in float64, updated for 3 steps with fixed per-step
gradients g<s>.w / g<s>.b. For each optimiser configuration we store the parameters after the
last step and its state tensors.
"""
import warnings

import torch
from golden_io import write

torch.manual_seed(0)
STEPS = 3
w0 = torch.randn(3, 4, dtype=torch.float64)
b0 = torch.randn(4, dtype=torch.float64)
grads = [(torch.randn(3, 4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)) for _ in range(STEPS)]
out = {"w0": w0, "b0": b0}
for s, (gw, gb) in enumerate(grads):
    out["g%d.w" % s] = gw
    out["g%d.b" % s] = gb


def run(tag, make, lrs=None, state_keys=()):
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


run("adam_default", lambda p: torch.optim.Adam(p, lr=1e-2), state_keys=("exp_avg", "exp_avg_sq"))
run("adam_decay", lambda p: torch.optim.Adam(p, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    lrs=[0.01, 0.03, 0.005], state_keys=("exp_avg", "exp_avg_sq"))
run("sgd_plain", lambda p: torch.optim.SGD(p, lr=0.1))
run("sgd_momentum", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), state_keys=("momentum_buffer",))
run("sgd_damp_decay", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.01),
    state_keys=("momentum_buffer",))
run("sgd_nesterov", lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    state_keys=("momentum_buffer",))

# Gradient clipping: global L2 norm over both gradients.
for tag, max_norm in (("clip_small", 1.0), ("clip_large", 100.0)):
    w = torch.nn.Parameter(w0.clone())
    b = torch.nn.Parameter(b0.clone())
    w.grad = grads[0][0].clone() * 3
    b.grad = grads[0][1].clone() * 3
    total = torch.nn.utils.clip_grad_norm_([w, b], max_norm)
    out[tag + ".total_norm"] = total.reshape(1)
    out[tag + ".w"] = w.grad
    out[tag + ".b"] = b.grad


# Schedules: the learning rate used by each of the first 12 updates, base 0.1.
def lrs_of(make_sched, n=12):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = make_sched(opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n):
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return torch.tensor(lrs, dtype=torch.float64)


W = 4
lin = torch.optim.lr_scheduler.LinearLR
out["sched.warmup"] = lrs_of(lambda o: lin(o, start_factor=1 / W, end_factor=1.0, total_iters=W - 1))
out["sched.step"] = lrs_of(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5))
out["sched.sequential"] = lrs_of(lambda o: torch.optim.lr_scheduler.SequentialLR(
    o, [lin(o, start_factor=1 / W, end_factor=1.0, total_iters=W - 1),
        torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)], milestones=[W]))

write("optim.txt", out, "torch.optim.Adam / SGD for 3 steps on w [3, 4], b [4]; clip_grad_norm_; LinearLR, StepLR, "
      "SequentialLR (warm-up 4, step 3, gamma 0.5, base lr 0.1)\ntorch " + torch.__version__)
