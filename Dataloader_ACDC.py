"""ACDC cardiac MRI for training (2D slices), validation and testing (3D volumes).

Reads the two preprocessed forms in circulation, whichever is on disk (FACTS.md):

- MT-UNet's (used by DLKUNet): ``<root>/{train,valid}/*.npz`` slices and ``<root>/test/*.npz``
  volumes, keys ``img`` and ``label``, lists ``lists_ACDC/{train,valid,test}.txt`` whose lines
  include ``.npz``;
- SSL4MIS's: ``<root>/data/slices/*.h5`` training slices and ``<root>/data/*.h5`` volumes, keys
  ``image`` and ``label``, lists ``train_slices.list``, ``val.list``, ``test.list``.

Without a list folder or list file a split is every file of its folder, sorted, with a warning
(in the SSL4MIS form ``val`` and ``test`` share ``data/``, so they then hold the same volumes).
Make phantom data and look at it::

    python datasets/make_phantoms.py --form acdc-mtunet --out /tmp/acdc
    python Dataloader_ACDC.py --root_path /tmp/acdc --list_dir /tmp/acdc/lists_ACDC
"""

import argparse
from pathlib import Path

from dlkunet.augment import RandomGenerator
from dlkunet.data import SegmentationDataset, find_list, group_slices, require_folder, split_files
from dlkunet.errors import DatasetError, run_main

__all__ = ["ACDCdataset", "CLASS_NAMES", "NUM_CLASSES", "RandomGenerator"]

NUM_CLASSES = 4
CLASS_NAMES = ["background", "RV", "Myo", "LV"]
# form -> split -> (folder, file suffix, list names to look for, item kind)
FORMS = {
    "mtunet": {
        "train": ("train", ".npz", ("train",), "slice"),
        "valid": ("valid", ".npz", ("valid", "val"), "slice"),
        "test": ("test", ".npz", ("test",), "volume"),
    },
    "ssl4mis": {
        "train": ("data/slices", ".h5", ("train_slices",), "slice"),
        "valid": ("data", ".h5", ("val", "valid"), "volume"),
        "test": ("data", ".h5", ("test",), "volume"),
    },
}
KEYS = {"mtunet": ("img", "label"), "ssl4mis": ("image", "label")}
SPLIT_ALIASES = {"train": "train", "valid": "valid", "val": "valid", "test": "test"}
LOOKED_FOR = "MT-UNet's form (train/, valid/, test/ with .npz) or SSL4MIS's (data/, data/slices/ with .h5)"


def detect_form(base_dir):
    """``"mtunet"`` or ``"ssl4mis"``, from the folders under ``base_dir``."""
    require_folder(base_dir, "ACDC data root", LOOKED_FOR)
    root = Path(base_dir)
    if any((root / name).is_dir() for name in ("train", "valid", "test")):
        return "mtunet"
    if (root / "data").is_dir():
        return "ssl4mis"
    raise DatasetError(f"ACDC data root {base_dir} holds neither form; looked for {LOOKED_FOR}")


class ACDCdataset(SegmentationDataset):
    """The ACDC training slices, validation slices or volumes, or test volumes.

    Args:
        base_dir: the data root (``--root_path``).
        list_dir: the folder of list files; None looks in ``<root>/lists_ACDC`` and ``<root>``
            (SSL4MIS keeps its lists in the root, which is also searched when ``list_dir`` lacks them).
        split: ``"train"``, ``"valid"`` (or ``"val"``), ``"test"``.
        transform: applied to slice items (``RandomGenerator``).
        as_volumes: give volume items for every split: slice files are grouped by volume
            (``<volume>_slice_<n>``) and stacked in slice order. Without it, items are what the
            form stores: slices for MT-UNet's train/valid and SSL4MIS's train, volumes otherwise.

    Items: see ``dlkunet.data.SegmentationDataset``; labels 0..3 in ``CLASS_NAMES`` order.

    Raises:
        DatasetError: a missing root or split folder, an unreadable list, a listed file that
            does not exist (at construction); a bad file (when its item is read).
    """

    def __init__(self, base_dir, list_dir, split, transform=None, as_volumes=False):
        if split not in SPLIT_ALIASES:
            raise DatasetError(f"unknown ACDC split '{split}'; expected train, valid (val) or test")
        self.split = SPLIT_ALIASES[split]
        self.form = detect_form(base_dir)
        folder_name, suffix, list_names, kind = FORMS[self.form][self.split]
        folder = Path(base_dir) / folder_name
        require_folder(folder, f"ACDC '{self.split}' folder", LOOKED_FOR)
        default_dirs = [Path(base_dir) / "lists_ACDC", Path(base_dir)]
        list_dirs = [list_dir, Path(base_dir)] if list_dir else default_dirs
        list_path = find_list(list_dirs, list_names)
        hint = f"{list_names[0]}{'.txt' if self.form == 'mtunet' else '.list'} in {list_dirs[0]}"
        files = split_files(folder, suffix, list_path, hint, self.split)
        if as_volumes and kind == "slice":
            files, kind = group_slices(files), "stack"
        super().__init__(files, kind, KEYS[self.form], NUM_CLASSES, transform)
        self.folder, self.list_path = folder, list_path


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Summarise an ACDC dataset as the training and test scripts will read it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--root_path", required=True, help="data root (MT-UNet or SSL4MIS form)")
    parser.add_argument("--list_dir", default=None, help="folder of list files (default: next to the data)")
    parser.add_argument("--img_size", type=int, default=224, help="training size the slices are augmented to")
    return parser


def main(args):
    for split in ("train", "valid", "test"):
        dataset = ACDCdataset(args.root_path, args.list_dir, split, as_volumes=split != "train")
        item = dataset[0]
        print(
            f"{dataset.form} {split}: {len(dataset)} items in {dataset.folder}; {item['case_name']} "
            f"image {item['image'].shape} labels {sorted(set(item['label'].ravel().tolist()))}"
        )
    train = ACDCdataset(args.root_path, args.list_dir, "train", RandomGenerator(args.img_size))
    print(f"augmented train[0]: image {tuple(train[0]['image'].shape)}")


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
