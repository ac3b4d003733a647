"""The whole DLKUNet pipeline on phantom data, through the project's own scripts.

    python demo.py                   # Synapse-form phantoms: data, train, test, best epoch, pictures
    python demo.py --dataset acdc    # the same for ACDC

Each stage runs the command a user would type (printed before it runs): datasets/make_phantoms.py,
Train_*.py, Test_*.py on every checkpoint, LogProcess.py, and Test_*.py --test_save_path on the best
checkpoint for NIfTI files and overlay pictures. The phantom data is reused when the demo runs again;
the previous demo run's results in the work folder are replaced. The last line gives the best
checkpoint's mean Dice and mean HD95, the numbers of the test log's
``Testing performance in best val model`` line for that checkpoint.
"""

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent

DATASETS = {
    # name: (phantom form, list folder inside the data, train script, test script, cases, slices)
    "synapse": ("synapse-transunet", "lists_Synapse", "Train_Synapse.py", "Test_Synapse.py", 10, 16),
    "acdc": ("acdc-mtunet", "lists_ACDC", "Train_ACDC.py", "Test_ACDC.py", 10, 10),
}


def get_args_parser():
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=type(
            "Formatter", (argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter), {}
        ),
    )
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", choices=sorted(DATASETS), default="synapse", help="which benchmark's form")
    data.add_argument("--work_dir", default="./demo_work", help="folder for the data and the run")
    data.add_argument("--cases", type=int, default=None, help="phantom cases (default: per dataset)")
    data.add_argument("--slices", type=int, default=None, help="slices per phantom volume")
    data.add_argument("--size", type=int, default=64, help="phantom slice height (px)")
    model = parser.add_argument_group("model and training")
    model.add_argument("--model", choices=["S", "M", "L"], default="S", help="DLKUNet variant")
    model.add_argument("--base_channels", type=int, default=16, help="width of the first level")
    model.add_argument("--img_size", type=int, default=64, help="training and testing slice size (px)")
    model.add_argument("--epochs", type=int, default=40, help="training epochs")
    model.add_argument("--save_interval", type=int, default=10, help="epochs between checkpoints")
    model.add_argument("--batch_size", type=int, default=8, help="slices per step")
    model.add_argument("--learning_rate", type=float, default=2e-3, help="Adam's learning rate")
    model.add_argument("--seed", type=int, default=42, help="seed of data generation and training")
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--device", default="auto", help="auto (a GPU when there is one), cpu or cuda")
    runtime.add_argument("--num_workers", type=int, default=0, help="DataLoader workers for training")
    return parser


def stage(number, total, text):
    print(f"\n[demo] stage {number}/{total}: {text}", flush=True)


def run(command):
    """Run one of the project's scripts as a user would, stopping the demo if it fails."""
    printable = " ".join(str(c) for c in command)
    print(f"[demo] $ python {printable}", flush=True)
    result = subprocess.run([sys.executable, *map(str, command)], cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"[demo] stopped: `python {printable}` exited with {result.returncode}")


def make_data(args, data_dir):
    """Write the phantom data once; a stamp records the settings so a re-run can reuse it."""
    form, list_name, _, _, cases, slices = DATASETS[args.dataset]
    settings = {"form": form, "cases": args.cases or cases, "slices": args.slices or slices}
    settings.update(size=args.size, seed=args.seed)
    stamp = data_dir / "demo_settings.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == settings:
        print(f"[demo] reusing the phantom data in {data_dir}")
        return
    shutil.rmtree(data_dir, ignore_errors=True)
    run(
        ["datasets/make_phantoms.py", "--form", form, "--out", data_dir, "--cases", settings["cases"]]
        + ["--slices", settings["slices"], "--size", args.size, "--seed", args.seed]
    )
    stamp.write_text(json.dumps(settings))


def best_checkpoint(csv_path):
    """The LogProcess table's row with the highest mean Dice (first of equals, as LogProcess)."""
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return max(rows, key=lambda r: float(r["mean_dice_percent"]))


def print_summary(best, summary, run_dir, pictures):
    print("\n[demo] summary")
    print(f"best checkpoint: {best['checkpoint']} (epoch {best['epoch']})")
    print(f"{'class':<16} {'Dice':>8} {'HD95':>8}")
    for entry in summary["per_class"]:
        hd95 = entry["mean_hd95"]
        hd95 = "nan" if hd95 is None else f"{hd95:.2f}"
        print(f"{entry['name']:<16} {entry['mean_dice']:>8.4f} {hd95:>8}  ({summary['hd95_unit']}s)")
    print(f"training log:  {run_dir / 'running.log'}")
    print(f"test log:      {run_dir / 'Test' / 'running.log'}")
    print(f"checkpoints:   {run_dir / 'Pth'}")
    print(f"TensorBoard:   tensorboard --logdir {run_dir / 'Train'}")
    print(f"pictures:      {pictures} (Dice/HD95 per epoch: {run_dir / 'Test' / 'epochs.png'})")
    print(
        f"best checkpoint {best['checkpoint']}: "
        f"mean_dice {summary['mean_dice']:.6f} mean_hd95 {summary['mean_hd95']:.6f}"
    )


def main(args):
    started = time.perf_counter()
    _, list_name, train_script, test_script, _, _ = DATASETS[args.dataset]
    work = Path(args.work_dir).resolve() / args.dataset
    data_dir, run_dir = work / "data", work / "run"
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    data_flags = ["--root_path", data_dir, "--list_dir", data_dir / list_name]
    model_flags = ["--model", args.model, "--base_channels", args.base_channels, "--device", device]
    total = 5

    stage(1, total, f"phantom {args.dataset} data")
    make_data(args, data_dir)

    stage(2, total, f"training DLKUNet-{args.model} on {device}")
    if run_dir.exists():
        print(f"[demo] replacing the previous demo run in {run_dir}")
        shutil.rmtree(run_dir)
    run(
        [train_script, *data_flags, *model_flags, "--img_size", args.img_size, "--epochs", args.epochs]
        + ["--batch_size", args.batch_size, "--learning_rate", args.learning_rate, "--seed", args.seed]
        + ["--save_interval", args.save_interval, "--num_workers", args.num_workers]
        + ["--log_path", run_dir / "running.log", "--pth_path", run_dir / "Pth"]
        + ["--tensorboard_path", run_dir / "Train"]
    )

    stage(3, total, "testing every checkpoint")
    test_log = run_dir / "Test" / "running.log"
    checkpoints = str(run_dir / "Pth" / "model_epoch_*_checkpoint.pth")
    test_flags = [*data_flags, *model_flags, "--patch_size", args.img_size, "--num_workers", 0]
    run([test_script, *test_flags, "--model_load", checkpoints, "--log_path", test_log])

    stage(4, total, "picking the best epoch")
    table = run_dir / "Test" / "epochs.csv"
    run(["LogProcess.py", test_log, "--csv", table, "--plot", run_dir / "Test" / "epochs.png"])
    best = best_checkpoint(table)

    stage(5, total, "predictions and overlay pictures of the best checkpoint")
    pictures = run_dir / "predictions"
    run(
        [test_script, *test_flags, "--model_load", best["checkpoint"], "--test_save_path", pictures]
        + ["--log_path", pictures / "test.log"]
    )

    stem = Path(best["checkpoint"]).stem
    summary = json.loads((test_log.parent / stem / "summary.json").read_text())
    print(f"\n[demo] finished in {time.perf_counter() - started:.0f} s")
    print_summary(best, summary, run_dir, pictures / stem)


if __name__ == "__main__":
    main(get_args_parser().parse_args())
