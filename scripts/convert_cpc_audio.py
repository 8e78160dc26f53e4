#!/usr/bin/env python3
"""Converts a facebookresearch/CPC_audio checkpoint into a cpc checkpoint (safetensors).

A CPC_audio training folder holds checkpoint_<epoch>.pt (torch.save of {"gEncoder": the model's
state dict, "cpcCriterion": the criterion's, "optimizer": ..., "best": ...}) next to
checkpoint_args.json (the training arguments). This script reads both, checks that the architecture
is one cpc implements, maps every tensor onto cpc's parameter names and writes one safetensors file
that `cpc::load_weights` / `cpc-speech encode|abx` read:

  gEncoder.conv{i}.weight / .bias          -> model.encoder.conv{i}.weight / .bias
  gEncoder.batchNorm{i}.weight / .bias     -> model.encoder.norm{i}.weight / .bias   ([1, C, 1] -> [C])
  gAR.baseNet.{weight,bias}_{ih,hh}_l{k}   -> model.autoregressor.{weight,bias}_{ih,hh}_l{k}
  wPrediction.predictors.{k}.0.<name>      -> model.loss.predictor.{k}.<name>
  (the attention's constant buffers Att.mask and Att.z are checked and dropped)

CPC_audio's channel norm divides by the unbiased variance (torch.var), cpc's by the biased one.
For C channels, (x - m) / sqrt(var_unbiased + eps) = sqrt((C-1)/C) (x - m) / sqrt(var_biased +
eps (C-1)/C), so the converter multiplies each norm weight by sqrt((C-1)/C) and stores eps (C-1)/C
as the encoder's norm eps: the same function, exactly.

Supported: encoder_type cpc, normMode layerNorm, arMode LSTM (any nLevelsGRU, hiddenGar),
rnnMode transformer (abspos off, no multihead_rnn), no speaker embedding, cpc_mode none. Anything
else is refused with a message naming the setting. `--layers N` keeps the first N LSTM layers (the
ZeroSpeech 2021 ABX features of CPC-big are its 2nd layer's: --layers 2).

Reading the .pt file needs no PyTorch: with `--reader auto` (the default) it is read by torch.load
when PyTorch is importable (Debian's python3-torch) and otherwise by this script's own reader
(zipfile + pickle + numpy) of torch.save's zip format (PyTorch >= 1.6; float32, float64 and int64
tensors; the legacy format and any other class or dtype are refused). `--reader numpy` forces that
reader, `--reader torch` requires PyTorch; both give identical arrays
(tests/tools/convert_cpc_audio_fixture.sh).

Usage: convert_cpc_audio.py CHECKPOINT.pt OUT.safetensors [--args checkpoint_args.json] [--layers N]
                            [--reader auto|torch|numpy]
Exit status 0 on success, 1 with one line "convert_cpc_audio: error: ..." on a refused input.
"""
import argparse
import json
import math
import os
import re
import struct
import sys

import numpy as np

# CPC_audio's defaults (cpc/cpc_default_config.py) for the arguments that shape the model.
DEFAULTS = {
    "hiddenEncoder": 256, "hiddenGar": 256, "nPredicts": 12, "negativeSamplingExt": 128,
    "sizeWindow": 20480, "samplingType": "samespeaker", "cpc_mode": None, "encoder_type": "cpc",
    "normMode": "layerNorm", "speakerEmbedding": 0, "arMode": "LSTM", "nLevelsGRU": 1,
    "rnnMode": "transformer", "abspos": False, "multihead_rnn": False, "load": None,
}
GEOMETRY = {"kernels": [10, 8, 4, 4, 4], "strides": [5, 4, 2, 2, 2], "paddings": [3, 2, 1, 1, 1]}
DOWNSAMPLING = 160
CHANNEL_NORM_EPS = 1e-5
# CPC_audio's TransformerLayer uses 8 heads and a 2048-wide feed-forward network; neither is saved
# in the arguments, so both are read from the tensors' shapes (Krelpos [D / heads, S], lin1 [ff, D]).
LAYER_NAMES = ["multihead.Wo.weight", "multihead.Wk.weight", "multihead.Wq.weight", "multihead.Wv.weight",
               "multihead.Att.Krelpos", "ln_multihead.weight", "ln_multihead.bias", "ffnetwork.lin1.weight",
               "ffnetwork.lin1.bias", "ffnetwork.lin2.weight", "ffnetwork.lin2.bias", "ln_ffnetwork.weight",
               "ln_ffnetwork.bias"]


class Refused(Exception):
    pass


