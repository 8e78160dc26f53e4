"""Golden values for cpc::audio_features (include/cpc/eval/features.hpp): an independent numpy
float64 implementation of the documented pipeline (frames centred on [160 f, 160 f + 160),
pre-emphasis 0.97, Hamming 400, FFT 512, 40 HTK-mel filters on power, ln, DCT-II ortho c0..c12,
HTK deltas over +-2 frames)."""
import numpy as np
from golden_io import write

n = 1600
i = np.arange(n, dtype=np.float64)
# The same formula is evaluated in the C++ test (double, then rounded to float).
x = (0.5 * np.sin(2 * np.pi * 440 * i / 16000) + 0.25 * np.sin(2 * np.pi * 3100 * i / 16000 + 0.3)
     + 0.1 * np.sin(0.0007 * i * i) + 0.01 * np.sin(0.37 * i * i + i)).astype(np.float32).astype(np.float64)

hop, win, nfft, nmel, ncep, floor = 160, 400, 512, 40, 13, 1e-10
y = x.copy()
y[1:] -= 0.97 * x[:-1]
ham = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(win) / (win - 1))
frames = n // hop
power = np.zeros((frames, nfft // 2 + 1))
for f in range(frames):
    start = hop * f + hop // 2 - win // 2
    seg = np.zeros(win)
    for j in range(win):
        p = start + j
        if 0 <= p < n:
            seg[j] = y[p]
    power[f] = np.abs(np.fft.rfft(seg * ham, nfft)) ** 2
logpow = np.log(np.maximum(power, floor))

mel = lambda hz: 2595 * np.log10(1 + hz / 700)
imel = lambda m: 700 * (10 ** (m / 2595) - 1)
edges = imel(np.linspace(mel(0), mel(8000), nmel + 2))
hz = np.arange(nfft // 2 + 1) * 16000 / nfft
fb = np.zeros((nmel, nfft // 2 + 1))
for m in range(nmel):
    up = (hz - edges[m]) / (edges[m + 1] - edges[m])
    down = (edges[m + 2] - hz) / (edges[m + 2] - edges[m + 1])
    fb[m] = np.maximum(0, np.minimum(up, down))
logmel = np.log(np.maximum(power @ fb.T, floor))
k = np.arange(nmel)
dct = np.array([np.sqrt((1 if q == 0 else 2) / nmel) * np.cos(np.pi * q * (k + 0.5) / nmel) for q in range(ncep)])
c = logmel @ dct.T


def deltas(a):
    p = np.concatenate([a[:1], a[:1], a, a[-1:], a[-1:]])
    t = np.arange(len(a)) + 2
    return ((p[t + 1] - p[t - 1]) + 2 * (p[t + 2] - p[t - 2])) / 10


d = deltas(c)
mfcc = np.concatenate([c, d, deltas(d)], axis=1)
write("features.txt", {"mfcc": mfcc, "log_mel": logmel[[0, 4, 9]], "log_power": logpow[[0, 5]][:, ::4]},
      "cpc::audio_features defaults on a 1600-sample test signal (formula in gen_features.py):\n"
      "mfcc [10, 39]; log_mel frames 0, 4, 9 [3, 40]; log_power frames 0, 5, bins 0, 4, .., 256 [2, 65]")
