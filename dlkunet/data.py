"""Reading the prepared Synapse and ACDC files: list files, layouts, validation, the dataset class.

Both dataloader scripts (``Dataloader_Synapse.py``, ``Dataloader_ACDC.py``) only say where each
split of their forms lives; this module does the rest:

- list files (``.txt`` or ``.list``, one name per line, with or without the file's extension),
  and the fallback to the sorted files of the split's folder, with a one-line warning, when the
  list folder or list file is missing;
- reading ``.npz`` (``np.load(..., allow_pickle=False)``) and HDF5 files (h5py) without ever
  unpickling;
- checking each item as it is read: keys present, image and label shapes equal, label values
  whole numbers in ``[0, num_classes)``; every failure is a ``DatasetError`` naming the file;
- ``SegmentationDataset``: slice items ``(H, W)`` for training, volume items ``(D, H, W)`` for
  testing, and slices grouped back into volumes (``as_volumes``) for validation.

Writing goes through ``dlkunet.files.atomic_write`` (temporary file beside the target, then a
rename), so an interrupted run never leaves a half-written file that the loader would accept.
"""

import logging
import os
import re
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

from dlkunet.errors import DatasetError
from dlkunet.files import atomic_write

LIST_SUFFIXES = (".txt", ".list")
DATA_SUFFIXES = (".npy.h5", ".h5", ".npz")
logger = logging.getLogger("dlkunet.data")
_warned = set()


def warn_once(message):
    """Log ``message`` as a warning the first time it is seen in this process."""
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


# ---------------------------------------------------------------------------------------------
# List files and split folders


def read_list(path):
    """Names in a list file: one per line, surrounding blanks and empty lines ignored.

    Raises:
        DatasetError: the file cannot be read or holds no name.
    """
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read list file {path}: {err}") from err
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"list file {path} is empty; expected one file name per line")
    return names


def find_list(list_dirs, stems):
    """The first existing ``<dir>/<stem><.txt|.list>`` over ``list_dirs`` and ``stems``, or None."""
    for folder in list_dirs:
        if folder is None:
            continue
        for stem in stems:
            for suffix in LIST_SUFFIXES:
                path = Path(folder) / f"{stem}{suffix}"
                if path.is_file():
                    return path
    return None


def strip_data_suffix(name):
    """``case0001.npy.h5`` -> ``case0001``; names without a known data suffix are unchanged."""
    for suffix in DATA_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def folder_files(folder, suffix):
    """Sorted files in ``folder`` ending with ``suffix``; hidden (temporary) files are left out."""
    return sorted(
        Path(folder) / name
        for name in os.listdir(folder)
        if name.endswith(suffix) and not name.startswith(".") and (Path(folder) / name).is_file()
    )


def split_files(folder, suffix, list_path, list_hint, split):
    """The files of one split, in list order, or sorted when there is no list.

    Args:
        folder: where the split's files are.
        suffix: their extension (``.npz``, ``.npy.h5``, ``.h5``).
        list_path: the list file, or None when none was found.
        list_hint: what was looked for (for the warning), e.g. ``"lists_Synapse/train.txt"``.
        split: the split's name (for messages).

    Raises:
        DatasetError: a listed file does not exist (both the list and the file are named), or the
            split has no file at all.
    """
    folder = Path(folder)
    if list_path is None:
        files = folder_files(folder, suffix)
        warn_once(
            f"no list file {list_hint}; using the {len(files)} {suffix} files in {folder} for '{split}'"
        )
    else:
        present = set(os.listdir(folder))
        files = []
        for name in read_list(list_path):
            # A name may carry its extension or not; ".h5" volumes may be named "<case>.npy.h5".
            candidates = [strip_data_suffix(name) + s for s in DATA_SUFFIXES if s.endswith(suffix)]
            found = [c for c in candidates if c in present]
            if not found:
                looked = " or ".join(str(folder / c) for c in candidates)
                raise DatasetError(f"list file {list_path} names '{name}' but {looked} does not exist")
            files.append(folder / found[0])
    if not files:
        raise DatasetError(f"no {suffix} files for split '{split}' in {folder}")
    return files


def require_folder(path, what, looked_for):
    """Raise a DatasetError naming ``what`` and the layouts looked for unless ``path`` is a folder."""
    if not Path(path).is_dir():
        raise DatasetError(f"{what} {path} does not exist or is not a folder; looked for {looked_for}")


