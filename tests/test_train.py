"""Train_Synapse.py and Train_ACDC.py end to end on phantom data, run as users run them.

Tiny on purpose: DLKUNet-S at width 8, 32 px, 1-3 epochs. Each script run is a subprocess, so
what is checked is what a user gets: files, log lines, TensorBoard events, exit codes.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dlkunet.checkpoint import load_checkpoint, load_weights
from network import get_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "S", "--base_channels", "8", "--img_size", "32", "--num_workers", "0", "--deterministic"]
EPOCH_LINE = re.compile(
    r"^\[[\d: .-]+\] epoch (?P<epoch>\d+) loss (?P<loss>[\d.]+) lr (?P<lr>[\d.e+-]+) time (?P<time>[\d.]+)s "
    r"ce (?P<ce>[\d.]+) dice (?P<dice>[\d.]+) ce_weight (?P<ce_weight>\S+) dice_weight (?P<dice_weight>\S+)$"
)
VAL_LINE = re.compile(
    r"^\[[\d: .-]+\] val epoch (?P<epoch>\d+) mean_dice (?P<dice>[\d.]+) mean_hd95 (?P<hd95>[\d.]+) "
    r"best_dice (?P<best>[\d.]+) best_epoch (?P<best_epoch>\d+) time [\d.]+s$"
)


def run_script(script, out, phantom, *flags, env=None, launcher=()):
    """Run a Train script with tiny settings writing under ``out``; the CompletedProcess."""
    command = [
        *(launcher or [sys.executable]), str(ROOT / script),
        "--root_path", str(phantom.root), "--list_dir", str(phantom.list_dir), *TINY,
        "--pth_path", str(out / "pth"), "--log_path", str(out / "train.log"),
        "--tensorboard_path", str(out / "tb"), *flags,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600
    )


def check_ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def epoch_lines(log_path):
    return [m.groupdict() for m in map(EPOCH_LINE.match, Path(log_path).read_text().splitlines()) if m]


def val_lines(log_path):
    return [m.groupdict() for m in map(VAL_LINE.match, Path(log_path).read_text().splitlines()) if m]


def same_tensors(a, b):
    assert a.keys() == b.keys()
    return all(torch.equal(a[key], b[key]) for key in a)


def scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.fixture(scope="module")
def synapse_run(synapse_phantom, tmp_path_factory):
    """Two epochs on Synapse with validation after each and a checkpoint every epoch."""
    out = tmp_path_factory.mktemp("synapse_run")
    val_list = synapse_phantom.list_dir / "test_vol.txt"
    flags = ["--epochs", "2", "--batch_size", "8", "--save_interval", "1", "--val_interval", "1"]
    result = check_ok(
        run_script("Train_Synapse.py", out, synapse_phantom, *flags, "--val_list", str(val_list))
    )
    return out, result, flags + ["--val_list", str(val_list)]


def test_synapse_writes_checkpoints_logs_and_tensorboard(synapse_run):
    out, result, _ = synapse_run
    pth = out / "pth"
    names = {
        "model_epoch_1_checkpoint.pth",
        "model_epoch_2_checkpoint.pth",
        "last.pth",
        "best.pth",
        "args.json",
    }
    assert {p.name for p in pth.iterdir()} == names

    # The release's checkpoints: bare state dicts that load strictly into a fresh model.
    for name in ("model_epoch_2_checkpoint.pth", "best.pth"):
        state = load_checkpoint(pth / name)
        assert not any(key.startswith("module.") for key in state)
        load_weights(get_model("S", 1, 9, 8), pth / name)
    last = load_checkpoint(pth / "last.pth")
    assert {"model", "optimizer", "scheduler", "scaler", "epoch", "best", "rng", "args"} <= set(last)
    assert last["epoch"] == 2 and last["args"]["model"] == "S"
    assert same_tensors(last["model"], load_checkpoint(pth / "model_epoch_2_checkpoint.pth"))
    assert json.loads((pth / "args.json").read_text())["val_interval"] == 1

    epochs = epoch_lines(out / "train.log")
    assert [e["epoch"] for e in epochs] == ["1", "2"]
    assert float(epochs[0]["lr"]) == 1e-5 and float(epochs[0]["ce_weight"]) == 1.0
    for e in epochs:
        assert float(e["loss"]) == pytest.approx(float(e["ce"]) + float(e["dice"]), abs=2e-6)
    vals = val_lines(out / "train.log")
    assert [v["epoch"] for v in vals] == ["1", "2"]
    assert last["best"]["epoch"] == int(vals[-1]["best_epoch"])
    assert result.stdout.count(" epoch 1 loss ") == 1  # the console gets the same lines

    tags = scalars(out / "tb")
    assert len(tags["Loss/train"]) == 2 * 4  # 32 slices / batch 8 = 4 steps per epoch
    assert [step for step, _ in tags["Average Loss/train"]] == [1, 2]
    assert tags["Learning Rate"][0][1] == pytest.approx(1e-5)
    assert {"Dice/val", "HD95/val", "Dice/val/spleen", "Dice/val/pancreas"} <= set(tags)


def test_acdc_trains_with_the_sigmoid_schedule_and_validates_on_valid(acdc_phantom, tmp_path):
    flags = [
        "--epochs",
        "1",
        "--batch_size",
        "12",
        "--val_interval",
        "1",
        "--loss_schedule",
        "sigmoid",
        "--amp",
    ]
    result = check_ok(run_script("Train_ACDC.py", tmp_path, acdc_phantom, *flags))
    assert "warning: --amp is ignored" in result.stdout  # autocast is for CUDA
    # save_interval 10 > epochs: the final epoch is saved all the same.
    assert {p.name for p in (tmp_path / "pth").iterdir()} == {
        "model_epoch_1_checkpoint.pth", "last.pth", "best.pth", "args.json",
    }  # fmt: skip
    load_weights(get_model("S", 1, 4, 8), tmp_path / "pth" / "best.pth")
    (epoch,) = epoch_lines(tmp_path / "train.log")
    s = 1 / (1 + np.exp(15))  # the sigmoid schedule at epoch index 0
    assert float(epoch["ce_weight"]) == pytest.approx(1 - s)
    assert float(epoch["dice_weight"]) == pytest.approx(1 + s)
    assert len(val_lines(tmp_path / "train.log")) == 1
    import Train_ACDC

    help_text = Train_ACDC.get_args_parser().format_help()
    assert "--loss_weights CE DICE" in help_text and "(default: [0.4, 0.6])" in help_text


def test_resume_after_sigkill_is_bit_identical(synapse_run, synapse_phantom, tmp_path):
    whole, _, flags = synapse_run
    # Killed in the middle of epoch 2 (after one optimiser step), with nothing of epoch 2 saved.
    killed = run_script(
        "Train_Synapse.py", tmp_path, synapse_phantom, *flags, env={"DLKUNET_TEST_SIGKILL_AT": "2:1"}
    )
    assert killed.returncode == -9, killed.stderr
    assert load_checkpoint(tmp_path / "pth" / "last.pth")["epoch"] == 1
    # Resumed with DataLoader workers this time: augmentation must not depend on who reads a slice.
    resume_flags = [*flags, "--continue_train", "--num_workers", "2"]
    check_ok(run_script("Train_Synapse.py", tmp_path, synapse_phantom, *resume_flags))

    for name in ("model_epoch_1_checkpoint.pth", "model_epoch_2_checkpoint.pth", "best.pth"):
        expected = load_checkpoint(whole / "pth" / name)
        assert same_tensors(expected, load_checkpoint(tmp_path / "pth" / name)), name
    expected = load_checkpoint(whole / "pth" / "last.pth")["optimizer"]["state"]
    resumed = load_checkpoint(tmp_path / "pth" / "last.pth")["optimizer"]["state"]
    assert all(same_tensors(expected[k], resumed[k]) for k in expected)
    assert [e["loss"] for e in epoch_lines(tmp_path / "train.log")] == [
        e["loss"] for e in epoch_lines(whole / "train.log")
    ]


def test_torchrun_with_two_gloo_processes_writes_the_same_files(synapse_run, synapse_phantom, tmp_path):
    single, _, flags = synapse_run
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    result = check_ok(run_script("Train_Synapse.py", tmp_path, synapse_phantom, *flags, launcher=launcher))

    assert sorted(p.name for p in (tmp_path / "pth").iterdir()) == sorted(
        p.name for p in (single / "pth").iterdir()
    )
    assert "x 2 process(es), 2 steps per epoch" in (tmp_path / "train.log").read_text()
    assert [e["epoch"] for e in epoch_lines(tmp_path / "train.log")] == ["1", "2"]  # rank 0 alone logs
    assert len(list((tmp_path / "tb").iterdir())) == 1
    for name in ("model_epoch_2_checkpoint.pth", "best.pth"):
        load_weights(get_model("S", 1, 9, 8), tmp_path / "pth" / name)
    assert result.stderr.count("Traceback") == 0


# ---------------------------------------------------------------------------------------------
# Failures: one line, exit 1, nothing already written lost


def check_one_line_error(result, *fragments):
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


def test_missing_data_is_one_line(synapse_phantom, tmp_path):
    missing = type(synapse_phantom)(tmp_path / "nowhere", tmp_path / "nowhere", 9, 48)
    check_one_line_error(run_script("Train_Synapse.py", tmp_path, missing, "--epochs", "1"), "nowhere")


def test_unwritable_pth_path_fails_before_training(synapse_phantom, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    result = run_script(
        "Train_Synapse.py", tmp_path, synapse_phantom, "--pth_path", str(tmp_path / "file" / "pth")
    )
    check_one_line_error(result, "--pth_path", str(tmp_path / "file" / "pth"))
    assert " epoch 1 loss " not in result.stdout


def test_new_run_over_an_earlier_one_is_one_line_and_keeps_its_files(synapse_run, synapse_phantom, tmp_path):
    shutil.copytree(synapse_run[0] / "pth", tmp_path / "pth")
    before = {p.name: p.read_bytes() for p in (tmp_path / "pth").iterdir()}
    result = run_script("Train_Synapse.py", tmp_path, synapse_phantom, "--epochs", "1")
    check_one_line_error(result, "already holds a training run (last.pth)", "--continue_train")
    assert {p.name: p.read_bytes() for p in (tmp_path / "pth").iterdir()} == before

    # Weights-only folders (the release's, or ours without last.pth) are kept as well.
    (tmp_path / "pth" / "last.pth").unlink()
    result = run_script("Train_Synapse.py", tmp_path, synapse_phantom, "--epochs", "1")
    check_one_line_error(result, "already holds a training run (model_epoch_2_checkpoint.pth)")


def test_continue_train_with_another_variant_is_one_line_and_keeps_the_checkpoint(
    synapse_run, synapse_phantom, tmp_path
):
    shutil.copytree(synapse_run[0] / "pth", tmp_path / "pth")
    before = (tmp_path / "pth" / "last.pth").read_bytes()
    result = run_script("Train_Synapse.py", tmp_path, synapse_phantom, "--continue_train", "--model", "M")
    check_one_line_error(result, "last.pth", "DLKUNet-S", "expected DLKUNet-M")
    assert (tmp_path / "pth" / "last.pth").read_bytes() == before


def test_non_finite_loss_names_epoch_and_step_and_keeps_last_pth(synapse_run, synapse_phantom, tmp_path):
    shutil.copytree(synapse_run[0] / "pth", tmp_path / "pth")
    before = (tmp_path / "pth" / "last.pth").read_bytes()
    data = tmp_path / "data"
    shutil.copytree(synapse_phantom.root, data)
    # Intensities near float32's limit, rows of alternating sign: finite in the files (which the
    # loader accepts) but the first convolution overflows, and the loss turns NaN.
    for path in (data / "train_npz").glob("*.npz"):
        arrays = dict(np.load(path, allow_pickle=False))
        image = np.full_like(arrays["image"], 3e38)
        image[::2] *= -1
        np.savez(path, **{**arrays, "image": image})
    corrupt = type(synapse_phantom)(data, data / "lists_Synapse", 9, 48)
    result = run_script(
        "Train_Synapse.py", tmp_path, corrupt, "--continue_train", "--epochs", "3", "--batch_size", "8"
    )
    check_one_line_error(result, "not finite", "epoch 3 step 1 of 4")
    assert (tmp_path / "pth" / "last.pth").read_bytes() == before
    assert not (tmp_path / "pth" / "model_epoch_3_checkpoint.pth").exists()
    assert "error: the loss is not finite" in (tmp_path / "train.log").read_text()
