"""Testing checkpoints on test volumes: what Test_Synapse.py and Test_ACDC.py share.

One run loads the test volumes once, builds the network once, and tests every checkpoint that
``--model_load`` names (a file, a folder or a glob) in epoch order. For each checkpoint the
network predicts one volume at a time (``dlkunet.inference.predict_volume``: batched slices,
resize, argmax, resize back, as released) while worker processes score the volumes already
predicted (``dlkunet.metrics.score_volume``) and write any requested NIfTI files and overlays.

Per checkpoint the log gets the public release's lines, which its tools and ``LogProcess.py``
parse, with class names added beside the class numbers::

    Model loaded from <path>
    idx <i> case <name> mean_dice <d> mean_hd95 <h>
    Mean class <k> (<name>) mean_dice <d> mean_hd95 <h>
    Testing performance in best val model: mean_dice : <d> mean_hd95 : <h>

and ``<log folder>/<checkpoint name>/summary.json`` gets every per-case, per-class value, the
metric convention and the HD95 unit.
"""

import argparse
import glob
import math
import multiprocessing
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from dlkunet.checkpoint import load_weights
from dlkunet.distributed import resolve_device
from dlkunet.errors import CheckpointError, DatasetError, DLKUNetError
from dlkunet.files import write_json
from dlkunet.inference import predict_volume
from dlkunet.logparse import epoch_from_name
from dlkunet.logs import setup_logging
from dlkunet.metrics import CONVENTIONS, case_means, score_volume, summarize
from network import get_model

CHECKPOINT_SUFFIXES = (".pth", ".pt")


def add_test_arguments(parser, root_path, list_dir=None):
    """The flags both test scripts take, grouped; ``root_path``/``list_dir`` are the dataset's defaults."""
    data = parser.add_argument_group("data")
    data.add_argument("--root_path", default=root_path, help="data root holding the test volumes")
    data.add_argument("--list_dir", default=list_dir, help="folder of list files (default: beside the data)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="M", help="DLKUNet variant: S, M (the released network) or L")
    model.add_argument("--base_channels", type=int, default=96, help="width of the first level")
    model.add_argument(
        "--model_load",
        default="./result/Pth/model_epoch_10_checkpoint.pth",
        help="checkpoint file, folder of checkpoints, or glob (quote it); tested in epoch order",
    )
    test = parser.add_argument_group("testing")
    test.add_argument("--patch_size", type=int, default=224, help="slice size the network sees")
    test.add_argument(
        "--batch_size",
        type=int,
        default=24,
        help="slices per forward pass (GPUs gain from large batches; on a CPU 1 is fastest)",
    )
    test.add_argument(
        "--num_workers", type=int, default=4, help="processes scoring volumes (0: in this process)"
    )
    test.add_argument("--metric_convention", choices=CONVENTIONS, default="transunet", help="empty-mask rule")
    test.add_argument(
        "--hd95_unit",
        choices=("voxel", "mm"),
        default="voxel",
        help="voxel (as published) or mm (needs spacing)",
    )
    test.add_argument("--device", default="auto", help="auto (CUDA when there is a GPU), cpu, cuda or cuda:N")
    test.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="autocast on CUDA")
    out = parser.add_argument_group("output")
    out.add_argument("--log_path", default="./result/Test/running.log", help="log file (appended to)")
    out.add_argument(
        "--test_save_path",
        default=None,
        help="write <case>_pred/_img/_gt.nii.gz and PNG overlays under this folder",
    )
    out.add_argument(
        "--overlay_slices", type=int, default=3, help="PNG overlays per case with --test_save_path"
    )
    return parser


def check_args(args):
    """Refuse flag values that cannot work, before anything is loaded."""
    for flag in ("patch_size", "batch_size", "base_channels"):
        if getattr(args, flag) < 1:
            raise DLKUNetError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.num_workers < 0 or args.overlay_slices < 0:
        raise DLKUNetError("--num_workers and --overlay_slices must be 0 or more")
    args.device = str(resolve_device(args.device))


