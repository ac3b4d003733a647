"""Make TransUNet's Synapse training form from the raw BTCV download (``RawData/Training``).

For each case ``img/imgNNNN.nii.gz`` + ``label/labelNNNN.nii.gz`` (read with SimpleITK, volumes
``(D, H, W)`` in the axis order ``GetArrayFromImage`` gives):

- CT numbers clipped to the window [-125, 275] HU and scaled to [0, 1] (float32);
- the 13 raw labels remapped to the 8 classes of the paper (spleen 1, right kidney 2, left
  kidney 3, gallbladder 4, liver 5 (raw 6), stomach 6 (raw 7), aorta 7 (raw 8), pancreas 8
  (raw 11)); esophagus, veins and adrenals become background;
- the 12 standard test cases (0001-0004, 0008, 0022, 0025, 0029, 0032, 0035, 0036, 0038) go to
  ``test_vol_h5/caseNNNN.npy.h5`` as volumes, every other case to ``train_npz/`` as axial slices
  ``caseNNNN_sliceSSS.npz``; lists ``lists_Synapse/train.txt`` and ``test_vol.txt``;
- the voxel spacing (mm, ``(D, H, W)`` order) is stored in every file under ``spacing``.

Re-running over finished output rewrites nothing that is already right; files are written to a
hidden temporary name and renamed, so an interrupted run leaves no half-written file::

    python datasets/prepare_synapse.py --raw data/RawData/Training --out data/Synapse
    python Train_Synapse.py --root_path data/Synapse --list_dir data/Synapse/lists_Synapse
"""

import argparse
import re
import sys
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from dlkunet import prepare  # noqa: E402
from dlkunet.errors import DatasetError, run_main  # noqa: E402

IMAGE_NAME = re.compile(r"^img(\d+)\.nii(\.gz)?$")


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Prepare Synapse (BTCV) raw NIfTI into TransUNet's npz/h5 form.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--raw", required=True, help="folder holding img/ and label/ (RawData/Training)")
    parser.add_argument("--out", required=True, help="output root (train_npz/, test_vol_h5/, lists_Synapse/)")
    return parser


def find_raw_folder(raw):
    """The folder with ``img/`` and ``label/``: ``raw``, ``raw/Training`` or ``raw/RawData/Training``."""
    for folder in (Path(raw), Path(raw) / "Training", Path(raw) / "RawData" / "Training"):
        if (folder / "img").is_dir() and (folder / "label").is_dir():
            return folder
    raise DatasetError(f"raw Synapse folder {raw} has no img/ and label/ folders (expected RawData/Training)")


def list_cases(folder):
    """Sorted ``(case id, image path, label path)``; every image needs its label file."""
    cases = []
    for path in sorted((folder / "img").iterdir()):
        match = IMAGE_NAME.match(path.name)
        if match is None:
            continue
        case_id = match[1]
        label = folder / "label" / path.name.replace("img", "label", 1)
        if not label.is_file():
            raise DatasetError(f"image {path} has no label file; expected {label}")
        cases.append((case_id, path, label))
    if not cases:
        raise DatasetError(f"no imgNNNN.nii.gz files in {folder / 'img'}")
    return cases


def prepare_case(out, case_id, image_path, label_path):
    """Window, remap and write one case; returns ``(split, list entries)``."""
    hu, spacing = prepare.read_nifti(image_path)
    raw_label, _ = prepare.read_nifti(label_path)
    if hu.ndim != 3 or hu.shape != raw_label.shape:
        raise DatasetError(
            f"{image_path} has shape {hu.shape} but {label_path} has {raw_label.shape}; "
            "expected equal 3D volumes"
        )
    label = prepare.remap_synapse_labels(raw_label, label_path)
    return prepare.write_synapse_case(out, case_id, prepare.window_hu(hu), label, spacing)


def main(args):
    folder = find_raw_folder(args.raw)
    cases = list_cases(folder)
    train, test = [], []
    for case_id, image_path, label_path in tqdm(cases, desc="Synapse cases", unit="case"):
        split, names = prepare_case(args.out, case_id, image_path, label_path)
        (test if split == "test" else train).extend(names)
    prepare.write_synapse_lists(args.out, train, test)
    n_test = sum(1 for case_id, _, _ in cases if prepare.synapse_split(case_id) == "test")
    print(
        f"{len(cases) - n_test} training cases ({len(train)} slices) and {n_test} test cases in {args.out}; "
        f"use --root_path {args.out} --list_dir {Path(args.out) / 'lists_Synapse'}"
    )


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
