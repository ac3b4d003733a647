"""Make the ACDC training form (MT-UNet's, or SSL4MIS's) from the raw download (``training/``).

For each ``patientNNN/`` the end-diastole and end-systole frames named by ``Info.cfg`` (``ED:``
and ``ES:``) are read with SimpleITK (``patientNNN_frameFF.nii.gz`` and ``..._gt.nii.gz``,
volumes ``(D, H, W)``), intensities scaled per volume to [0, 1] (min-max), labels kept
(1 RV, 2 Myo, 3 LV) and the spacing (mm, ``(D, H, W)`` order) stored in every file.

Patients are split 70/10/20 into train/valid/test by a fixed rule on the sorted patient ids
(``dlkunet.prepare.acdc_patient_split``): ``round(0.2 n)`` evenly spaced patients are test,
``round(0.1 n)`` evenly spaced ones of the rest are valid, at least one each (``--print_split``
shows the result). For the 100 ACDC training patients: test = 3, 8, 13, ..., 98 (every fifth
from 3), valid = 6, 16, 26, ..., 96 (every tenth from 6), train = the other 70, so each
pathology group of twenty has four test and two valid patients.

- ``--format mtunet`` (default): ``train/`` and ``valid/`` slices ``<frame>_slice_<i>.npz``,
  ``test/<frame>.npz`` volumes, keys ``img``/``label``, lists ``lists_ACDC/{train,valid,test}.txt``.
- ``--format ssl4mis``: ``data/<frame>.h5`` volumes, ``data/slices/<frame>_slice_<i>.h5``
  training slices, keys ``image``/``label``, lists ``train_slices.list``, ``train.list``,
  ``val.list``, ``test.list``.

Re-running over finished output rewrites nothing that is already right; files are written to a
hidden temporary name and renamed, so an interrupted run leaves no half-written file::

    python datasets/prepare_acdc.py --raw data/ACDC_raw/training --out data/ACDC
    python Train_ACDC.py --root_path data/ACDC --list_dir data/ACDC/lists_ACDC
"""

import argparse
import re
import sys
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

from dlkunet import prepare  # noqa: E402
from dlkunet.errors import DatasetError, run_main  # noqa: E402

PATIENT_NAME = re.compile(r"^patient\d+$")


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Prepare ACDC raw NIfTI (ED and ES frames) into MT-UNet's or SSL4MIS's form.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--raw", required=True, help="folder holding patientNNN/ (the download's training/)")
    parser.add_argument("--out", required=True, help="output root")
    parser.add_argument("--format", default="mtunet", choices=prepare.ACDC_FORMATS, help="output form")
    parser.add_argument("--print_split", action="store_true", help="print the patient split and stop")
    return parser


def find_patients(raw):
    """Sorted patient folders under ``raw`` (or ``raw/training``, ``raw/database/training``)."""
    for folder in (Path(raw), Path(raw) / "training", Path(raw) / "database" / "training"):
        if folder.is_dir():
            patients = sorted(p for p in folder.iterdir() if p.is_dir() and PATIENT_NAME.match(p.name))
            if patients:
                return patients
    raise DatasetError(
        f"raw ACDC folder {raw} has no patientNNN/ folders (expected the download's training/)"
    )


def read_info(path):
    """The ``Info.cfg`` fields as a dict of strings; ``ED`` and ``ES`` must be frame numbers."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from err
    info = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    for key in ("ED", "ES"):
        if not info.get(key, "").isdigit():
            raise DatasetError(
                f"{path} should give the {key} frame as '{key}: <number>', found {info.get(key)!r}"
            )
    return info


def read_frame(patient_dir, frame):
    """``(image, label, spacing)`` of frame ``frame`` of one patient; the label checked to be 0..3."""
    name = f"{patient_dir.name}_frame{frame:02d}"
    image_path, label_path = patient_dir / f"{name}.nii.gz", patient_dir / f"{name}_gt.nii.gz"
    for path in (image_path, label_path):
        if not path.is_file():
            raise DatasetError(f"{patient_dir / 'Info.cfg'} names frame {frame} but {path} does not exist")
    image, spacing = prepare.read_nifti(image_path)
    label, _ = prepare.read_nifti(label_path)
    if image.ndim != 3 or image.shape != label.shape:
        raise DatasetError(f"{image_path} has shape {image.shape} but {label_path} has {label.shape}")
    return name, prepare.normalize_minmax(image), prepare.check_acdc_labels(label, label_path), spacing


def main(args):
    patients = find_patients(args.raw)
    split = prepare.acdc_patient_split([p.name for p in patients])
    if args.print_split:
        for part in ("train", "valid", "test"):
            print(f"{part}: {' '.join(p for p in sorted(split) if split[p] == part)}")
        return

    entries = {}
    for patient_dir in tqdm(patients, desc="ACDC patients", unit="patient"):
        info = read_info(patient_dir / "Info.cfg")
        for frame in sorted({int(info["ED"]), int(info["ES"])}):
            name, image, label, spacing = read_frame(patient_dir, frame)
            frame_entries = prepare.write_acdc_frame(
                args.out, name, split[patient_dir.name], image, label, spacing, args.format
            )
            prepare.merge_entries(entries, frame_entries)
    prepare.write_acdc_lists(args.out, entries, args.format)

    counts = {part: sum(1 for s in split.values() if s == part) for part in ("train", "valid", "test")}
    list_dir = Path(args.out) / "lists_ACDC" if args.format == "mtunet" else Path(args.out)
    print(
        f"{counts['train']} train, {counts['valid']} valid, {counts['test']} test patients in {args.out}; "
        f"use --root_path {args.out} --list_dir {list_dir}"
    )


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