# ---------------------------------------------------------------------------------------------
# Reading and checking one file


def read_arrays(path, keys):
    """Read ``keys`` (and ``spacing`` if present) from an ``.npz`` or HDF5 file, without pickle.

    Returns:
        ``(arrays, spacing)``: a dict key -> numpy array, and a tuple of floats or None.

    Raises:
        DatasetError: the file is missing, unreadable, truncated, holds pickled objects, or lacks
            one of ``keys`` (the keys found are named).
    """
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                found = list(data.files)
                arrays = {key: data[key] for key in keys if key in found}
                spacing = data["spacing"] if "spacing" in found else None
        else:
            with h5py.File(path, "r") as data:
                found = list(data.keys())
                arrays = {key: data[key][()] for key in keys if key in found}
                spacing = data["spacing"][()] if "spacing" in found else data.attrs.get("spacing")
    except FileNotFoundError as err:
        raise DatasetError(f"data file {path} does not exist") from err
    except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile, RuntimeError) as err:
        raise DatasetError(f"cannot read data file {path} (truncated or not a valid file?): {err}") from err
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise DatasetError(f"data file {path} has no {missing}; expected keys {list(keys)}, found {found}")
    if spacing is not None:
        spacing = tuple(float(s) for s in np.asarray(spacing).ravel())
    return arrays, spacing


def check_pair(image, label, path, num_classes, ndim):
    """Validate an image/label pair read from ``path``; return ``(float32 image, uint8 label)``.

    Args:
        image, label: arrays of ``ndim`` dimensions (2 for a slice, 3 for a volume).
        num_classes: labels must be whole numbers in ``[0, num_classes)``.

    Raises:
        DatasetError: wrong number of dimensions, shapes that differ, non-numeric arrays, NaN or
            infinite intensities, or label values that are fractional or outside the class range
            (the values found are named).
    """
    kind = "slice (H, W)" if ndim == 2 else "volume (D, H, W)"
    for name, array in (("image", image), ("label", label)):
        if array.ndim != ndim:
            raise DatasetError(f"{path}: {name} should be a {kind}, found shape {array.shape}")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise DatasetError(f"{path}: {name} should be numeric, found dtype {array.dtype}")
    if image.shape != label.shape:
        raise DatasetError(f"{path}: image shape {image.shape} and label shape {label.shape} differ")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise DatasetError(f"{path}: image holds NaN or infinite values")
    if label.size:
        low, high = label.min(), label.max()
        if low < 0 or high >= num_classes:
            raise DatasetError(
                f"{path}: label values should be in 0..{num_classes - 1}, found {low:g}..{high:g}"
            )
        if np.issubdtype(label.dtype, np.floating) and np.any(label != np.round(label)):
            raise DatasetError(f"{path}: label holds fractional values; expected class indices")
    return image.astype(np.float32, copy=False), label.astype(np.uint8, copy=False)


# ---------------------------------------------------------------------------------------------
# Slices back into volumes

SLICE_NAME = re.compile(r"^(?P<case>.+?)_slice(?P<tag>[A-Za-z]*)_?(?P<index>\d+)$")


def slice_key(path):
    """``(volume name, slice number)`` of a slice file such as ``patient001_frame01_slice_3.npz``.

    ``case0005_slice012`` (Synapse), ``patient001_frame01_slice_3`` (SSL4MIS) and names with a
    frame tag such as ``case_001_sliceED_3`` (tag kept in the volume name) are understood.

    Raises:
        DatasetError: the name does not end with a slice number.
    """
    name = strip_data_suffix(Path(path).name)
    match = SLICE_NAME.match(name)
    if match is None:
        raise DatasetError(
            f"cannot tell which volume slice file {path} belongs to; expected a name like <volume>_slice_<n>"
        )
    case = match["case"] + (f"_{match['tag']}" if match["tag"] else "")
    return case, int(match["index"])


def group_slices(files):
    """Group slice files by volume: a list of ``(volume name, [files sorted by slice number])``."""
    volumes = {}
    for path in files:
        case, index = slice_key(path)
        volumes.setdefault(case, []).append((index, path))
    return [(case, [p for _, p in sorted(items)]) for case, items in sorted(volumes.items())]


