"""Writes golden fixtures in the text format read by tests/support/golden.hpp.

Per tensor: "tensor <name> <rank> <dims...>" then one line of row-major values (%.17g).
"""
import numpy as np


def write(path, tensors, comment=""):
    with open(path, "w") as f:
        if comment:
            for line in comment.strip().splitlines():
                f.write("# " + line + "\n")
        for name, t in tensors.items():
            a = t.detach().cpu().double().numpy() if hasattr(t, "detach") else np.asarray(t, dtype=np.float64)
            f.write("tensor %s %d %s\n" % (name, a.ndim, " ".join(str(d) for d in a.shape)))
            f.write(" ".join("%.17g" % v for v in a.reshape(-1)) + "\n")