class WeightsOnlyRefused(Refused):
    pass


def load_args(path):
    try:
        with open(path) as f:
            given = json.load(f)
    except FileNotFoundError:
        raise Refused("no training arguments at %s (CPC_audio writes checkpoint_args.json next to the "
                      "checkpoint; pass --args FILE)" % path)
    except json.JSONDecodeError as e:
        raise Refused("%s: not valid JSON (%s)" % (path, e))
    if not isinstance(given, dict):
        raise Refused("%s: expected a JSON object of training arguments" % path)
    args = dict(DEFAULTS)
    args.update(given)
    return args


def check_args(args):
    """Refuses every architecture cpc does not implement, naming the setting."""
    def need(ok, what):
        if not ok:
            raise Refused("unsupported CPC_audio configuration: " + what)
    need(args["encoder_type"] == "cpc", "encoder_type %r (cpc implements 'cpc', the convolutional encoder)"
         % args["encoder_type"])
    need(args["normMode"] == "layerNorm", "normMode %r (cpc implements 'layerNorm', CPC_audio's channel norm)"
         % args["normMode"])
    need(args["arMode"] == "LSTM", "arMode %r (cpc implements 'LSTM')" % args["arMode"])
    need(args["cpc_mode"] in (None, "none"), "cpc_mode %r (cpc implements the forward model only)"
         % args["cpc_mode"])
    need(args["rnnMode"] == "transformer", "rnnMode %r (cpc implements the 'transformer' prediction network)"
         % args["rnnMode"])
    need(not args["abspos"], "abspos (cpc implements the relative-position transformer, abspos off)")
    need(not args.get("multihead_rnn"), "multihead_rnn (cpc implements one transformer per step)")
    need(not args["speakerEmbedding"], "speakerEmbedding %r (cpc implements none)" % args["speakerEmbedding"])
    load = args.get("load")
    need(not load or len(load) <= 1, "load of several checkpoints (a concatenated model)")
    for key in ("hiddenEncoder", "hiddenGar", "nLevelsGRU", "nPredicts", "negativeSamplingExt", "sizeWindow"):
        need(isinstance(args[key], int) and args[key] > 0, "%s = %r (expected a whole number > 0)" % (key, args[key]))
    need(args["hiddenEncoder"] == args["hiddenGar"],
         "hiddenEncoder %d != hiddenGar %d with the transformer prediction network"
         % (args["hiddenEncoder"], args["hiddenGar"]))
    need(args["sizeWindow"] // DOWNSAMPLING > args["nPredicts"],
         "sizeWindow %d gives no more than nPredicts frames" % args["sizeWindow"])


def torch_load(path):
    """Reads a .pt file with torch.load(weights_only=True); returns its object with every tensor as a
    numpy array. Raises WeightsOnlyRefused when torch's weights-only unpickler refuses the file (torch
    1.13's refuses the floats of every optimizer state: "Unsupported operand 71")."""
    try:
        import torch
    except ImportError:
        raise Refused("--reader torch: PyTorch is not importable (Debian: apt install python3-torch)")
    import pickle
    try:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except TypeError:  # torch < 1.13 has no weights_only
            obj = torch.load(path, map_location="cpu")
    except pickle.UnpicklingError as e:
        why = str(e).splitlines()[0].split("WeightsUnpickler error: ")[-1] if str(e) else type(e).__name__
        raise WeightsOnlyRefused("%s: torch.load(weights_only=True) refuses it (%s; --reader numpy reads the "
                                 "floats of an optimizer state)" % (path, why))
    except Exception as e:  # noqa: BLE001 - any unreadable file is one refusal
        raise Refused("%s: cannot be read by torch.load (%s)" % (path, str(e).splitlines()[0] if str(e) else type(e).__name__))

    return tensors_to_numpy(obj)


def tensors_to_numpy(obj):
    """The object torch.load returned, every torch.Tensor (in dicts, lists, tuples) made a numpy array."""
    import torch
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: tensors_to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tensors_to_numpy(v) for v in obj)
    return obj


# The numpy reader: torch.save's format since PyTorch 1.6 is a zip archive <name>/data.pkl (a pickle whose
# tensors are torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) calls and whose storages
# are persistent ids ("storage", torch.<Type>Storage, key, location, numel)) plus one raw little-endian
# file <name>/data/<key> per storage. Only the classes a checkpoint of tensors needs are known; anything
# else (another class, another dtype, the legacy non-zip format) is refused.
KNOWN_CLASSES = {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"}
STORAGE_DTYPES = {"FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"), "LongStorage": np.dtype("<i8")}
OTHER_STORAGES = ("HalfStorage", "BFloat16Storage", "IntStorage", "ShortStorage", "CharStorage", "ByteStorage",
                  "BoolStorage", "ComplexFloatStorage", "ComplexDoubleStorage", "UntypedStorage", "QInt8Storage",
                  "QUInt8Storage", "QInt32Storage")