def checkpoint_order(path):
    """Sort key: checkpoints with an epoch in the name by epoch, then the rest (best, last) by name."""
    epoch = epoch_from_name(path)
    return (0, epoch, path.name) if epoch is not None else (1, 0, path.name)


def find_checkpoints(model_load):
    """The checkpoint files ``--model_load`` names, in epoch order.

    Raises:
        CheckpointError: nothing found, saying what was looked for.
    """
    path = Path(model_load)
    if path.is_file():
        return [path]
    if path.is_dir():
        found = [p for p in path.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES]
        if not found:
            raise CheckpointError(f"checkpoint folder {path} holds no .pth or .pt files")
    elif glob.has_magic(str(model_load)):
        found = [Path(p) for p in glob.glob(str(model_load)) if Path(p).is_file()]
        if not found:
            raise CheckpointError(f"no checkpoint file matches {model_load}")
    else:
        raise CheckpointError(f"checkpoint {path} does not exist (expected a file, a folder or a glob)")
    return sorted(found, key=checkpoint_order)


def load_volumes(dataset, hd95_unit):
    """Read every test volume once; with ``hd95_unit == "mm"`` each must carry its spacing."""
    if len(dataset) == 0:
        raise DatasetError(f"the test split in {getattr(dataset, 'folder', '?')} lists no volumes")
    volumes = [dataset[i] for i in range(len(dataset))]
    for volume, source in zip(volumes, dataset.files, strict=True):
        spacing = volume.get("spacing")
        if spacing is not None and (
            len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing)
        ):
            raise DatasetError(f"{source}: spacing {spacing} is not 3 positive numbers (mm, D H W order)")
        if hd95_unit == "mm" and spacing is None:
            raise DatasetError(
                f"--hd95_unit mm needs the voxel spacing, but test volume {volume['case_name']} ({source}) "
                "stores none; use --hd95_unit voxel or data prepared with spacing"
            )
    return volumes


def build_model(args, num_classes):
    """The network, on its device, channels_last, in eval mode (weights come per checkpoint)."""
    try:
        model = get_model(
            args.model, in_channels=1, num_classes=num_classes, base_channels=args.base_channels
        )
    except ValueError as err:
        raise DLKUNetError(f"--model: {err}") from err
    return model.to(args.device, memory_format=torch.channels_last).eval()


def scoring_pool(num_workers):
    """Worker processes for scoring, already starting, or None to score in this process.

    forkserver (spawn where it does not exist) rather than fork: the parent holds torch's
    threads and perhaps a CUDA context, which a forked child must not inherit. The server
    imports this module once and forks the workers from it; a first empty job starts them
    at once, so their start-up overlaps loading the data and building the network.
    """
    if num_workers == 0:
        return None
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
    else:
        context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(num_workers, mp_context=context)
    pool.submit(int)
    return pool


def score_case(pred, volume, num_classes, convention, spacing, save_folder, class_names, overlay_slices):
    """Score one predicted volume (in a worker) and write its outputs when ``save_folder`` is set.

    Returns:
        ``(K-1, 2)`` float64 per-class ``(dice, hd95)`` from ``score_volume``.
    """
    scores = score_volume(pred, volume["label"], num_classes, convention, spacing)
    if save_folder is not None:
        from dlkunet.visualize import save_overlays  # only workers that write pictures need it

        save_nifti_set(pred, volume, save_folder)
        save_overlays(
            volume["image"],
            volume["label"],
            pred,
            class_names,
            volume["case_name"],
            save_folder,
            overlay_slices,
        )
    return scores


def save_nifti_set(pred, volume, folder):
    """Write ``<case>_pred/_img/_gt.nii.gz`` with the volume's spacing (1 mm where it has none)."""
    from dlkunet.prepare import write_nifti  # SimpleITK is only needed when predictions are saved

    spacing = volume.get("spacing") or (1.0, 1.0, 1.0)
    arrays = {"pred": pred.astype(np.uint8), "img": volume["image"].astype(np.float32), "gt": volume["label"]}
    for kind, array in arrays.items():
        write_nifti(Path(folder) / f"{volume['case_name']}_{kind}.nii.gz", array, spacing)


