"""Test DLKUNet checkpoints on the Synapse test volumes: Dice and HD95 per organ, as published.

    python Test_Synapse.py --root_path ./datasets/Synapse/data --model M \
        --model_load ./result/Pth/model_epoch_150_checkpoint.pth
    python Test_Synapse.py --root_path /tmp/synapse --list_dir /tmp/synapse/lists_Synapse \
        --model_load './result/Pth/model_epoch_*_checkpoint.pth' --test_save_path ./result/Pred
    python LogProcess.py ./result/Test/running.log     # the best epoch

Every checkpoint gets the release's log lines (see dlkunet/testing.py) and a summary.json; the
metric conventions and units are explained in dlkunet/metrics.py.
"""

import argparse

from Dataloader_Synapse import CLASS_NAMES, Synapse_dataset
from dlkunet.errors import run_main
from dlkunet.metrics import calculate_metric_percase
from dlkunet.testing import add_test_arguments, run_tests

__all__ = ["calculate_metric_percase", "get_args_parser", "main"]


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Test DLKUNet checkpoints on Synapse multi-organ CT volumes.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    return add_test_arguments(parser, root_path="./datasets/Synapse/data")


def make_dataset(args):
    return Synapse_dataset(args.root_path, args.list_dir, split="test")


def main(args):
    return run_tests(args, make_dataset, CLASS_NAMES, "Synapse")


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
