"""LogProcess: logs with known answers (ours and the release's form), and each bad input."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import LogProcess
from dlkunet.logparse import LogError, best_results, parse_log

ROOT = Path(__file__).resolve().parents[1]


def block(checkpoint, dice, hd95, stamp=True, names=True, epoch_line=None):
    """One checkpoint's block as Test_*.py writes it (``names``) or as the release writes it."""
    prefix = "[2025-03-01 10:00:00.000] " if stamp else ""
    label = " (spleen)" if names else ""
    lines = [f"Model loaded from {checkpoint}"]
    if epoch_line is not None:
        lines.append(f"Checkpoint epoch {epoch_line}")
    lines += [
        f"idx 0 case case0001 mean_dice {dice:f} mean_hd95 {hd95:f}",
        f"Mean class 1{label} mean_dice {dice:f} mean_hd95 {hd95:f}",
        f"Testing performance in best val model: mean_dice : {dice:f} mean_hd95 : {hd95:f}",
    ]
    return "".join(prefix + line + "\n" for line in lines)


def write(path, text):
    path.write_text(text)
    return path


def run_logprocess(*argv):
    return LogProcess.main(LogProcess.get_args_parser().parse_args([str(a) for a in argv]))


def test_picks_the_best_epochs_from_our_log(tmp_path, capsys):
    scores = {10: (0.70, 30.0), 20: (0.78, 24.0), 30: (0.81, 26.5), 40: (0.79, 19.25), 50: (0.75, 22.0)}
    log = write(
        tmp_path / "running.log",
        "".join(block(f"run/Pth/model_epoch_{e}_checkpoint.pth", d, h) for e, (d, h) in scores.items()),
    )
    results = run_logprocess(log)
    assert [r.epoch for r in results] == [10, 20, 30, 40, 50]
    best_dice, best_hd95 = best_results(results)
    assert (best_dice.epoch, best_hd95.epoch) == (30, 40)
    out = capsys.readouterr().out
    after_dice = out.split("max mean_dice:\n")[1]
    assert after_dice.startswith("run/Pth/model_epoch_30_checkpoint.pth (epoch 30): mean_dice 81.00%")
    assert out.split("minimum mean_hd95:\n")[1].startswith("run/Pth/model_epoch_40_checkpoint.pth (epoch 40)")
    assert "70.00" in out and "30.00" in out  # every checkpoint in the table, Dice in %


def test_reads_the_release_form_and_picks_across_logs(tmp_path, capsys):
    release = write(
        tmp_path / "release.log",
        block("./result/Pth/model_epoch_100_checkpoint.pth", 0.7712, 21.5, names=False)
        + block("./result/Pth/model_epoch_110_checkpoint.pth", 0.7801, 23.0, names=False, stamp=False),
    )
    ours = write(
        tmp_path / "ours.log",
        block("other/best.pth", 0.7790, 18.0) + block("other/last.pth", 0.7600, 25.0, epoch_line=150),
    )
    results = run_logprocess(release, ours, "--csv", tmp_path / "table.csv")
    assert [r.epoch for r in results] == [100, 110, None, 150]
    best_dice, best_hd95 = best_results(results)
    assert (
        best_dice.checkpoint.endswith("epoch_110_checkpoint.pth") and best_hd95.checkpoint == "other/best.pth"
    )
    with open(tmp_path / "table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["mean_dice_percent"]) for r in rows] == [77.12, 78.01, 77.9, 76.0]
    assert rows[0]["log"] == str(release) and rows[3]["epoch"] == "150"
    assert "release.log" in capsys.readouterr().out  # a log column when several logs are read


def test_appended_reruns_half_blocks_and_nan(tmp_path):
    text = (
        block("a/model_epoch_10_checkpoint.pth", 0.5, 10.0)
        + "[2025-03-01 11:00:00.000] Model loaded from a/model_epoch_20_checkpoint.pth\n"  # a crashed run
        + block("a/model_epoch_30_checkpoint.pth", float("nan"), float("nan"))
        + block("a/model_epoch_10_checkpoint.pth", 0.6, 12.0)  # the same checkpoint tested again
    )
    results = parse_log(write(tmp_path / "running.log", text))
    assert [(r.epoch, r.mean_dice) for r in results][::2] == [(10, 0.5), (10, 0.6)]
    assert results[1].epoch == 30
    best_dice, best_hd95 = best_results(results)
    assert (best_dice.mean_dice, best_hd95.mean_hd95) == (0.6, 10.0)


def test_plot_draws_a_png(tmp_path):
    log = write(
        tmp_path / "running.log", "".join(block(f"model_epoch_{e}.pth", e / 100, 50 - e) for e in (1, 2, 3))
    )
    run_logprocess(log, "--plot", tmp_path / "curves.png")
    with Image.open(tmp_path / "curves.png") as image:
        assert image.format == "PNG" and image.size[0] > 500
        assert len(image.getcolors(1 << 20)) > 3  # more than a blank canvas


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (
            "[2025-03-01 10:00:00.000] Model loaded from x.pth\nidx 0 case c mean_dice 0.5\n",
            "holds no test results",
        ),
        ("", "holds no test results"),
    ],
    ids=["missing", "no-results", "empty"],
)
def test_bad_logs_give_one_line_and_exit_1(tmp_path, content, message):
    log = tmp_path / "running.log"
    if content is not None:
        log.write_text(content)
    with pytest.raises(LogError, match=message):
        parse_log(log)
    result = subprocess.run(
        [sys.executable, "LogProcess.py", str(log)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and message in result.stderr and str(log) in result.stderr


def test_unwritable_csv_keeps_nothing_half_written(tmp_path):
    log = write(tmp_path / "running.log", block("model_epoch_10.pth", 0.5, 3.0))
    blocker = write(tmp_path / "not_a_folder", "x")
    with pytest.raises(LogError, match="cannot write CSV"):
        run_logprocess(log, "--csv", blocker / "table.csv")
    assert blocker.read_text() == "x"