class _StorageType:
    def __init__(self, name):
        self.name = name


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise Refused("a tensor of size %s and stride %s" % (list(size), list(stride)))
    if any(n == 0 for n in size):
        return np.zeros(size, dtype=storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if offset < 0 or last >= storage.size:
        raise Refused("a tensor reaches element %d of a storage of %d" % (last, storage.size))
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size,
                                           strides=[s * storage.itemsize for s in stride], writeable=False)
    return np.array(view)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    return data


def numpy_load(path):
    """Reads a zip-format torch.save file with zipfile + pickle + numpy (no PyTorch); returns its object
    with every tensor as a numpy array (float32, float64 or int64, as stored)."""
    import pickle
    import zipfile
    if not zipfile.is_zipfile(path):
        raise Refused("%s: not a zip-format torch.save file (the legacy format of PyTorch < 1.6 needs PyTorch: "
                      "apt install python3-torch)" % path)
    try:
        archive = zipfile.ZipFile(path)
        names = archive.namelist()
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise Refused("%s: expected one data.pkl in the torch.save archive, found %d" % (path, len(pkl)))
        prefix = pkl[0][:-len("data.pkl")]
        if prefix + "byteorder" in names and archive.read(prefix + "byteorder").strip() != b"little":
            raise Refused("%s: its storages are %s-endian (expected little)"
                          % (path, archive.read(prefix + "byteorder").strip().decode("ascii", "replace")))
        storages = {}

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if module + "." + name in KNOWN_CLASSES:
                    import collections
                    return {"OrderedDict": collections.OrderedDict, "_rebuild_tensor_v2": _rebuild_tensor_v2,
                            "_rebuild_parameter": _rebuild_parameter}[name]
                if module == "torch" and name in STORAGE_DTYPES:
                    return _StorageType(name)
                if module == "torch" and name in OTHER_STORAGES:
                    raise Refused("%s: holds a torch.%s tensor (the reader without PyTorch reads float32, "
                                  "float64 and int64)" % (path, name))
                raise Refused("%s: holds a %s.%s object, which the converter does not know"
                              % (path, module, name))

            def persistent_load(self, pid):
                if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                        and isinstance(pid[1], _StorageType)):
                    raise Refused("%s: an unknown persistent id %r"
                                  % (path, pid[:2] if isinstance(pid, tuple) else pid))
                _, kind, key, _location, numel = pid
                if key not in storages:
                    dtype = STORAGE_DTYPES[kind.name]
                    raw = archive.read(prefix + "data/" + str(key))
                    if len(raw) != numel * dtype.itemsize:
                        raise Refused("%s: storage %s holds %d bytes, expected %d %s elements"
                                      % (path, key, len(raw), numel, dtype.name))
                    storages[key] = np.frombuffer(raw, dtype=dtype)
                return storages[key]

        with archive.open(pkl[0]) as f:
            return Unpickler(f).load()
    except Refused:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is one refusal
        raise Refused("%s: cannot be read as a torch.save archive (%s: %s)"
                      % (path, type(e).__name__, str(e).splitlines()[0] if str(e) else ""))


def load_checkpoint(path, reader):
    """Reads a .pt file with PyTorch (reader 'torch', or 'auto' when torch is importable) or with the numpy
    reader ('numpy', or 'auto' without torch); both give the same object, tensors as numpy arrays. 'auto'
    also falls back to the numpy reader when torch's weights-only unpickler refuses the file (the safe
    alternative to torch.load(weights_only=False), which would run any code the pickle names)."""
    if not os.path.isfile(path):
        raise Refused("no checkpoint file at %s" % path)
    if reader == "numpy":
        return numpy_load(path)
    if reader == "auto":
        try:
            import torch  # noqa: F401
        except ImportError:
            return numpy_load(path)
        try:
            return torch_load(path)
        except WeightsOnlyRefused:
            return numpy_load(path)
    return torch_load(path)


