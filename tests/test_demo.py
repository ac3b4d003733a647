"""demo.py end to end at a tiny setting: every stage runs and the summary quotes the test log."""

import re
import subprocess
import sys
from pathlib import Path

from dlkunet.logparse import parse_log

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--cases", "4", "--slices", "6", "--size", "32", "--img_size", "32", "--base_channels", "8"]


def run_demo(work, *extra):
    command = [sys.executable, "demo.py", "--work_dir", str(work), *TINY, *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_demo_summary_matches_the_test_log(tmp_path):
    result = run_demo(tmp_path, "--epochs", "2", "--save_interval", "1", "--learning_rate", "0.01")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"best checkpoint (\S+): mean_dice (\S+) mean_hd95 (\S+)", last)
    assert match, last

    run_dir = tmp_path / "synapse" / "run"
    results = parse_log(run_dir / "Test" / "running.log")
    assert [Path(r.checkpoint).name for r in results] == [
        "model_epoch_1_checkpoint.pth",
        "model_epoch_2_checkpoint.pth",
    ]
    best = max(results, key=lambda r: r.mean_dice)
    assert match.group(1) == best.checkpoint
    assert float(match.group(2)) == round(best.mean_dice, 6)
    assert float(match.group(3)) == round(best.mean_hd95, 6)

    assert list((run_dir / "predictions").rglob("*_pred.nii.gz"))
    assert list((run_dir / "predictions").rglob("*.png"))
    assert list((run_dir / "Train").rglob("events.out.tfevents.*"))

    again = run_demo(tmp_path, "--epochs", "1", "--save_interval", "1")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "reusing the phantom data" in again.stdout
