"""Forward time per 224x224 slice of DLKUNet-S/M/L, default memory format vs channels_last.

    python bench/bench_forward.py            # batch 2, 3 timed runs per case
    python bench/bench_forward.py --full     # batch 12 (the training batch), 7 timed runs

Both layouts run the same weights on the same input in one process, alternating, so the ratio is
robust to a busy machine; the outputs are checked to agree within float tolerance.
"""

import argparse

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import median_seconds, print_rows, row

from network import MODELS, get_model


def time_forward(model, x, memory_format, repeats):
    model = model.to(memory_format=memory_format)
    x = x.contiguous(memory_format=memory_format)
    with torch.inference_mode():
        seconds = median_seconds(lambda: model(x), repeats=repeats, warmup=1)
        out = model(x)
    return seconds, out


def run(full=False, variants=tuple(MODELS)):
    """Rows of ms per slice for each variant, contiguous (baseline) vs channels_last (ours)."""
    batch, repeats = (12, 7) if full else (2, 3)
    torch.manual_seed(0)
    rows = []
    for name in variants:
        model = get_model(name, num_classes=9).eval()
        x = torch.randn(batch, 1, 224, 224)
        base, ref = time_forward(model, x, torch.contiguous_format, repeats)
        ours, out = time_forward(model, x, torch.channels_last, repeats)
        torch.testing.assert_close(out.contiguous(), ref, rtol=1e-3, atol=1e-4)
        rows.append(
            row(
                f"forward DLKUNet-{name} 224px (CPU)",
                "contiguous",
                1000 * base / batch,
                "channels_last",
                1000 * ours / batch,
                "ms/slice",
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="training batch size and more repeats")
    parser.add_argument("--variants", nargs="+", default=list(MODELS), help="variants to time")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print_rows(run(args.full, args.variants))


if __name__ == "__main__":
    main()
