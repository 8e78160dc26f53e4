#!/usr/bin/env python3
"""Prints the contents of a safetensors file (e.g. a cpc checkpoint) using only json and numpy.

For each tensor: name, dtype, shape, L2 norm (float64), min and max; then the "__metadata__"
entries. Validates the layout as cpc's reader does (offsets inside the data section, sizes
matching shape x dtype, tensors tiling the data exactly). Exit status 1 on a malformed file.

Usage: read_checkpoint.py FILE [--values]   (--values also prints up to 8 leading elements)
"""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "U64": "<u8", "I32": "<i4", "U8": "u1",
          "F16": "<f2", "I16": "<i2", "U16": "<u2", "U32": "<u4", "I8": "i1", "BOOL": "?"}


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("file is %d bytes, shorter than the 8-byte header length" % len(blob))
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError("header length %d exceeds the %d bytes after the length field" % (n, len(blob) - 8))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("header is not a JSON object")
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    tensors = {}
    spans = []
    for name, info in header.items():
        if info["dtype"] not in DTYPES:
            raise ValueError("tensor %r: unknown dtype %r" % (name, info["dtype"]))
        dt = np.dtype(DTYPES[info["dtype"]])
        shape = tuple(int(d) for d in info["shape"])
        begin, end = (int(o) for o in info["data_offsets"])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not 0 <= begin <= end <= len(data) or end - begin != count * dt.itemsize:
            raise ValueError("tensor %r: data_offsets [%d, %d] do not fit shape %s of %s in %d data bytes"
                             % (name, begin, end, list(shape), info["dtype"], len(data)))
        tensors[name] = (info["dtype"], np.frombuffer(data, dtype=dt, count=count, offset=begin).reshape(shape))
        spans.append((begin, end, name))
    pos = 0
    for begin, end, name in sorted(spans):
        if begin != pos:
            raise ValueError("tensor %r starts at %d, expected %d (overlap or gap)" % (name, begin, pos))
        pos = end
    if pos != len(data):
        raise ValueError("%d bytes of trailing data after the last tensor" % (len(data) - pos))
    return tensors, metadata


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    path = argv[1]
    show_values = "--values" in argv[2:]
    try:
        tensors, metadata = read(path)
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        print("read_checkpoint: %s: %s" % (path, e), file=sys.stderr)
        return 1
    print("%s: %d tensors" % (path, len(tensors)))
    width = max([len(n) for n in tensors] + [4])
    for name in sorted(tensors):
        dtype, a = tensors[name]
        x = a.astype(np.float64)
        norm = float(np.sqrt(np.sum(x * x))) if x.size else 0.0
        stats = "norm=%.9g" % norm
        if x.size:
            stats += " min=%.9g max=%.9g" % (x.min(), x.max())
        print("  %-*s  %-4s  %-16s  %s" % (width, name, dtype, list(a.shape), stats))
        if show_values:
            print("    " + " ".join("%.9g" % v for v in x.reshape(-1)[:8]))
    print("metadata: %d entries" % len(metadata))
    for k in sorted(metadata):
        print("  %s = %s" % (k, metadata[k]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