def strip_module(state):
    """DataParallel-saved states prefix every key with 'module.'."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def convert(ckpt, args, layers):
    """Returns (tensors: name -> float32 numpy array, architecture dict)."""
    if not isinstance(ckpt, dict) or "gEncoder" not in ckpt or "cpcCriterion" not in ckpt:
        raise Refused("expected a CPC_audio checkpoint: a dict with 'gEncoder' and 'cpcCriterion' state dicts, got "
                      + (("keys " + ", ".join(sorted(map(str, ckpt)))) if isinstance(ckpt, dict) else type(ckpt).__name__))
    C, H, L, K = args["hiddenEncoder"], args["hiddenGar"], args["nLevelsGRU"], args["nPredicts"]
    keep = L if layers is None else layers
    if keep < 1 or keep > L:
        raise Refused("--layers %d: expected 1 to nLevelsGRU = %d" % (keep, L))
    S = args["sizeWindow"] // DOWNSAMPLING - K
    for what in ("gEncoder", "cpcCriterion"):
        if not isinstance(ckpt[what], dict) or not all(isinstance(v, np.ndarray) for v in ckpt[what].values()):
            raise Refused("'%s' is not a state dict of tensors" % what)
    model = {k: v.astype(np.float64) for k, v in strip_module(ckpt["gEncoder"]).items()}
    crit = {k: v.astype(np.float64) for k, v in strip_module(ckpt["cpcCriterion"]).items()}
    head0 = "wPrediction.predictors.0.0."
    if head0 + "multihead.Att.Krelpos" not in crit or head0 + "ffnetwork.lin1.weight" not in crit:
        raise Refused("'cpcCriterion' holds no transformer prediction head 0 (%smultihead.Att.Krelpos, "
                      "%sffnetwork.lin1.weight)" % (head0, head0))
    dk, ff = crit[head0 + "multihead.Att.Krelpos"].shape[0], crit[head0 + "ffnetwork.lin1.weight"].shape[0]
    if dk == 0 or C % dk != 0:
        raise Refused("%smultihead.Att.Krelpos: its %d rows (channels per attention head) do not divide "
                      "hiddenEncoder %d" % (head0, dk, C))
    heads = C // dk

    expected = {}  # CPC_audio name -> shape
    for i, k_size in enumerate(GEOMETRY["kernels"]):
        expected["gEncoder.conv%d.weight" % i] = (C, 1 if i == 0 else C, k_size)
        expected["gEncoder.conv%d.bias" % i] = (C,)
        expected["gEncoder.batchNorm%d.weight" % i] = (1, C, 1)
        expected["gEncoder.batchNorm%d.bias" % i] = (1, C, 1)
    for layer in range(L):
        n_in = C if layer == 0 else H
        expected["gAR.baseNet.weight_ih_l%d" % layer] = (4 * H, n_in)
        expected["gAR.baseNet.weight_hh_l%d" % layer] = (4 * H, H)
        expected["gAR.baseNet.bias_ih_l%d" % layer] = (4 * H,)
        expected["gAR.baseNet.bias_hh_l%d" % layer] = (4 * H,)
    head_shapes = {"multihead.Wo.weight": (C, C), "multihead.Wk.weight": (C, C), "multihead.Wq.weight": (C, C),
                   "multihead.Wv.weight": (C, C), "multihead.Att.Krelpos": (dk, S),
                   "ln_multihead.weight": (C,), "ln_multihead.bias": (C,),
                   "ffnetwork.lin1.weight": (ff, C), "ffnetwork.lin1.bias": (ff,),
                   "ffnetwork.lin2.weight": (C, ff), "ffnetwork.lin2.bias": (C,),
                   "ln_ffnetwork.weight": (C,), "ln_ffnetwork.bias": (C,),
                   "multihead.Att.z": (1, S, 1), "multihead.Att.mask": (1, S, S)}
    crit_expected = {}
    for k in range(K):
        for name, shape in head_shapes.items():
            crit_expected["wPrediction.predictors.%d.0.%s" % (k, name)] = shape

    for what, state, exp in (("gEncoder", model, expected), ("cpcCriterion", crit, crit_expected)):
        missing = sorted(set(exp) - set(state))
        unknown = sorted(set(state) - set(exp))
        if missing:
            raise Refused("'%s' lacks %d tensor(s) this architecture needs: %s" % (what, len(missing), ", ".join(missing[:8])
                                                                             + (" ..." if len(missing) > 8 else "")))
        if unknown:
            raise Refused("'%s' has %d tensor(s) cpc does not know: %s" % (what, len(unknown), ", ".join(unknown[:8])
                                                                          + (" ..." if len(unknown) > 8 else "")))
        for name, shape in exp.items():
            if tuple(state[name].shape) != tuple(shape):
                raise Refused("%s: expected shape %s for this configuration, got %s"
                              % (name, list(shape), list(state[name].shape)))
    causal = np.triu(np.full((S, S), -np.inf), 1)
    for k in range(K):
        mask = crit["wPrediction.predictors.%d.0.multihead.Att.mask" % k][0]
        zeros = crit["wPrediction.predictors.%d.0.multihead.Att.z" % k]
        if not (np.array_equal(mask, causal) and not zeros.any()):
            raise Refused("prediction head %d: its attention mask is not the causal mask (or Att.z is not zero)" % k)

    out = {}
    shrink = math.sqrt((C - 1) / C)
    for i in range(len(GEOMETRY["kernels"])):
        out["model.encoder.conv%d.weight" % i] = model["gEncoder.conv%d.weight" % i]
        out["model.encoder.conv%d.bias" % i] = model["gEncoder.conv%d.bias" % i]
        out["model.encoder.norm%d.weight" % i] = model["gEncoder.batchNorm%d.weight" % i].reshape(C) * shrink
        out["model.encoder.norm%d.bias" % i] = model["gEncoder.batchNorm%d.bias" % i].reshape(C)
    for layer in range(keep):
        for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            out["model.autoregressor.%s_l%d" % (p, layer)] = model["gAR.baseNet.%s_l%d" % (p, layer)]
    for k in range(K):
        for name in LAYER_NAMES:
            out["model.loss.predictor.%d.%s" % (k, name)] = crit["wPrediction.predictors.%d.0.%s" % (k, name)]
    arch = {"encoder_channels": C, **GEOMETRY, "norm_eps": CHANNEL_NORM_EPS * (C - 1) / C,
            "ar_mode": "LSTM", "ar_hidden": H, "ar_layers": keep, "prediction": "transformer", "steps": K,
            "negatives": args["negativeSamplingExt"], "heads": heads, "ff_dim": ff,
            "max_time": S, "window_samples": args["sizeWindow"]}
    return {k: v.astype(np.float32) for k, v in out.items()}, arch


def write_safetensors(path, tensors, metadata):
    """safetensors layout: u64 header length, JSON header (padded with spaces to 8 bytes), data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dtype = {np.dtype("<f4"): "F32", np.dtype("<u8"): "U64"}[a.dtype.newbyteorder("<")]
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv):
    p = argparse.ArgumentParser(description="Convert a CPC_audio checkpoint to a cpc checkpoint (safetensors).")
    p.add_argument("checkpoint", help="CPC_audio checkpoint_<epoch>.pt")
    p.add_argument("out", help="output .safetensors file")
    p.add_argument("--args", help="training arguments (default: checkpoint_args.json next to the checkpoint)")
    p.add_argument("--layers", type=int, help="keep the first N LSTM layers (default: all)")
    p.add_argument("--reader", choices=("auto", "torch", "numpy"), default="auto",
                   help="how to read the .pt file: torch.load, the numpy reader (no PyTorch needed), or auto: "
                        "torch when importable, else numpy (default)")
    a = p.parse_args(argv)
    try:
        args = load_args(a.args or os.path.join(os.path.dirname(os.path.abspath(a.checkpoint)), "checkpoint_args.json"))
        check_args(args)
        tensors, arch = convert(load_checkpoint(a.checkpoint, a.reader), args, a.layers)
        tensors["optimizer.steps"] = np.zeros(1, dtype=np.uint64)
        tensors["rng.model"] = np.array([0x9E3779B97F4A7C15, 1, 2, 3], dtype=np.uint64)
        epoch = re.search(r"(\d+)\.pt$", a.checkpoint)
        metadata = {"format": "cpc-checkpoint-1", "step": "0", "model": "cpc_audio", "gain": "1",
                    "cpc_audio": json.dumps(arch, sort_keys=True),
                    "source": "CPC_audio %s%s" % (os.path.basename(a.checkpoint),
                                                  " (epoch %s)" % epoch.group(1) if epoch else "")}
        out_dir = os.path.dirname(os.path.abspath(a.out))
        if not os.path.isdir(out_dir):
            raise Refused("%s: no such folder for the output" % out_dir)
        write_safetensors(a.out, tensors, metadata)
    except Refused as e:
        print("convert_cpc_audio: error: %s" % e, file=sys.stderr)
        return 1
    n = sum(v.size for k, v in tensors.items() if k.startswith("model."))
    print("wrote %s: %d parameters (encoder %d channels, LSTM %d x %d, %d transformer heads)"
          % (a.out, n, arch["encoder_channels"], arch["ar_layers"], arch["ar_hidden"], arch["steps"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
