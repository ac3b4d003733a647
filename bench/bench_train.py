"""Training throughput (images/s) of DLKUNet-S/M/L at 224x224, default memory format vs channels_last.

    python bench/bench_train.py                      # CPU, batch 1, median of 3 steps per case
    python bench/bench_train.py --full               # batch 12 (the release's), 1 warm-up + 5 steps (GPU)
    python bench/bench_train.py --device cuda --amp  # on a GPU, bf16/fp16 autocast

Each step is the training loop's own ``dlkunet.training.train_step`` (forward, CE + Dice loss,
backward, Adam) on random 1x224x224 slices with 9 classes. The two layouts start from the same
weights and their steps alternate in one process, so a busy machine slows both alike; the
figure is the batch size over the median step time. A CPU step at 224 px takes seconds per
slice, so the quick default (2-3 minutes on 2 idle cores) counts its first step among the three
and lets the median drop it, where ``--full`` warms up first.
"""

import argparse
import statistics
import time

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import print_rows, row

from dlkunet.losses import SegmentationLoss
from dlkunet.training import train_step
from network import MODELS, get_model

LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def make_trainer(weights, name, memory_format, device, amp):
    """A model (from ``weights``), its Adam optimizer and AMP scaler, ready for ``train_step``."""
    model = get_model(name, num_classes=9)
    model.load_state_dict(weights)
    model = model.to(device, memory_format=memory_format).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5, weight_decay=1e-5)
    fp16 = amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    return model, optimizer, torch.amp.GradScaler("cuda", enabled=fp16)


def step_seconds(trainer, images, labels, loss_fn, memory_format, device, amp):
    """Wall time of one training step, waiting for the device to finish."""
    model, optimizer, scaler = trainer
    start = time.perf_counter()
    train_step(model, images, labels, loss_fn, optimizer, scaler, 0, amp, memory_format)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def throughput(name, batch, steps, warmup, device, amp):
    """``{layout: images/s}`` for one variant, the layouts' steps interleaved after ``warmup`` each."""
    torch.manual_seed(0)
    weights = get_model(name, num_classes=9).state_dict()
    images = torch.randn(batch, 1, 224, 224, device=device)
    labels = torch.randint(0, 9, (batch, 224, 224), device=device)
    loss_fn = SegmentationLoss("fixed", (1.0, 1.0))
    trainers = {layout: make_trainer(weights, name, fmt, device, amp) for layout, fmt in LAYOUTS.items()}
    times = {layout: [] for layout in LAYOUTS}
    for repeat in range(warmup + steps):
        for layout, fmt in LAYOUTS.items():
            seconds = step_seconds(trainers[layout], images, labels, loss_fn, fmt, device, amp)
            if repeat >= warmup:
                times[layout].append(seconds)
    return {layout: batch / statistics.median(values) for layout, values in times.items()}


def run(full=False, variants=tuple(MODELS), device="cpu", amp=False):
    """Rows of training images/s per variant: contiguous (baseline) vs channels_last (ours)."""
    batch, steps, warmup = (12, 5, 1) if full else (1, 3, 0)
    device = torch.device(device)
    where = "CUDA" if device.type == "cuda" else "CPU"
    rows = []
    for name in variants:
        speed = throughput(name, batch, steps, warmup, device, amp)
        rows.append(
            row(
                f"train DLKUNet-{name} 224px b{batch} ({where})",
                "contiguous",
                speed["contiguous"],
                "channels_last",
                speed["channels_last"],
                "images/s",
                higher_is_better=True,
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="the release's batch of 12 and more steps")
    parser.add_argument("--variants", nargs="+", default=list(MODELS), help="variants to time")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--amp", action="store_true", help="bf16/fp16 autocast (CUDA only)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print_rows(run(args.full, args.variants, args.device, args.amp))


if __name__ == "__main__":
    main()
