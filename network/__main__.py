"""Print the DLKUNet variants' sizes and forward cost: ``python -m network``."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from network import MODELS, get_model

SWIN_UNET_PARAMS = 27.17e6  # Swin-Unet's parameter count as commonly quoted (FACTS.md)


def count_parameters(model):
    return sum(p.numel() for p in model.parameters())


def forward_gflops(model, size=224, in_channels=1):
    """FLOPs of one forward pass on a ``(1, in_channels, size, size)`` input, in units of 1e9."""
    model.eval()
    x = torch.zeros(1, in_channels, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / 1e9


def main():
    print(f"{'variant':<10} {'classes':>7} {'parameters':>12} {'% Swin-Unet':>12} {'GFLOPs@224':>11}")
    for num_classes in (9, 4):
        for name in MODELS:
            model = get_model(name, num_classes=num_classes)
            params = count_parameters(model)
            print(
                f"{'DLKUNet-' + name:<10} {num_classes:>7} {params:>12,} "
                f"{100 * params / SWIN_UNET_PARAMS:>11.2f}% {forward_gflops(model):>11.1f}"
            )


if __name__ == "__main__":
    main()
