"""Synapse multi-organ CT for training (2D slices) and testing (3D volumes).

Reads the two preprocessed layouts in circulation, whichever is on disk (FACTS.md):

- TransUNet's: ``<root>/train_npz/case0005_slice000.npz``, ``<root>/test_vol_h5/case0001.npy.h5``,
  lists ``train.txt`` and ``test_vol.txt``;
- the DLKUNet release's: ``<root>/train/*.npz``, ``<root>/test/*.npy.h5``, lists ``train.txt``
  and ``test.txt`` (``.list`` works too).

Without a list folder or list file a split is every file of its folder, sorted, with a warning.
Make phantom data and look at it::

    python datasets/make_phantoms.py --form synapse-transunet --out /tmp/synapse
    python Dataloader_Synapse.py --root_path /tmp/synapse --list_dir /tmp/synapse/lists_Synapse
"""

import argparse
from pathlib import Path

from dlkunet.augment import RandomGenerator
from dlkunet.data import SegmentationDataset, find_list, require_folder, split_files
from dlkunet.errors import DatasetError, run_main

__all__ = ["CLASS_NAMES", "NUM_CLASSES", "RandomGenerator", "Synapse_dataset"]

NUM_CLASSES = 9
CLASS_NAMES = [
    "background", "spleen", "right kidney", "left kidney", "gallbladder",
    "liver", "stomach", "aorta", "pancreas",
]  # fmt: skip
# layout -> split -> (folder, file suffix, list names to look for, item kind)
LAYOUTS = {
    "transunet": {
        "train": ("train_npz", ".npz", ("train",), "slice"),
        "test": ("test_vol_h5", ".h5", ("test_vol", "test"), "volume"),
    },
    "release": {
        "train": ("train", ".npz", ("train",), "slice"),
        "test": ("test", ".h5", ("test", "test_vol"), "volume"),
    },
}
SPLIT_ALIASES = {"train": "train", "test": "test", "test_vol": "test"}
LOOKED_FOR = "TransUNet's layout (train_npz/, test_vol_h5/) or the release's (train/, test/)"


def find_split_folder(base_dir, split):
    """``(layout name, folder)`` holding ``split`` under ``base_dir``, TransUNet's layout first."""
    require_folder(base_dir, "Synapse data root", LOOKED_FOR)
    for layout, splits in LAYOUTS.items():
        folder = Path(base_dir) / splits[split][0]
        if folder.is_dir():
            return layout, folder
    raise DatasetError(f"Synapse data root {base_dir} has no '{split}' folder; looked for {LOOKED_FOR}")


class Synapse_dataset(SegmentationDataset):  # noqa: N801 (the public release's name)
    """The Synapse training slices or test volumes.

    Args:
        base_dir: the data root (``--root_path``).
        list_dir: the folder of list files; None looks in ``<root>/lists_Synapse`` and
            ``<root>/../list``.
        split: ``"train"`` (slices) or ``"test"`` (volumes; ``"test_vol"`` is accepted too).
        transform: applied to training slices (``RandomGenerator``).
        list_file: a list file that replaces the split's default list (e.g. a validation list
            of test-form volumes).

    Items: see ``dlkunet.data.SegmentationDataset``. Training slices ``(H, W)``; volumes
    ``(D, H, W)`` with ``spacing`` when the file carries it. Labels are classes 0..8 in
    ``CLASS_NAMES`` order.

    Raises:
        DatasetError: a missing root or split folder, an unreadable list, a listed file that
            does not exist (at construction); a bad file (when its item is read).
    """

    def __init__(self, base_dir, list_dir, split, transform=None, list_file=None):
        if split not in SPLIT_ALIASES:
            raise DatasetError(f"unknown Synapse split '{split}'; expected train or test")
        self.split = SPLIT_ALIASES[split]
        self.layout, folder = find_split_folder(base_dir, self.split)
        _, suffix, list_names, kind = LAYOUTS[self.layout][self.split]
        if list_file is not None:
            if not Path(list_file).is_file():
                raise DatasetError(f"list file {list_file} does not exist")
            list_path, hint = Path(list_file), str(list_file)
        else:
            list_dirs = (
                [list_dir] if list_dir else [Path(base_dir) / "lists_Synapse", Path(base_dir).parent / "list"]
            )
            list_path = find_list(list_dirs, list_names)
            hint = f"{list_names[0]}.txt in {list_dirs[0]}"
        files = split_files(folder, suffix, list_path, hint, self.split)
        super().__init__(files, kind, ("image", "label"), NUM_CLASSES, transform)
        self.folder, self.list_path = folder, list_path


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Summarise a Synapse dataset as the training and test scripts will read it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--root_path", required=True, help="data root (train_npz/ and test_vol_h5/, or train/ and test/)"
    )
    parser.add_argument("--list_dir", default=None, help="folder of list files (default: next to the data)")
    parser.add_argument("--img_size", type=int, default=224, help="training size the slices are augmented to")
    return parser


def main(args):
    train = Synapse_dataset(args.root_path, args.list_dir, "train", RandomGenerator(args.img_size))
    test = Synapse_dataset(args.root_path, args.list_dir, "test")
    print(f"layout {train.layout}: {len(train)} training slices in {train.folder}, {len(test)} test volumes")
    item = train[0]
    print(
        f"train[0] {item['case_name']}: image {tuple(item['image'].shape)}, "
        f"labels {item['label'].unique().tolist()}"
    )
    volume = test[0]
    print(
        f"test[0] {volume['case_name']}: image {volume['image'].shape}, "
        f"spacing {volume.get('spacing')}, labels {sorted(set(volume['label'].ravel().tolist()))}"
    )


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
