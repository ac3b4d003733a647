"""Scoring time of one Synapse-like test volume: plain medpy (as released) vs dlkunet.metrics.

    python bench/bench_metrics.py            # 64 x 320 x 320 phantom, about a minute
    python bench/bench_metrics.py --full     # 148 x 512 x 512, a Synapse-sized CT volume

Both sides score the same prediction of the same phantom volume in one process. The baseline is
the public release's procedure: per class, medpy's ``dc`` and ``hd95`` on the whole volume with
the transunet convention. Ours is ``score_volume`` (one bounding-box pass, each class scored on
its crop, HD95 in voxels from a k-d tree over surface voxels) and ``hd95`` with spacing (medpy on
the crop). Every value is checked to be equal (``==``); the script fails otherwise. medpy runs
once per row (it is slow), ours takes the median of 3 runs.
"""

import argparse

import common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
from common import median_seconds, print_rows, row
from medpy.metric import binary
from scipy.ndimage import binary_erosion

from dlkunet.metrics import hd95, score_volume
from dlkunet.phantoms import synapse_case
from dlkunet.prepare import SYNAPSE_RAW_TO_CLASS

NUM_CLASSES = 9
LIVER = 5


def phantom_pair(size, slices):
    """A Synapse-like ground truth and a plausible prediction of it (shifted, one organ eroded,
    one organ missing from half the slices, one false-positive blob); plus the spacing (mm)."""
    _, raw, spacing = synapse_case(seed=0, index=1, size=size, slices=slices)
    gt = SYNAPSE_RAW_TO_CLASS[raw]
    pred = np.roll(gt, shift=(1, 2, -2), axis=(0, 1, 2))
    gallbladder = pred == 4
    pred[gallbladder & ~binary_erosion(gallbladder, iterations=2)] = 0
    pancreas = pred == 8
    pancreas[: slices // 2] = False
    pred[(pred == 8) & ~pancreas] = 0
    pred[slices // 3 : slices // 3 + 3, size // 10 : size // 10 + 12, size // 10 : size // 10 + 12] = 1
    return pred, gt, spacing


def medpy_scores(pred, gt, num_classes):
    """The release's scoring: full-volume masks per class, medpy, transunet convention."""
    scores = np.zeros((num_classes - 1, 2))
    for k in range(1, num_classes):
        p, g = pred == k, gt == k
        if p.sum() > 0 and g.sum() > 0:
            scores[k - 1] = binary.dc(p, g), binary.hd95(p, g)
        elif p.sum() > 0:
            scores[k - 1] = 1, 0
    return scores


def timed(fn, repeats):
    """(median seconds, result of one more call)."""
    seconds = median_seconds(fn, repeats=repeats, warmup=0 if repeats == 1 else 1)
    return seconds, fn()


def check_equal(name, ours, reference):
    if not np.array_equal(ours, reference):
        raise SystemExit(f"{name}: dlkunet.metrics differs from medpy:\nours {ours}\nmedpy {reference}")


def run(full=False):
    """Rows: a whole volume (8 organs), the liver's HD95 in voxels and in mm."""
    size, slices = (512, 148) if full else (320, 64)
    pred, gt, spacing = phantom_pair(size, slices)
    shape = "x".join(str(n) for n in gt.shape)
    liver_pred, liver_gt = pred == LIVER, gt == LIVER

    base, reference = timed(lambda: medpy_scores(pred, gt, NUM_CLASSES), 1)
    ours, scores = timed(lambda: score_volume(pred, gt, NUM_CLASSES), 3)
    check_equal("score_volume", scores, reference)
    rows = [row(f"score volume {shape}, 8 organs", "medpy", base, "ours", ours, "s/volume")]

    base, reference = timed(lambda: binary.hd95(liver_pred, liver_gt), 1)
    ours, value = timed(lambda: hd95(liver_pred, liver_gt), 3)
    check_equal("hd95 (voxels)", value, reference)
    rows.append(row("HD95 liver, voxels", "medpy", base, "ours", ours, "s"))

    base, reference = timed(lambda: binary.hd95(liver_pred, liver_gt, voxelspacing=spacing), 1)
    ours, value = timed(lambda: hd95(liver_pred, liver_gt, spacing), 3)
    check_equal("hd95 (mm)", value, reference)
    rows.append(row("HD95 liver, mm", "medpy", base, "ours", ours, "s"))
    return rows


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="148 x 512 x 512 (a Synapse CT volume)")
    args = parser.parse_args()
    rows = run(args.full)
    print_rows(rows, title="scoring: plain medpy vs dlkunet.metrics (values checked equal)")


if __name__ == "__main__":
    main()
