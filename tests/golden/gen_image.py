"""Golden values for the image side of cpc from PyTorch (float64): conv2d, masked_conv2d,
resnet_block (pre-activation, layer norm over channels) and resnet_patch_encoder (patches ->
stem -> blocks -> layer norm + ReLU -> mean per patch). Tensors are stored NHWC as cpc uses them."""
import torch
import torch.nn.functional as F
from golden_io import write

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


class PreActBlock(torch.nn.Module):
    """y = x + conv2(relu(ln2(conv1(relu(ln1(x)))))); ln over the channels of each pixel."""

    def __init__(self, c, k=3):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(c)
        self.conv1 = torch.nn.Conv2d(c, c, k, padding=k // 2)
        self.ln2 = torch.nn.LayerNorm(c)
        self.conv2 = torch.nn.Conv2d(c, c, k, padding=k // 2)

    def forward(self, x):  # x NHWC
        h = nhwc(self.conv1(nchw(F.relu(self.ln1(x)))))
        return x + nhwc(self.conv2(nchw(F.relu(self.ln2(h)))))


class PatchEncoder(torch.nn.Module):
    def __init__(self, cin, c, blocks, size, stride, padding, stem_stride=1):
        super().__init__()
        self.stem = torch.nn.Conv2d(cin, c, 3, padding=1, stride=stem_stride)
        self.block = torch.nn.ModuleList([PreActBlock(c) for _ in range(blocks)])
        self.norm = torch.nn.LayerNorm(c)
        self.size, self.stride, self.padding = size, stride, padding

    def forward(self, img):  # img NHWC -> z [B, rows, cols, C]
        B = img.shape[0]
        p = F.pad(nchw(img), (self.padding,) * 4)
        patches = p.unfold(2, self.size, self.stride).unfold(3, self.size, self.stride)  # B C R Cg P P
        R, Cg = patches.shape[2], patches.shape[3]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(B * R * Cg, -1, self.size, self.size)
        h = nhwc(self.stem(patches))
        for blk in self.block:
            h = blk(h)
        h = F.relu(self.norm(h))
        return h.mean(dim=(1, 2)).reshape(B, R, Cg, -1)


def grads(named, out, dy, x=None):
    out.backward(dy)
    d = {"d" + n: p.grad for n, p in named}
    if x is not None:
        d["dx"] = x.grad
    return d


fx = {}
# conv2d: stride 2, padding 1, non-square image.
conv = torch.nn.Conv2d(2, 3, 3, stride=2, padding=1)
x = torch.randn(2, 5, 4, 2, requires_grad=True)
y = nhwc(conv(nchw(x)))
dy = torch.randn_like(y)
fx.update({"conv.x": x, "conv.weight": conv.weight, "conv.bias": conv.bias, "conv.y": y, "conv.dy": dy})
fx.update({"conv." + k: v for k, v in grads([("weight", conv.weight), ("bias", conv.bias)], y, dy, x).items()})

# masked_conv2d: kernel 3, rows below the centre zeroed.
mconv = torch.nn.Conv2d(2, 2, 3, padding=1)
mask = torch.ones_like(mconv.weight)
mask[:, :, 2:, :] = 0
x = torch.randn(1, 4, 3, 2, requires_grad=True)
w = mconv.weight * mask
y = nhwc(F.conv2d(nchw(x), w, mconv.bias, padding=1))
dy = torch.randn_like(y)
y.backward(dy)
fx.update({"masked.x": x, "masked.weight": mconv.weight, "masked.bias": mconv.bias, "masked.y": y,
           "masked.dy": dy, "masked.dx": x.grad, "masked.dweight": mconv.weight.grad * mask,
           "masked.dbias": mconv.bias.grad})

# resnet_block with non-trivial layer-norm affine parameters.
blk = PreActBlock(2)
with torch.no_grad():
    for ln in (blk.ln1, blk.ln2):
        ln.weight.copy_(1 + 0.3 * torch.randn(2))
        ln.bias.copy_(0.2 * torch.randn(2))
x = torch.randn(2, 3, 3, 2, requires_grad=True)
y = blk(x)
dy = torch.randn_like(y)
named = list(blk.named_parameters())
fx.update({"block.x": x, "block.y": y, "block.dy": dy})
fx.update({"block." + n: p for n, p in named})
fx.update({"block." + k: v for k, v in grads(named, y, dy, x).items()})


def encoder_fixture(prefix, enc, img):
    """z = enc(img), a random dz, the parameters and their gradients under `prefix`."""
    z = enc(img)
    dz = torch.randn_like(z)
    named = list(enc.named_parameters())
    fx.update({prefix + "img": img, prefix + "z": z, prefix + "dz": dz})
    fx.update({prefix + n: p for n, p in named})
    fx.update({prefix + k: v for k, v in grads(named, z, dz).items()})


# resnet_patch_encoder: 1 grey 8x8 image, 4x4 patches, stride 3, padding 1 -> 3x3 grid, 2 channels.
enc = PatchEncoder(1, 2, 1, 4, 3, 1)
encoder_fixture("enc.", enc, torch.randn(1, 8, 8, 1))
# The same with a stride-2 stem: 1 grey 10x10 image, 6x6 patches, stride 4, padding 1 -> 3x3 grid,
# each patch 6x6 -> 3x3 pixels after the stem; 2 channels, 1 block.
enc = PatchEncoder(1, 2, 1, 6, 4, 1, stem_stride=2)
encoder_fixture("enc2.", enc, torch.randn(1, 10, 10, 1))

write("image.txt", fx, "gen_image.py: conv2d, masked_conv2d, resnet_block, resnet_patch_encoder (NHWC)")
