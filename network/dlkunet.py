"""DLKUNet: a U-shaped 2D segmentation network with depthwise large-kernel attention.

Zhu, Tang, Ma, Liang, Wang. "DLKUNet: A Lightweight and Efficient Network With Depthwise
Large Kernel for Medical Image Segmentation". Int. J. Imaging Systems and Technology 35(1),
2025, doi:10.1002/ima.70035.

Module and parameter names follow the public release (``inc``, ``down1``.., ``up1``..,
``outc``) so that its checkpoints load with ``strict=True``; the same scheme extends to any
depth, which is how DLKUNet-S (3 levels) and DLKUNet-L (5 levels) are built.
"""

import torch
import torch.nn.functional as F
from torch import nn


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3x3 conv followed by a pointwise 1x1 conv, both with bias."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class LargeKernelAttention(nn.Module):
    """Depthwise 5x5, then depthwise 7x7 with dilation 3, then 1x1; the result gates the input.

    The two depthwise convs together see a 23x23 window at a fraction of a dense kernel's cost.
    """

    def __init__(self, channels):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, channels, 5, padding=2, groups=channels)
        self.conv_spatial = nn.Conv2d(channels, channels, 7, padding=9, dilation=3, groups=channels)
        self.conv1 = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x * self.conv1(self.conv_spatial(self.conv0(x)))


class DLKBlock(nn.Module):
    """Two [depthwise-separable conv, BN, ReLU] steps, then large-kernel attention.

    The paper calls this block "EBlock" in the encoder and "DFB" in the decoder; both are
    the same computation.
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.dwconv1 = DepthwiseSeparableConv(in_channels, out_channels)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.dwconv2 = DepthwiseSeparableConv(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.lka = LargeKernelAttention(out_channels)

    def forward(self, x):
        x = F.relu(self.bn1(self.dwconv1(x)), inplace=True)
        x = F.relu(self.bn2(self.dwconv2(x)), inplace=True)
        return self.lka(x)


class Down(nn.Module):
    """Halve the resolution with 2x2 max pooling, then a block that changes the width."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DLKBlock(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class Up(nn.Module):
    """Transposed-conv upsampling that halves the width, skip concatenation, then a block."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = DLKBlock(in_channels, out_channels)

    def forward(self, x, skip):
        x = self.up(x)
        # Odd sizes lose a row or column to pooling; zero-pad the upsampled map back to the skip's.
        dh = skip.shape[-2] - x.shape[-2]
        dw = skip.shape[-1] - x.shape[-1]
        if dh or dw:
            x = F.pad(x, [dw // 2, dw - dw // 2, dh // 2, dh - dh // 2])
        return self.conv(torch.cat([skip, x], dim=1))


class OutConv(nn.Module):
    """1x1 conv from the base width to one logit map per class."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, x):
        return self.conv(x)


class DLKUNet(nn.Module):
    """DLKUNet with ``depth`` resolution levels and widths ``base_channels * 2**level``.

    Args:
        in_channels: channels of the input image (1 for CT and MRI slices).
        num_classes: output channels, background included.
        base_channels: width of the first level (96 in the paper).
        depth: number of resolution levels, 3 (S), 4 (M, the released network) or 5 (L).

    Input ``(N, in_channels, H, W)`` float, any H and W; output ``(N, num_classes, H, W)``
    logits. Sizes that do not divide by ``2**(depth - 1)`` are handled by padding in the
    decoder, so odd inputs work.
    """

    def __init__(self, in_channels=1, num_classes=9, base_channels=96, depth=4):
        super().__init__()
        if depth < 2:
            raise ValueError(f"DLKUNet needs at least 2 levels, got depth={depth}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.base_channels = base_channels
        self.depth = depth
        widths = [base_channels * 2**level for level in range(depth)]
        self.inc = DLKBlock(in_channels, widths[0])
        for i in range(1, depth):
            self.add_module(f"down{i}", Down(widths[i - 1], widths[i]))
        for i in range(1, depth):
            self.add_module(f"up{i}", Up(widths[depth - i], widths[depth - i - 1]))
        self.outc = OutConv(widths[0], num_classes)
        self._register_load_state_dict_pre_hook(_strip_wrapper_prefixes)

    def forward(self, x):
        skips = [self.inc(x)]
        for i in range(1, self.depth):
            skips.append(getattr(self, f"down{i}")(skips[-1]))
        x = skips.pop()
        for i in range(1, self.depth):
            x = getattr(self, f"up{i}")(x, skips.pop())
        return self.outc(x)


WRAPPER_PREFIXES = ("module.", "_orig_mod.")


def strip_wrapper_prefix(key):
    """``module.inc.bn1.weight`` -> ``inc.bn1.weight``: drop DataParallel/DDP/torch.compile prefixes."""
    while key.startswith(WRAPPER_PREFIXES):
        key = key.split(".", 1)[1]
    return key


def _strip_wrapper_prefixes(state_dict, prefix, *args):
    """Load-state-dict hook: accept checkpoints saved from a wrapped model."""
    for key in list(state_dict):
        if key.startswith(prefix):
            stripped = prefix + strip_wrapper_prefix(key[len(prefix) :])
            if stripped != key:
                state_dict[stripped] = state_dict.pop(key)


def dlkunet_s(**kwargs):
    return DLKUNet(depth=3, **kwargs)


def dlkunet_m(**kwargs):
    return DLKUNet(depth=4, **kwargs)


def dlkunet_l(**kwargs):
    return DLKUNet(depth=5, **kwargs)


MODELS = {"S": dlkunet_s, "M": dlkunet_m, "L": dlkunet_l}


def canonical_name(name):
    """Map ``S``, ``dlkunet-m``, ``DLKUNet_L`` and the like to ``S``, ``M`` or ``L``."""
    key = str(name).strip().upper().replace("_", "-")
    if key.startswith("DLKUNET-"):
        key = key[len("DLKUNET-") :]
    if key not in MODELS:
        valid = ", ".join(list(MODELS) + [f"DLKUNet-{k}" for k in MODELS])
        raise ValueError(f"unknown DLKUNet variant {name!r}; valid names: {valid}")
    return key


def get_model(name, in_channels=1, num_classes=9, base_channels=96):
    """Build DLKUNet-S, -M or -L by name (``S``/``M``/``L`` or ``DLKUNet-S`` etc.).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    factory = MODELS[canonical_name(name)]
    return factory(in_channels=in_channels, num_classes=num_classes, base_channels=base_channels)
