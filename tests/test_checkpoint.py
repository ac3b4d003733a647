"""Checkpoint I/O: atomic replacement, pickle-free loading and clear errors for the wrong model."""

import os
import pickle

import pytest
import torch

from dlkunet.checkpoint import atomic_save, describe_state_dict, load_checkpoint, load_weights
from dlkunet.errors import CheckpointError
from dlkunet.files import current_umask
from network import get_model


class RunsCode:
    """An object whose unpickling would call a function: a weights-only load must refuse it."""

    def __reduce__(self):
        return (os.getcwd, ())


def test_atomic_save_replaces_whole_files_and_keeps_the_old_one_on_failure(tmp_path):
    path = tmp_path / "sub" / "last.pth"
    atomic_save({"epoch": 1}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~current_umask())
    with pytest.raises((pickle.PicklingError, AttributeError)):
        atomic_save({"epoch": 2, "bad": lambda: None}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pth"]

    (tmp_path / "blocked").write_text("a file where the checkpoint folder should be")
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*blocked"):
        atomic_save({"epoch": 1}, tmp_path / "blocked" / "last.pth")


def test_unreadable_and_unsafe_files_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pth is not a readable torch file"):
        load_checkpoint(garbage)
    text = tmp_path / "text.pth"
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match="text.pth is not a readable torch file"):
        load_checkpoint(text)
    good = tmp_path / "good.pth"
    torch.save(get_model("S", base_channels=8).state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_checkpoint(truncated)
    unsafe = tmp_path / "unsafe.pth"
    unsafe.write_bytes(pickle.dumps({"model": RunsCode()}, protocol=2))
    with pytest.raises(
        CheckpointError, match="unsafe.pth holds objects a weights-only load refuses .*getcwd"
    ):
        load_checkpoint(unsafe)


@pytest.mark.parametrize("form", ["bare", "module", "training_state"])
def test_every_saved_form_loads(tmp_path, form):
    source = get_model("M", num_classes=4, base_channels=8)
    state = source.state_dict()
    payload = {
        "bare": state,
        "module": {f"module.{k}": v for k, v in state.items()},
        "training_state": {"model": state, "epoch": 3},
    }[form]
    path = tmp_path / f"{form}.pth"
    torch.save(payload, path)
    target = get_model("M", num_classes=4, base_channels=8)
    load_weights(target, path)
    for key, value in target.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_wrong_variant_or_classes_says_what_it_holds(tmp_path):
    path = tmp_path / "l.pth"
    torch.save(get_model("L", num_classes=9, base_channels=8).state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        load_weights(get_model("M", num_classes=4, base_channels=8), path)
    message = str(err.value)
    assert "l.pth holds DLKUNet-L (5 levels), base width 8, 9 classes" in message
    assert "expected DLKUNet-M (4 levels), base width 8, 4 classes" in message
    assert "not DLKUNet" in describe_state_dict({"fc.weight": torch.zeros(2, 2)})
