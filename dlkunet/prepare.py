"""From raw volumes to the training forms: intensity windows, label remaps, splits, file writers.

Shared by ``datasets/prepare_synapse.py``, ``datasets/prepare_acdc.py`` (which read the raw
NIfTI downloads) and ``dlkunet.phantoms`` (which makes the same forms from synthetic volumes), so
phantom data and prepared real data are written by the same code.

Every writer is idempotent and atomic: a file that already holds the right arrays is left as it
is (so re-running over finished output rewrites nothing), and new files are written to a hidden
temporary name and renamed, so an interrupted run leaves no partial file a loader would accept.
"""

import gzip
import struct
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from dlkunet.data import file_holds, text_holds, write_h5, write_lines, write_npz
from dlkunet.errors import DatasetError
from dlkunet.files import atomic_path


def check_nifti_complete(path):
    """Raise a DatasetError unless the NIfTI file ``path`` holds all the voxels its header promises.

    SimpleITK reads a truncated ``.nii.gz`` without complaint and fills the missing voxels with
    zeros, so the file is checked first: the gzip stream must end properly, and the data must be
    as long as the header's dimensions, voxel size and data offset say (NIfTI-1 headers).
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            header = f.read(348)
            size = len(header)
            while chunk := f.read(1 << 24):
                size += len(chunk)
    except (OSError, EOFError) as err:
        raise DatasetError(f"cannot read NIfTI file {path} (missing or truncated): {err}") from err
    if len(header) < 348:
        raise DatasetError(f"NIfTI file {path} is too short for a header ({len(header)} bytes)")
    endian = "<" if struct.unpack("<i", header[:4])[0] == 348 else ">"
    if struct.unpack(f"{endian}i", header[:4])[0] != 348:
        return  # not NIfTI-1; SimpleITK decides
    dims = struct.unpack(f"{endian}8h", header[40:56])
    bitpix = struct.unpack(f"{endian}h", header[72:74])[0]
    offset = struct.unpack(f"{endian}f", header[108:112])[0]
    expected = int(offset) + int(np.prod(dims[1 : 1 + max(min(dims[0], 7), 0)])) * bitpix // 8
    if size < expected:
        raise DatasetError(f"NIfTI file {path} is truncated: {size} bytes, its header needs {expected}")


def read_nifti(path):
    """``(array (D, H, W), spacing (D, H, W) in mm)`` of a NIfTI file, read with SimpleITK.

    Raises:
        DatasetError: the file is missing, truncated or not an image SimpleITK can read.
    """
    check_nifti_complete(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
        raise DatasetError(f"cannot read NIfTI file {path} (not NIfTI?): {reason}") from err
    return sitk.GetArrayFromImage(image), tuple(float(s) for s in reversed(image.GetSpacing()))


# ---------------------------------------------------------------------------------------------
# Synapse

# The standard split of the 30 labelled cases (TransUNet's lists, FACTS.md).
SYNAPSE_TEST_CASES = (
    "0001",
    "0002",
    "0003",
    "0004",
    "0008",
    "0022",
    "0025",
    "0029",
    "0032",
    "0035",
    "0036",
    "0038",
)
SYNAPSE_TRAIN_CASES = (
    "0005", "0006", "0007", "0009", "0010", "0021", "0023", "0024", "0026",
    "0027", "0028", "0030", "0031", "0033", "0034", "0037", "0039", "0040",
)  # fmt: skip
HU_WINDOW = (-125.0, 275.0)
SYNAPSE_NUM_RAW_LABELS = 14  # background + 13 organs
# Raw BTCV label -> class: spleen, right kidney, left kidney, gallbladder, liver, stomach, aorta,
# pancreas become 1..8 (the paper's legend order); esophagus, veins and adrenals become 0.
SYNAPSE_RAW_TO_CLASS = np.array([0, 1, 2, 3, 4, 0, 5, 6, 7, 0, 0, 8, 0, 0], dtype=np.uint8)

# Where each Synapse layout puts its files: (train folder, test folder, list folder, list names).
SYNAPSE_LAYOUTS = {
    "transunet": ("train_npz", "test_vol_h5", "lists_Synapse", ("train.txt", "test_vol.txt")),
    "release": ("data/train", "data/test", "list", ("train.txt", "test.txt")),
}


def synapse_split(case_id):
    """``"test"`` for the 12 standard test cases, ``"train"`` for every other case id."""
    return "test" if case_id in SYNAPSE_TEST_CASES else "train"


def window_hu(hu):
    """CT numbers (HU) clipped to [-125, 275] and scaled to [0, 1], float32."""
    low, high = HU_WINDOW
    return ((np.clip(hu.astype(np.float32), low, high) - low) / (high - low)).astype(np.float32)


def remap_synapse_labels(raw, source):
    """Raw BTCV labels (0..13) to the 9 classes; ``source`` names the file in errors.

    Raises:
        DatasetError: values outside 0..13 or fractional values.
    """
    if raw.size and (raw.min() < 0 or raw.max() >= SYNAPSE_NUM_RAW_LABELS):
        raise DatasetError(
            f"{source}: raw Synapse labels should be in 0..13, found {raw.min():g}..{raw.max():g}"
        )
    as_int = raw.astype(np.int64)
    if np.issubdtype(raw.dtype, np.floating) and np.any(as_int != raw):
        raise DatasetError(f"{source}: raw Synapse labels hold fractional values")
    return SYNAPSE_RAW_TO_CLASS[as_int]


def write_synapse_case(out, case_id, image, label, spacing=None, layout="transunet"):
    """Write one prepared case: axial slices for a training case, one HDF5 volume for a test case.

    Args:
        out: the output root.
        case_id: four digits, e.g. ``"0005"``; the split follows ``synapse_split``.
        image: ``(D, H, W)`` float32 in [0, 1]; label: ``(D, H, W)`` uint8 classes 0..8.
        spacing: ``(D, H, W)`` voxel size in mm, stored in each file; None stores none.
        layout: ``"transunet"`` or ``"release"`` (see ``SYNAPSE_LAYOUTS``).

    Returns:
        ``(split, names)``: the list entries (slice or volume names without extension).
        Files that already hold these arrays are not rewritten.
    """
    train_dir, test_dir, _, _ = SYNAPSE_LAYOUTS[layout]
    extra = {} if spacing is None else {"spacing": np.asarray(spacing, dtype=np.float64)}
    case = f"case{case_id}"
    if synapse_split(case_id) == "test":
        arrays = {"image": image, "label": label, **extra}
        path = Path(out) / test_dir / f"{case}.npy.h5"
        if not file_holds(path, arrays):
            write_h5(path, **arrays)
        return "test", [case]
    names = []
    for index in range(image.shape[0]):
        name = f"{case}_slice{index:03d}"
        arrays = {"image": image[index], "label": label[index], **extra}
        path = Path(out) / train_dir / f"{name}.npz"
        if not file_holds(path, arrays):
            write_npz(path, **arrays)
        names.append(name)
    return "train", names


def write_lists(folder, lists):
    """Write list files (``{file name: [entries]}``) into ``folder``, leaving identical ones alone."""
    for file_name, entries in lists.items():
        path = Path(folder) / file_name
        if not text_holds(path, entries):
            write_lines(path, entries)


def write_synapse_lists(out, train_names, test_names, layout="transunet"):
    """The train and test list files of ``layout`` under ``out``."""
    _, _, list_dir, (train_list, test_list) = SYNAPSE_LAYOUTS[layout]
    write_lists(Path(out) / list_dir, {train_list: train_names, test_list: test_names})


# ---------------------------------------------------------------------------------------------
# ACDC

ACDC_FORMATS = ("mtunet", "ssl4mis")


def acdc_patient_split(patient_ids):
    """The fixed 70/10/20 train/valid/test split of sorted patient ids.

    Rule: of ``n`` patients in sorted order, ``n_test = max(1, round(0.2 n))`` evenly spaced
    ones (positions ``floor((j + 0.5) n / n_test)``) are test; of the rest, ``n_valid =
    max(1, round(0.1 n))`` evenly spaced ones are valid; the others train. It depends on the
    ids only, gives each patient exactly one split, and for the 100 ACDC training patients
    spreads test and valid evenly over the five pathology groups (20 consecutive ids each).

    Returns:
        dict patient id -> ``"train" | "valid" | "test"``.

    Raises:
        DatasetError: fewer than 3 patients (one per split is the least that makes sense).
    """
    ids = sorted(patient_ids)
    n = len(ids)
    if n < 3:
        raise DatasetError(f"ACDC needs at least 3 patients for a train/valid/test split, found {n}")
    split = {pid: "train" for pid in ids}
    n_test = max(1, round(0.2 * n))
    for j in range(n_test):
        split[ids[int((j + 0.5) * n / n_test)]] = "test"
    rest = [pid for pid in ids if split[pid] == "train"]
    n_valid = max(1, round(0.1 * n))
    for j in range(n_valid):
        split[rest[int((j + 0.5) * len(rest) / n_valid)]] = "valid"
    return split


def normalize_minmax(volume):
    """Per-volume min-max scaling to [0, 1], float32 (a constant volume becomes zeros)."""
    volume = volume.astype(np.float32)
    low, high = float(volume.min()), float(volume.max())
    if high <= low:
        return np.zeros_like(volume)
    return ((volume - low) / (high - low)).astype(np.float32)


def check_acdc_labels(label, source):
    """Raise a DatasetError naming ``source`` unless ``label`` holds whole numbers in 0..3."""
    if label.size and (label.min() < 0 or label.max() > 3):
        raise DatasetError(f"{source}: ACDC labels should be in 0..3, found {label.min():g}..{label.max():g}")
    if np.issubdtype(label.dtype, np.floating) and np.any(label != np.round(label)):
        raise DatasetError(f"{source}: ACDC labels hold fractional values")
    return label.astype(np.uint8)


def _write_if_changed(path, writer, arrays):
    if not file_holds(path, arrays):
        writer(path, **arrays)


def write_acdc_frame(out, name, split, image, label, spacing=None, fmt="mtunet"):
    """Write one prepared ACDC frame (e.g. ``patient001_frame01``) in ``fmt``.

    Args:
        image: ``(D, H, W)`` float32 in [0, 1]; label: ``(D, H, W)`` uint8 classes 0..3.
        split: ``"train" | "valid" | "test"``.
        spacing: ``(D, H, W)`` mm, stored in each file; None stores none.
        fmt: ``"mtunet"``: slices ``<split>/<name>_slice_<i>.npz`` for train and valid, a volume
            ``test/<name>.npz`` for test, keys ``img``/``label``. ``"ssl4mis"``: the volume
            ``data/<name>.h5`` for every split, plus slices ``data/slices/<name>_slice_<i>.h5``
            for train, keys ``image``/``label``.

    Returns:
        dict list name -> entries this frame adds (see ``write_acdc_lists``).
    """
    out = Path(out)
    extra = {} if spacing is None else {"spacing": np.asarray(spacing, dtype=np.float64)}
    slices = [f"{name}_slice_{i}" for i in range(image.shape[0])]
    if fmt == "mtunet":
        if split == "test":
            _write_if_changed(
                out / "test" / f"{name}.npz", write_npz, {"img": image, "label": label, **extra}
            )
            return {"test.txt": [f"{name}.npz"]}
        for i, slice_name in enumerate(slices):
            arrays = {"img": image[i], "label": label[i], **extra}
            _write_if_changed(out / split / f"{slice_name}.npz", write_npz, arrays)
        return {f"{split}.txt": [f"{s}.npz" for s in slices]}
    _write_if_changed(out / "data" / f"{name}.h5", write_h5, {"image": image, "label": label, **extra})
    if split != "train":
        return {"val.list" if split == "valid" else "test.list": [name]}
    for i, slice_name in enumerate(slices):
        arrays = {"image": image[i], "label": label[i], **extra}
        _write_if_changed(out / "data" / "slices" / f"{slice_name}.h5", write_h5, arrays)
    return {"train.list": [name], "train_slices.list": slices}


def write_acdc_lists(out, entries, fmt="mtunet"):
    """Write the list files collected from ``write_acdc_frame`` calls.

    ``mtunet``: ``lists_ACDC/{train,valid,test}.txt``, names with ``.npz``. ``ssl4mis``:
    ``train_slices.list``, ``train.list``, ``val.list``, ``test.list`` in ``out``.
    """
    names = ("train.txt", "valid.txt", "test.txt")
    if fmt == "ssl4mis":
        names = ("train_slices.list", "train.list", "val.list", "test.list")
    folder = Path(out) / "lists_ACDC" if fmt == "mtunet" else Path(out)
    write_lists(folder, {list_name: entries.get(list_name, []) for list_name in names})


def merge_entries(total, entries):
    """Append a frame's list entries (``write_acdc_frame``'s result) to the running ``total``."""
    for key, values in entries.items():
        total.setdefault(key, []).extend(values)
    return total


def write_nifti(path, array, spacing):
    """Write a ``(D, H, W)`` array as NIfTI with ``spacing`` given in ``(D, H, W)`` order, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in reversed(spacing)))  # SimpleITK orders axes (x, y, z)
    with atomic_path(path, suffix=".tmp.nii.gz") as tmp:
        sitk.WriteImage(image, str(tmp))
