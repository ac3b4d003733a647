"""Find the best checkpoint in test logs: every checkpoint's mean Dice (%) and HD95, then the best.

Reads the logs written by Test_Synapse.py / Test_ACDC.py and by the public DLKUNet release
(the ``Model loaded from`` and ``Testing performance in best val model`` lines).

    python LogProcess.py                                  # ./result/Test/running.log
    python LogProcess.py run1/running.log run2/running.log --csv scores.csv --plot scores.png
"""

import argparse

from dlkunet.errors import run_main
from dlkunet.logparse import LogError, best_results, describe, format_table, parse_logs, write_csv


def get_args_parser():
    parser = argparse.ArgumentParser(
        description="Tabulate test logs and name the checkpoints with the best mean Dice and mean HD95.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("logs", nargs="*", default=["./result/Test/running.log"], help="test log files")
    output = parser.add_argument_group("output")
    output.add_argument("--csv", default=None, help="also write the table to this CSV file (Dice in %%)")
    output.add_argument("--plot", default=None, help="also draw Dice and HD95 against epoch into this PNG")
    return parser


def plot(results, path):
    """Draw one line per log: against the epoch where the names carry one, else the test order."""
    from dlkunet.visualize import plot_curves  # PIL/torchvision only when a plot is asked for

    with_epoch = [r for r in results if r.epoch is not None]
    if with_epoch:
        if len(with_epoch) < len(results):
            print(
                f"plot: {len(results) - len(with_epoch)} checkpoint(s) without an epoch in the name left out"
            )
        chosen, xlabel = with_epoch, "epoch"
    else:
        chosen, xlabel = results, "checkpoint (order tested)"
    series = {}
    for i, r in enumerate(chosen):
        x = r.epoch if r.epoch is not None else i + 1
        series.setdefault(r.log, []).append((x, r.dice_percent, r.mean_hd95))
    try:
        plot_curves(list(series.items()), path, xlabel=xlabel)
    except OSError as err:
        raise LogError(f"cannot write plot {path}: {err}") from err


def main(args):
    results = parse_logs(args.logs)
    print(format_table(results))
    best_dice, best_hd95 = best_results(results)
    print("max mean_dice:")
    print(describe(best_dice))
    print("minimum mean_hd95:")
    print(describe(best_hd95))
    if args.csv:
        write_csv(results, args.csv)
        print(f"table written to {args.csv}")
    if args.plot:
        plot(results, args.plot)
        print(f"plot written to {args.plot}")
    return results


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