# ---------------------------------------------------------------------------------------------
# The dataset


class SegmentationDataset(torch.utils.data.Dataset):
    """Items read from a list of files, validated one by one as they are read.

    Args:
        files: one entry per item: a path (a slice or a volume file), or for ``kind="stack"`` a
            ``(volume name, [slice paths])`` pair from ``group_slices``.
        kind: ``"slice"`` (file holds ``(H, W)``), ``"volume"`` (``(D, H, W)``) or ``"stack"``
            (slices stacked along a new first axis into a volume).
        keys: the image and label keys in the files (``("image", "label")`` or ``("img", "label")``).
        num_classes: labels must lie in ``[0, num_classes)``.
        transform: applied to slice items only (a ``RandomGenerator`` for training).

    Items are dicts. Slices: ``image`` float32 ``(H, W)``, ``label`` uint8 ``(H, W)``,
    ``case_name`` (file name without extension). Volumes: ``image`` float32 ``(D, H, W)``,
    ``label`` uint8 ``(D, H, W)``, ``case_name``, and ``spacing`` (mm, ``(D, H, W)`` order) when
    the file carries it.
    """

    def __init__(self, files, kind, keys, num_classes, transform=None):
        self.files = list(files)
        self.kind = kind
        self.keys = tuple(keys)
        self.num_classes = num_classes
        self.transform = transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, idx):
        if self.kind == "stack":
            return self.read_stack(*self.files[idx])
        path = self.files[idx]
        arrays, spacing = read_arrays(path, self.keys)
        ndim = 2 if self.kind == "slice" else 3
        image, label = check_pair(arrays[self.keys[0]], arrays[self.keys[1]], path, self.num_classes, ndim)
        sample = {"image": image, "label": label, "case_name": strip_data_suffix(Path(path).name)}
        if self.kind == "slice":
            return self.transform(sample) if self.transform is not None else sample
        if spacing is not None:
            sample["spacing"] = spacing
        return sample

    def read_stack(self, case, paths):
        """Read the slice files of one volume and stack them into ``(D, H, W)`` arrays."""
        images, labels, spacing = [], [], None
        for path in paths:
            arrays, spacing = read_arrays(path, self.keys)
            image, label = check_pair(arrays[self.keys[0]], arrays[self.keys[1]], path, self.num_classes, 2)
            if images and image.shape != images[0].shape:
                raise DatasetError(
                    f"{path}: slice shape {image.shape} differs from {images[0].shape} of {paths[0]}, "
                    f"another slice of volume {case}"
                )
            images.append(image)
            labels.append(label)
        sample = {"image": np.stack(images), "label": np.stack(labels), "case_name": case}
        if spacing is not None and len(spacing) == 3:
            sample["spacing"] = spacing
        return sample


# ---------------------------------------------------------------------------------------------
# Writing


def write_npz(path, **arrays):
    """Write arrays to an uncompressed ``.npz`` (fast to read in training), atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def write_h5(path, **arrays):
    """Write arrays as HDF5 datasets (gzip level 1 for 3D ones), atomically."""

    def write(f):
        with h5py.File(f, "w") as h5:
            for key, value in arrays.items():
                value = np.asarray(value)
                if value.ndim == 3:
                    h5.create_dataset(key, data=value, compression="gzip", compression_opts=1)
                else:
                    h5.create_dataset(key, data=value)

    atomic_write(path, write)


def write_lines(path, lines):
    """Write a list file, one name per line, atomically."""
    atomic_write(path, lambda f: f.write("".join(f"{line}\n" for line in lines).encode()))


def file_holds(path, arrays):
    """True when ``path`` exists, reads cleanly and holds exactly ``arrays`` (same keys, equal values).

    Used by the preparation scripts to leave files that are already right untouched.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        found, _ = read_arrays(path, list(arrays))
    except DatasetError:
        return False
    return all(
        found[key].shape == np.shape(value) and np.array_equal(found[key], value)
        for key, value in arrays.items()
    )


def text_holds(path, lines):
    """True when the text file ``path`` holds exactly ``lines``, one per line."""
    try:
        return Path(path).read_text() == "".join(f"{line}\n" for line in lines)
    except (OSError, UnicodeDecodeError):
        return False
