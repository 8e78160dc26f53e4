"""A tiny model with CPC_audio's architecture and checkpoint layout (cpc_audio_torch.py), saved as
CPC_audio saves one (cpc_audio_checkpoint/checkpoint_3.pt + checkpoint_args.json), converted by
scripts/convert_cpc_audio.py (the .pt read by torch.load) into cpc_audio_tiny.safetensors
(all LSTM layers) and cpc_audio_tiny_layer1.safetensors (--layers 1); the golden file
cpc_audio.txt holds PyTorch's features of two test signals (computed in double from the stored
float32 weights) and the criterion's per-step losses for fixed negatives.

Sizes: 8 channels (encoder and LSTM), 2 LSTM layers, K = 2 transformer heads (2 attention heads,
feed-forward 6), 3 negatives, windows of 1600 samples (10 frames; relative tables of 8 steps)."""
import json
import os
import sys

import torch
from cpc_audio_torch import CPCAR, CPCCriterion, CPCEncoder, CPCModel, save_checkpoint
from golden_io import write

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
C, LAYERS, K, HEADS, FF, NNEG, WINDOW = 8, 2, 2, 2, 6, 3, 1600

torch.manual_seed(11)
model = CPCModel(CPCEncoder(C), CPCAR(C, C, LAYERS, "LSTM"))
crit = CPCCriterion(K, C, C, "transformer", WINDOW // 160, dff=FF, heads=HEADS)
with torch.no_grad():  # trained-looking norms (CPC_audio initialises them to 1 and 0)
    for name, p in list(model.named_parameters()) + list(crit.named_parameters()):
        if "batchNorm" in name or "ln_" in name:
            p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.2, 0.2)
args = {"hiddenEncoder": C, "hiddenGar": C, "nLevelsGRU": LAYERS, "arMode": "LSTM", "rnnMode": "transformer",
        "normMode": "layerNorm", "nPredicts": K, "negativeSamplingExt": NNEG, "sizeWindow": WINDOW,
        "samplingType": "samespeaker", "encoder_type": "cpc", "cpc_mode": None, "abspos": False,
        "speakerEmbedding": 0, "learningRate": 2e-4, "pathDB": "/data/LibriSpeech/train-clean-100"}

# The checkpoint folder itself is committed too (cpc_audio_checkpoint/: checkpoint_3.pt, checkpoint_args.json,
# ~35 KB): the ctest convert_cpc_audio_fixture converts it with PyTorch hidden (the converter's own zipfile +
# pickle + numpy reader) and compares the result with the two converted files tensor by tensor. Its optimizer
# entry is the state dict of CPC_audio's Adam before any step: param_groups with float learning rates, as in a
# real checkpoint. The converted files are made here from torch.load's reading of it (the full unpickler: this
# is our own file; torch 1.13's weights_only unpickler refuses those floats, so the converter's --reader torch
# would refuse it and its default reader falls back to its own).
adam = torch.optim.Adam(list(model.parameters()) + list(crit.parameters()), lr=args["learningRate"],
                        betas=(0.9, 0.999), eps=1e-8)
ckpt = save_checkpoint(os.path.join(HERE, "cpc_audio_checkpoint"), 3, model, crit, args, adam)
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import convert_cpc_audio  # noqa: E402

convert_cpc_audio.load_checkpoint = lambda path, reader: convert_cpc_audio.tensors_to_numpy(
    torch.load(path, map_location="cpu"))
for out, extra in (("cpc_audio_tiny.safetensors", []), ("cpc_audio_tiny_layer1.safetensors", ["--layers", "1"])):
    if convert_cpc_audio.main([ckpt, os.path.join(HERE, out)] + extra) != 0:
        sys.exit("converting %s failed" % out)

# Reference features in double from the stored float32 weights.
model64, crit64 = model.double().eval(), crit.double().eval()
n = 3000
t = torch.arange(n, dtype=torch.float64) / 16000
g = torch.Generator().manual_seed(3)
audio = torch.stack([0.3 * torch.sin(2 * 3.14159 * 220 * t) + 0.05 * torch.randn(n, dtype=torch.float64, generator=g),
                     0.2 * torch.sin(2 * 3.14159 * 530 * t) * torch.cos(2 * 3.14159 * 3 * t)
                     + 0.05 * torch.randn(n, dtype=torch.float64, generator=g)])
with torch.no_grad():
    c, z = model64(audio.unsqueeze(1))
    first = model64.gAR.baseNet
    layer1 = torch.nn.LSTM(C, C, num_layers=1, batch_first=True).double()
    layer1.load_state_dict({k: v for k, v in first.state_dict().items() if k.endswith("_l0")})
    c1 = layer1(z)[0]
    # The criterion on the first window of each signal, fixed negatives.
    w = audio[:, :WINDOW]
    cw, zw = model64(w.unsqueeze(1))
    neg = torch.randint(0, 2 * zw.size(1), (K, 2, zw.size(1), NNEG), generator=g)
    losses = torch.stack(crit64.step_losses(cw, zw, neg))
write(os.path.join(HERE, "cpc_audio.txt"),
      {"audio": audio, "z": z, "c": c, "c_layer1": c1, "window_negatives": neg, "window_losses": losses},
      "CPC_audio-style tiny model (tests/golden/gen_cpc_audio.py): audio [2, %d], latents z, contexts c "
      "(2-layer LSTM), contexts of the first layer alone, per-step losses of the first %d samples "
      "with fixed negatives" % (n, WINDOW))
print("frames", z.shape, "losses", losses.tolist())
