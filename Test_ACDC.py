"""Test DLKUNet checkpoints on the ACDC test volumes: Dice and HD95 for RV, Myo and LV, as published.

    python Test_ACDC.py --root_path ./datasets/ACDC --model M \
        --model_load ./result/Pth/model_epoch_150_checkpoint.pth
    python Test_ACDC.py --root_path /tmp/acdc --list_dir /tmp/acdc/lists_ACDC \
        --model_load ./result/Pth --metric_convention strict --hd95_unit mm
    python LogProcess.py ./result/Test/running.log     # the best epoch

Every checkpoint gets the release's log lines (see dlkunet/testing.py) and a summary.json; the
metric conventions and units are explained in dlkunet/metrics.py.
"""

import argparse

from Dataloader_ACDC import CLASS_NAMES, ACDCdataset
from dlkunet.errors import run_main
from dlkunet.metrics import calculate_metric_percase
from dlkunet.testing import add_test_arguments, run_tests

__all__ = ["calculate_metric_percase", "get_args_parser", "main"]


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Test DLKUNet checkpoints on ACDC cardiac MRI volumes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    return add_test_arguments(parser, root_path="./datasets/ACDC")


def make_dataset(args):
    return ACDCdataset(args.root_path, args.list_dir, split="test")


def main(args):
    return run_tests(args, make_dataset, CLASS_NAMES, "ACDC")


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
