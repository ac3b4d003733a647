"""Every benchmark of the project in one command, printed as one table of ratios and figures.

    python bench/run_all.py                 # small sizes: a few minutes on 2 CPU cores
    python bench/run_all.py --full          # full sizes (Synapse-sized volumes, batch 12)
    python bench/run_all.py --only forward metrics --json bench/results/cpu.json
    python bench/run_all.py --markdown      # the table also as Markdown, as the README quotes it

Each row compares a baseline with this project's way on the same input in the same process:
model forward (default memory format vs channels_last), training steps (the same), augmentation
(the release's scipy rotate + zoom vs one warp), scoring (plain medpy vs cropped/k-d tree HD95)
and volume inference (slice by slice vs batched). "ratio" is how many times better ours is.
"""

import argparse
import json
import os
import platform
import time

import bench_augment
import bench_forward
import bench_inference
import bench_metrics
import bench_train
import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import markdown_rows, print_rows


def run_augment(full):
    return bench_augment.run(samples=48 if full else 24, repeats=5 if full else 3)


def run_inference(full):
    # On a CPU one slice per pass is the fastest per slice (it stays in cache); batches pay off on
    # GPUs. Both batch sizes are shown there so the table says so rather than hides it.
    sizes = (16,) if torch.cuda.is_available() else (1, 16)
    return [r for size in sizes for r in bench_inference.run(full=full, batch_size=size)]


BENCHMARKS = {
    "forward": bench_forward.run,
    "train": bench_train.run,
    "augment": run_augment,
    "metrics": bench_metrics.run,
    "inference": run_inference,
}


def machine():
    """One line naming the machine the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {gpu}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; python {platform.python_version()}"
    )


def get_args_parser():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="full sizes instead of the quick ones")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--json", help="also write the rows and the machine line to this JSON file")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    return parser


def main(args):
    names = args.only or list(BENCHMARKS)
    threads = torch.get_num_threads()
    rows = []
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        started = time.perf_counter()
        rows += BENCHMARKS[name](full=args.full)
        torch.set_num_threads(threads)  # some benchmarks pin one thread, as in a DataLoader worker
        print(f"[bench] {name} done in {time.perf_counter() - started:.0f} s", flush=True)
    print()
    print(f"machine: {machine()}")
    print_rows(rows)
    if args.markdown:
        print(f"\nMeasured with `python bench/run_all.py` on {machine()}:\n")
        print(markdown_rows(rows))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "full": args.full, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
