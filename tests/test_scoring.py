"""Test_Synapse.py / Test_ACDC.py end to end on phantom data, checked against a direct computation.

A tiny DLKUNet-S (width 8) is trained for 2 epochs with Train_Synapse.py, which gives the real
run-folder files (model_epoch_N, last.pth with its full training state, args.json). So few
steps mostly predict background, so one more checkpoint takes those weights with the output
biases shifted until every class is predicted somewhere (saved with DataParallel's ``module.``
prefix): enough organs overlap to exercise every branch of the scoring. The test script's log,
summary.json and NIfTI files are compared with predicting and scoring the same volumes here,
straight with medpy.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from medpy.metric import binary
from PIL import Image

import LogProcess
import Test_ACDC
import Test_Synapse
from Dataloader_ACDC import ACDCdataset
from Dataloader_Synapse import CLASS_NAMES, Synapse_dataset
from dlkunet.checkpoint import atomic_save, load_weights
from dlkunet.errors import CheckpointError, DatasetError, DLKUNetError
from dlkunet.inference import predict_volume
from dlkunet.phantoms import make_phantoms
from network import get_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "S", "--base_channels", "8", "--patch_size", "48", "--batch_size", "5", "--device", "cpu"]
RELEASE_LINE = re.compile(
    r"^\[[\d\- :.]+\] (Model loaded from .+|Checkpoint epoch \d+|"
    r"idx \d+ case \S+ mean_dice -?[\d.]+ mean_hd95 ([\d.]+|nan)|"
    r"Mean class \d \(\S+\) mean_dice [\d.]+ mean_hd95 ([\d.]+|nan)|"
    r"Testing performance in best val model: mean_dice : [\d.]+ mean_hd95 : ([\d.]+|nan))$"
)


def data_flags(phantom):
    return ["--root_path", str(phantom.root), "--list_dir", str(phantom.list_dir)]


@pytest.fixture(scope="module")
def trained_run(synapse_phantom, tmp_path_factory):
    """Train_Synapse.py's folder after 2 epochs, plus ``balanced.pth`` (see the module docstring)."""
    out = tmp_path_factory.mktemp("trained")
    command = [sys.executable, "Train_Synapse.py", *data_flags(synapse_phantom), *TINY[:4]]
    command += ["--img_size", "48", "--epochs", "2", "--batch_size", "16", "--learning_rate", "1e-2"]
    command += ["--save_interval", "1", "--pth_path", str(out / "Pth"), "--log_path", str(out / "train.log")]
    command += ["--tensorboard_path", str(out / "tb"), "--device", "cpu", "--num_workers", "0"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    model = get_model("S", num_classes=9, base_channels=8)
    load_weights(model, out / "Pth" / "model_epoch_2_checkpoint.pth")
    dataset = Synapse_dataset(synapse_phantom.root, synapse_phantom.list_dir, "test")
    slices = torch.from_numpy(np.concatenate([dataset[i]["image"] for i in range(len(dataset))]))[:, None]
    with torch.no_grad():
        model.eval()
        model.outc.conv.bias -= model(slices).mean(dim=(0, 2, 3))  # every class's mean logit to 0
    atomic_save({f"module.{k}": v for k, v in model.state_dict().items()}, out / "Pth" / "balanced.pth")
    return out / "Pth"


def transunet_by_hand(pred, gt, spacing=None):
    """The release's rule written out, straight on medpy over the full arrays."""
    if pred.any() and gt.any():
        return binary.dc(pred, gt), binary.hd95(pred, gt, voxelspacing=spacing)
    return (1.0, 0.0) if pred.any() else (0.0, 0.0)


def strict_by_hand(pred, gt, spacing=None):
    if pred.any() and gt.any():
        return binary.dc(pred, gt), binary.hd95(pred, gt, voxelspacing=spacing)
    return (0.0, None) if pred.any() or gt.any() else (None, None)  # None: null (NaN) in summary.json


def predict_here(checkpoint, volume, num_classes):
    model = get_model("S", num_classes=num_classes, base_channels=8)
    load_weights(model, checkpoint)
    model = model.to(memory_format=torch.channels_last).eval()
    return predict_volume(model, volume["image"], 48, batch_size=5, device="cpu")


def blocks_of(log_text):
    """The log split into per-checkpoint blocks of messages (timestamps removed)."""
    messages = [line.split("] ", 1)[1] for line in log_text.splitlines()]
    starts = [i for i, m in enumerate(messages) if m.startswith("Model loaded from")]
    return [messages[a:b] for a, b in zip(starts, starts[1:] + [len(messages)], strict=True)]


def test_synapse_folder_end_to_end(trained_run, synapse_phantom, tmp_path):
    out = tmp_path / "test"
    command = [sys.executable, "Test_Synapse.py", *data_flags(synapse_phantom), *TINY, "--num_workers", "2"]
    command += ["--model_load", str(trained_run), "--log_path", str(out / "running.log")]
    command += ["--test_save_path", str(out / "pred"), "--overlay_slices", "1"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (out / "running.log").read_text()

    # One block per checkpoint, epoch order, exactly the release's lines (plus the epoch of last.pth).
    blocks = blocks_of(log)
    loaded = [Path(b[0].split("Model loaded from ")[1]).name for b in blocks]
    assert loaded == [
        "model_epoch_1_checkpoint.pth",
        "model_epoch_2_checkpoint.pth",
        "balanced.pth",
        "last.pth",
    ]
    dataset = Synapse_dataset(synapse_phantom.root, synapse_phantom.list_dir, "test")
    volumes = [dataset[i] for i in range(len(dataset))]
    for block in blocks:
        body = [m for m in block if not m.startswith("Tested ")]
        assert len(body) == 1 + (block[0].endswith("last.pth")) + len(volumes) + 8 + 1
        assert all(RELEASE_LINE.match(f"[2025-01-01 00:00:00.000] {m}") for m in body), body
        assert [m.split(" (")[1].split(")")[0] for m in body if m.startswith("Mean class")] == [
            n.replace(" ", "_") for n in CLASS_NAMES[1:]
        ]

    # Every value in summary.json equals predicting and scoring here with medpy on the full volume.
    both_present, overlapping = 0, 0
    for name in loaded:
        checkpoint = trained_run / name
        summary = json.loads((out / checkpoint.stem / "summary.json").read_text())
        assert summary["metric_convention"] == "transunet" and summary["hd95_unit"] == "voxel"
        for volume, case in zip(volumes, summary["per_case"], strict=True):
            pred = predict_here(checkpoint, volume, 9)
            for k, organ in enumerate(CLASS_NAMES[1:], start=1):
                expected = transunet_by_hand(pred == k, volume["label"] == k)
                assert (case["classes"][organ]["dice"], case["classes"][organ]["hd95"]) == expected
                both_present += bool((pred == k).any() and (volume["label"] == k).any())
                overlapping += bool(((pred == k) & (volume["label"] == k)).any())
            saved = out / "pred" / checkpoint.stem / volume["case_name"]
            pred_file = sitk.ReadImage(f"{saved}_pred.nii.gz")
            np.testing.assert_array_equal(sitk.GetArrayFromImage(pred_file), pred)
            np.testing.assert_allclose(pred_file.GetSpacing(), volume["spacing"][::-1], rtol=1e-6)
            np.testing.assert_array_equal(
                sitk.GetArrayFromImage(sitk.ReadImage(f"{saved}_gt.nii.gz")), volume["label"]
            )
            image = sitk.GetArrayFromImage(sitk.ReadImage(f"{saved}_img.nii.gz"))
            np.testing.assert_array_equal(image, volume["image"])
    # Enough real (dice, hd95) pairs were compared, not only the conventions' fixed values.
    assert both_present >= 4 and overlapping >= 1, (both_present, overlapping)

    # The log's means are the summary's, and LogProcess picks the best epoch from the log.
    means = [json.loads((out / Path(name).stem / "summary.json").read_text())["mean_dice"] for name in loaded]
    final = [m for b in blocks for m in b if m.startswith("Testing performance")]
    assert [float(line.split()[8]) for line in final] == [float(f"{m:f}") for m in means]
    results = LogProcess.main(LogProcess.get_args_parser().parse_args([str(out / "running.log")]))
    best = max(range(len(means)), key=lambda i: round(means[i], 6))
    assert results[best] is LogProcess.best_results(results)[0]
    assert [r.epoch for r in results] == [1, 2, None, 2]

    pictures = sorted((out / "pred" / "balanced").glob("*.png"))
    assert len(pictures) == len(volumes)
    with Image.open(pictures[0]) as picture:
        assert picture.size[0] >= 3 * 48


def test_acdc_strict_mm_in_process(acdc_phantom, tmp_path):
    torch.manual_seed(3)
    model = get_model("S", num_classes=4, base_channels=8)
    atomic_save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dp_epoch_5.pth")
    args = Test_ACDC.get_args_parser().parse_args(
        [*data_flags(acdc_phantom), *TINY, "--num_workers", "0", "--metric_convention", "strict"]
        + ["--hd95_unit", "mm", "--model_load", str(tmp_path / "dp_epoch_5.pth")]
        + ["--log_path", str(tmp_path / "running.log")]
    )
    (record,) = Test_ACDC.main(args)
    assert record["metric_convention"] == "strict" and record["hd95_unit"] == "mm" and record["epoch"] == 5
    dataset = ACDCdataset(acdc_phantom.root, acdc_phantom.list_dir, "test")
    undefined = np.zeros((3, 2), int)
    for i, case in enumerate(record["per_case"]):
        volume = dataset[i]
        pred = predict_here(tmp_path / "dp_epoch_5.pth", volume, 4)
        for k, name in enumerate(["RV", "Myo", "LV"], start=1):
            expected = strict_by_hand(pred == k, volume["label"] == k, volume["spacing"])
            assert (case["classes"][name]["dice"], case["classes"][name]["hd95"]) == expected
            undefined[k - 1] += [expected[0] is None, expected[1] is None]
    assert [[c["undefined_dice"], c["undefined_hd95"]] for c in record["per_class"]] == undefined.tolist()
    assert undefined.sum() > 0  # a random network misses classes: the strict rule was exercised
    log = (tmp_path / "running.log").read_text()
    assert log.count("Undefined class") == 3 and "Testing performance in best val model" in log


def test_scripts_export_the_release_metric_function():
    from Test_ACDC import calculate_metric_percase as from_acdc
    from Test_Synapse import calculate_metric_percase as from_synapse

    pred, gt = np.zeros((6, 6), bool), np.zeros((6, 6), bool)
    pred[1:4, 1:4], gt[2:5, 2:5] = True, True
    assert from_synapse(pred, gt) == from_acdc(pred, gt) == (binary.dc(pred, gt), binary.hd95(pred, gt))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A right checkpoint, another variant, another class count, and a truncated file."""
    folder = tmp_path_factory.mktemp("checkpoints")
    atomic_save(
        get_model("S", num_classes=9, base_channels=8).state_dict(), folder / "model_epoch_1_checkpoint.pth"
    )
    atomic_save(get_model("M", num_classes=9, base_channels=8).state_dict(), folder / "variant_M.pth")
    atomic_save(get_model("S", num_classes=4, base_channels=8).state_dict(), folder / "acdc_classes.pth")
    whole = (folder / "model_epoch_1_checkpoint.pth").read_bytes()
    (folder / "model_epoch_2_checkpoint.pth").write_bytes(whole[: len(whole) // 2])  # an interrupted copy
    return folder


def run_synapse(phantom, tmp_path, *extra):
    flags = [
        *data_flags(phantom),
        *TINY,
        "--num_workers",
        "0",
        "--log_path",
        str(tmp_path / "log" / "running.log"),
    ]
    return Test_Synapse.main(Test_Synapse.get_args_parser().parse_args(flags + [str(e) for e in extra]))


@pytest.mark.parametrize(
    "load, error, message",
    [
        ("missing.pth", CheckpointError, "does not exist"),
        ("empty_folder", CheckpointError, "holds no .pth"),
        ("nothing_*.pth", CheckpointError, "no checkpoint file matches"),
        ("variant_M.pth", CheckpointError, r"holds DLKUNet-M \(4 levels\).*expected DLKUNet-S"),
        ("acdc_classes.pth", CheckpointError, "holds .*4 classes.*expected .*9 classes"),
    ],
)
def test_bad_checkpoints_are_named(synapse_phantom, checkpoints, tmp_path, load, error, message):
    (checkpoints / "empty_folder").mkdir(exist_ok=True)
    with pytest.raises(error, match=message):
        run_synapse(synapse_phantom, tmp_path, "--model_load", checkpoints / load)


def test_a_corrupt_checkpoint_keeps_what_was_already_tested(synapse_phantom, checkpoints, tmp_path):
    with pytest.raises(CheckpointError, match="model_epoch_2_checkpoint.pth is not a readable torch file"):
        run_synapse(synapse_phantom, tmp_path, "--model_load", checkpoints / "model_epoch_*_checkpoint.pth")
    assert (tmp_path / "log" / "model_epoch_1_checkpoint" / "summary.json").is_file()
    assert "Testing performance in best val model" in (tmp_path / "log" / "running.log").read_text()


def test_bad_data_and_flags(synapse_phantom, checkpoints, tmp_path):
    good = ["--model_load", checkpoints / "model_epoch_1_checkpoint.pth"]
    no_spacing = make_phantoms("synapse-release", tmp_path / "release", cases=3, size=32, slices=4)
    flags = [*TINY, "--num_workers", "0", "--hd95_unit", "mm", "--log_path", tmp_path / "running.log", *good]
    flags += ["--root_path", no_spacing["root"], "--list_dir", no_spacing["list_dir"]]
    with pytest.raises(DatasetError, match="--hd95_unit mm needs the voxel spacing.*case"):
        Test_Synapse.main(Test_Synapse.get_args_parser().parse_args([str(f) for f in flags]))
    with pytest.raises(DatasetError, match="missing_root"):
        run_synapse(synapse_phantom, tmp_path, *good, "--root_path", tmp_path / "missing_root")
    with pytest.raises(DLKUNetError, match="--batch_size must be at least 1"):
        run_synapse(synapse_phantom, tmp_path, *good, "--batch_size", "0")
    with pytest.raises(DLKUNetError, match="--model"):
        run_synapse(synapse_phantom, tmp_path, *good, "--model", "XL")
    (tmp_path / "blocked").write_text("a file where the output folder should be")
    with pytest.raises(DLKUNetError, match="--test_save_path: cannot create folder"):
        run_synapse(synapse_phantom, tmp_path, *good, "--test_save_path", tmp_path / "blocked")
    if not torch.cuda.is_available():
        with pytest.raises(DLKUNetError, match="--device cuda: this machine has 0 CUDA device"):
            run_synapse(synapse_phantom, tmp_path, *good, "--device", "cuda")


def test_command_line_error_is_one_line(synapse_phantom, checkpoints, tmp_path):
    command = [sys.executable, "Test_Synapse.py", *data_flags(synapse_phantom), *TINY]
    command += [
        "--model_load",
        str(checkpoints / "variant_M.pth"),
        "--log_path",
        str(tmp_path / "running.log"),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.startswith("error: checkpoint ") and result.stderr.count("\n") == 1
    assert "DLKUNet-M" in result.stderr and "Traceback" not in result.stderr
