"""Training augmentation speed: the release's way against ``dlkunet.augment``, side by side.

Both apply the same random draws (rot90+flip, small rotation, or nothing; FACTS.md) to the same
512x512 phantom CT slices and resize them to the training size. The release's way rotates at
full size with ``scipy.ndimage.rotate`` (nearest) and then resizes with ``scipy.ndimage.zoom``
(cubic image, nearest label); ours resamples once (rotation and resize in one warp). One thread,
as in one DataLoader worker; samples/s per worker, median over repeats, run interleaved::

    python bench/bench_augment.py
    python bench/bench_augment.py --size 512 --output_size 224 --samples 64 --repeats 7
"""

import argparse
import statistics
import time

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import print_rows, row

from dlkunet.augment import augment, augment_released, draw_params
from dlkunet.phantoms import synapse_case
from dlkunet.prepare import remap_synapse_labels, window_hu


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Augmentation samples/s per worker: the release's scipy way vs ours.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=512, help="input slice size (Synapse CT is 512)")
    parser.add_argument("--output_size", type=int, default=224, help="training size")
    parser.add_argument("--samples", type=int, default=48, help="slices per timed pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per method (median reported)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the slices and the random draws")
    return parser


def make_slices(size, samples, seed):
    """``samples`` phantom CT slices ``(image float32 [0, 1], label uint8)`` of ``size`` x ``size``."""
    hu, raw, _ = synapse_case(seed, 0, size, samples)
    image, label = window_hu(hu), remap_synapse_labels(raw, "phantom")
    return [(image[i], label[i]) for i in range(samples)]


def time_pass(function, slices, params, output_size):
    """Seconds to augment every slice once with its drawn parameters."""
    start = time.perf_counter()
    for (image, label), p in zip(slices, params):
        function(image, label, p, output_size)
    return time.perf_counter() - start


def run(size=512, output_size=224, samples=48, repeats=5, seed=0):
    """One row: samples/s per worker, the release's way (baseline) vs one warp (ours)."""
    torch.set_num_threads(1)  # one DataLoader worker computes on one thread
    slices = make_slices(size, samples, seed)
    generator = torch.Generator().manual_seed(seed)
    params = [draw_params(generator) for _ in slices]
    out = (output_size, output_size)
    methods = {"released": augment_released, "ours": augment}
    for function in methods.values():  # warm-up: first-call overheads
        time_pass(function, slices[:4], params[:4], out)
    times = {name: [] for name in methods}
    for _ in range(repeats):  # interleaved, so a busy machine slows both alike
        for name, function in methods.items():
            times[name].append(time_pass(function, slices, params, out))
    rate = {name: samples / statistics.median(seconds) for name, seconds in times.items()}
    n_rot = sum(p["angle"] is not None for p in params)
    n_flip = sum(p["k"] is not None for p in params)
    name = f"augment {size}->{output_size} ({n_flip} flip, {n_rot} rot /{samples})"
    return [row(name, "scipy", rate["released"], "warp", rate["ours"], "samples/s", higher_is_better=True)]


def main(args):
    rows = run(args.size, args.output_size, args.samples, args.repeats, args.seed)
    print(f"torch {torch.__version__}, 1 thread (one DataLoader worker), median of {args.repeats}")
    print_rows(rows)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