def test_checkpoint(model, path, volumes, args, class_names, pool, logger):
    """Load one checkpoint, predict and score every volume, log the release's lines, write summary.json."""
    started = time.perf_counter()
    state = load_weights(model, path)
    logger.info(f"Model loaded from {path}")
    epoch = epoch_from_name(path)
    if epoch is None and isinstance(state, dict) and isinstance(state.get("epoch"), int):
        epoch = state["epoch"]
        logger.info(f"Checkpoint epoch {epoch}")
    save_folder = None
    if args.test_save_path:
        save_folder = make_folder(Path(args.test_save_path) / path.stem, "--test_save_path")
    scores = predict_and_score(model, volumes, args, class_names, pool, save_folder, logger)
    summary = summarize(scores, args.metric_convention)
    log_means(summary, class_names, len(volumes), args.metric_convention, logger)
    summary_path = make_folder(Path(args.log_path).parent / path.stem, "--log_path") / "summary.json"
    record = summary_record(path, epoch, volumes, scores, summary, class_names, args)
    write_json(summary_path, record, indent=1, allow_nan=False)
    logger.info(
        f"Tested {path}: {len(volumes)} volumes in {time.perf_counter() - started:.1f} s; {summary_path}"
    )
    return record


def predict_and_score(model, volumes, args, class_names, pool, save_folder, logger):
    """Predict volume after volume; score in ``pool`` meanwhile; log each case in order. ``(N, K-1, 2)``."""
    num_classes = len(class_names)
    scores = [None] * len(volumes)
    pending = deque()

    def collect():
        i, future = pending.popleft()
        scores[i] = wait_for(future, save_folder)
        log_case(i, volumes[i]["case_name"], scores[i], args.metric_convention, logger)

    for i, volume in enumerate(volumes):
        pred = predict_volume(model, volume["image"], args.patch_size, args.batch_size, args.device, args.amp)
        # Workers get the image only when they write it out; the label map is all scoring needs.
        keep = ("image", "label", "case_name", "spacing") if save_folder else ("label", "case_name")
        job = (
            pred,
            {key: volume[key] for key in keep if key in volume},
            num_classes,
            args.metric_convention,
            volume.get("spacing") if args.hd95_unit == "mm" else None,
            save_folder,
            class_names,
            args.overlay_slices,
        )
        if pool is None:
            pending.append((i, _Done(score_case, job)))
        else:
            pending.append((i, pool.submit(score_case, *job)))
        # Log finished cases as soon as they are in order; bound the queue so memory stays flat.
        while pending and (pending[0][1].done() or len(pending) > 2 * max(args.num_workers, 1)):
            collect()
    while pending:
        collect()
    return np.stack(scores)


class _Done:
    """Runs a job at once in this process and looks like a finished future (for --num_workers 0)."""

    def __init__(self, function, job):
        self.error, self.value = None, None
        try:
            self.value = function(*job)
        except Exception as err:  # re-raised by result(), as a future would
            self.error = err

    def done(self):
        return True

    def result(self):
        if self.error is not None:
            raise self.error
        return self.value


def wait_for(future, save_folder):
    """A scoring job's result, with worker failures a user can act on turned into one line."""
    try:
        return future.result()
    except OSError as err:
        raise DLKUNetError(f"cannot write test outputs to {save_folder}: {err}") from err
    except Exception as err:
        if type(err).__name__ == "BrokenProcessPool":
            raise DLKUNetError(
                "a scoring worker died (out of memory?); try a smaller --num_workers, or 0 to score here"
            ) from err
        raise


def log_case(index, case_name, score, convention, logger):
    mean_dice, mean_hd95 = case_means(score, convention)
    logger.info(f"idx {index} case {case_name} mean_dice {mean_dice:f} mean_hd95 {mean_hd95:f}")


def class_label(name):
    """``right kidney`` -> ``right_kidney``: one token, so every class line splits into the same fields."""
    return name.replace(" ", "_")


