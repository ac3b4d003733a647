"""The parts of dlkunet.training that the end-to-end tests cannot pin down cheaply."""

import argparse
import logging
import os
import random

import numpy as np
import pytest
import torch

from dlkunet import distributed, training
from dlkunet.checkpoint import atomic_save, load_checkpoint
from dlkunet.errors import DLKUNetError
from dlkunet.losses import SegmentationLoss
from network import get_model


def test_rng_state_survives_a_weights_only_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    atomic_save({"rng": training.rng_state()}, tmp_path / "state.pth")
    expected = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(2))

    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    training.restore_rng_state(load_checkpoint(tmp_path / "state.pth")["rng"])
    got = (random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(2))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


class Draws(torch.utils.data.Dataset):
    """Items are random draws, as an augmentation makes them."""

    def __len__(self):
        return 5

    def __getitem__(self, index):
        return (index, random.random(), float(np.random.rand()), float(torch.rand(())))


def test_items_depend_on_seed_epoch_and_index_only():
    seeded = training.SeededDataset(Draws(), seed=42)
    forwards = [seeded[(3, i)] for i in range(5)]
    backwards = [seeded[(3, i)] for i in reversed(range(5))][::-1]
    assert forwards == backwards
    assert seeded[(4, 0)] != seeded[(3, 0)]
    assert training.SeededDataset(Draws(), seed=7)[(3, 0)] != seeded[(3, 0)]


def test_sampler_tags_indices_with_the_epoch_and_shuffles_per_epoch():
    inner = torch.utils.data.DistributedSampler(range(10), num_replicas=1, rank=0, shuffle=True, seed=0)
    sampler = training.EpochIndexSampler(inner)
    sampler.set_epoch(2)
    first = list(sampler)
    assert {epoch for epoch, _ in first} == {2} and sorted(i for _, i in first) == list(range(10))
    assert list(sampler) == first
    sampler.set_epoch(3)
    assert [i for _, i in sampler] != [i for _, i in first]


def make_run(tmp_path):
    args = argparse.Namespace(pth_path=str(tmp_path), model="S", base_channels=8)
    model = get_model("S", 1, 9, 8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, training.LR_STEP_SIZE, training.LR_GAMMA)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    log = logging.getLogger("test_train_parts")
    return training.Run(args, distributed.Context(torch.device("cpu")), model, optimizer, scheduler, scaler,
                        SegmentationLoss(), log)  # fmt: skip


def test_without_last_pth_the_newest_epoch_by_number_is_used_with_a_warning(tmp_path, caplog):
    weights = {n: get_model("S", 1, 9, 8).state_dict() for n in (9, 40)}
    atomic_save(weights[40], tmp_path / "model_epoch_40_checkpoint.pth")
    atomic_save(weights[9], tmp_path / "model_epoch_9_checkpoint.pth")  # the newer file, an older epoch
    os.utime(tmp_path / "model_epoch_40_checkpoint.pth", (0, 0))
    run = make_run(tmp_path)
    with caplog.at_level(logging.WARNING, logger="test_train_parts"):
        assert training.resume(run) == 40
    assert "optimizer state is fresh" in caplog.text and "model_epoch_40" in caplog.text
    assert all(torch.equal(v, weights[40][k]) for k, v in run.model.state_dict().items())
    # The schedule continues where 40 epochs leave it: two StepLR decays.
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(1e-5 * training.LR_GAMMA**2)


def test_continue_train_without_any_checkpoint_starts_at_epoch_1(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="test_train_parts"):
        assert training.resume(make_run(tmp_path)) == 0
    assert "starting at epoch 1" in caplog.text


def test_a_last_pth_that_is_not_a_training_state_is_refused(tmp_path):
    atomic_save(get_model("S", 1, 9, 8).state_dict(), tmp_path / "last.pth")
    with pytest.raises(DLKUNetError, match="last.pth is not a training state: it lacks model, optimizer"):
        training.resume(make_run(tmp_path))


@pytest.mark.parametrize(
    "flag, value, message",
    [("epochs", 0, "--epochs must be at least 1"), ("num_workers", -1, "--num_workers must be 0 or more"),
     ("learning_rate", 0.0, "--learning_rate must be positive"), ("loss_weights", [0, 0], "--loss_weights")],
)  # fmt: skip
def test_flags_that_cannot_work_are_refused(flag, value, message):
    parser, _ = training.make_arg_parser(
        "test", root_path=".", list_dir=".", weight_decay=0, loss_weights=(1, 1), log_path="x.log"
    )
    args = parser.parse_args([])
    setattr(args, flag, value)
    with pytest.raises(DLKUNetError, match=message):
        training.check_args(args)


def test_multi_gpu_is_ignored_on_the_cpu_with_a_warning():
    model = torch.nn.Linear(2, 2)
    warnings = []
    wrapped = distributed.wrap_model(
        model, distributed.Context(torch.device("cpu")), True, warn=warnings.append
    )
    assert wrapped is model and "--multi_gpu is ignored" in warnings[0]