def log_means(summary, class_names, num_cases, convention, logger):
    """The release's per-class and overall lines; under ``strict`` also how many values were undefined."""
    for k, (dice, hd95) in enumerate(summary["class_means"], start=1):
        logger.info(f"Mean class {k} ({class_label(class_names[k])}) mean_dice {dice:f} mean_hd95 {hd95:f}")
    if convention == "strict":
        for k, (dice, hd95) in enumerate(summary["undefined"], start=1):
            logger.info(
                f"Undefined class {k} ({class_label(class_names[k])}) dice {dice} hd95 {hd95} "
                f"of {num_cases} cases (left out of the means)"
            )
    logger.info(
        f"Testing performance in best val model: mean_dice : {summary['mean_dice']:f} "
        f"mean_hd95 : {summary['mean_hd95']:f}"
    )


def finite_or_none(value):
    """JSON has no NaN: undefined values are written as null."""
    value = float(value)
    return value if math.isfinite(value) else None


def summary_record(path, epoch, volumes, scores, summary, class_names, args):
    """Everything one checkpoint's test produced, as plain JSON-able data."""
    names = class_names[1:]
    per_class = [
        {
            "class": k,
            "name": names[k - 1],
            "mean_dice": finite_or_none(summary["class_means"][k - 1, 0]),
            "mean_hd95": finite_or_none(summary["class_means"][k - 1, 1]),
            "undefined_dice": int(summary["undefined"][k - 1, 0]),
            "undefined_hd95": int(summary["undefined"][k - 1, 1]),
        }
        for k in range(1, len(class_names))
    ]
    per_case = []
    for volume, score in zip(volumes, scores, strict=True):
        mean_dice, mean_hd95 = case_means(score, args.metric_convention)
        classes = {
            name: {"dice": finite_or_none(d), "hd95": finite_or_none(h)} for name, (d, h) in zip(names, score)
        }
        per_case.append(
            {
                "case": volume["case_name"],
                "spacing": list(volume["spacing"]) if volume.get("spacing") else None,
                "mean_dice": finite_or_none(mean_dice),
                "mean_hd95": finite_or_none(mean_hd95),
                "classes": classes,
            }
        )
    return {
        "checkpoint": str(path),
        "epoch": epoch,
        "metric_convention": args.metric_convention,
        "hd95_unit": args.hd95_unit,
        "mean_dice": finite_or_none(summary["mean_dice"]),
        "mean_hd95": finite_or_none(summary["mean_hd95"]),
        "per_class": per_class,
        "per_case": per_case,
        "args": {
            key: value for key, value in vars(args).items() if isinstance(value, str | int | float | bool)
        },
    }


def make_folder(path, flag):
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DLKUNetError(f"{flag}: cannot create folder {path}: {err.strerror}") from err
    return path


def run_tests(args, make_dataset, class_names, name):
    """A whole test run: check flags, find checkpoints, load data and model once, test each checkpoint.

    Args:
        args: the parsed flags of ``add_test_arguments``.
        make_dataset: builds the test dataset (volume items) from ``args``.
        class_names: background first; its length is the class count.
        name: the dataset's name for the log.

    Returns:
        The list of ``summary.json`` records, one per checkpoint.
    """
    check_args(args)
    checkpoints = find_checkpoints(args.model_load)
    pool = scoring_pool(args.num_workers)
    try:
        volumes = load_volumes(make_dataset(args), args.hd95_unit)
        model = build_model(args, len(class_names))

        logger = setup_logging(args.log_path, f"dlkunet.test.{name}")
        logger.info(str(args))
        unit = "voxels" if args.hd95_unit == "voxel" else "mm"
        logger.info(
            f"{name}: {len(volumes)} test volumes, {len(checkpoints)} checkpoint(s), "
            f"metric convention {args.metric_convention}, HD95 in {unit}"
        )

        return [
            test_checkpoint(model, path, volumes, args, class_names, pool, logger) for path in checkpoints
        ]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
