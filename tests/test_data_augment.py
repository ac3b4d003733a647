"""Augmentation: the release's semantics, image and label kept aligned, no label value invented."""

import numpy as np
import pytest
import torch

from dlkunet.augment import RandomGenerator, augment, augment_released, draw_params


def blobs(h=40, w=52, seed=0):
    """A label of three ellipses (classes 1, 2, 5) and an image that is 0.15 x label plus noise."""
    yy, xx = np.mgrid[:h, :w]
    label = np.zeros((h, w), np.uint8)
    label[((yy - 0.3 * h) / 6) ** 2 + ((xx - 0.3 * w) / 9) ** 2 < 1] = 1
    label[((yy - 0.65 * h) / 7) ** 2 + ((xx - 0.7 * w) / 6) ** 2 < 1] = 2
    label[((yy - 0.7 * h) / 4) ** 2 + ((xx - 0.25 * w) / 5) ** 2 < 1] = 5
    noise = np.random.default_rng(seed).normal(0, 0.01, (h, w))
    return (0.15 * label + noise).astype(np.float32), label


BRANCHES = [
    {"k": None, "axis": None, "angle": None},
    {"k": 1, "axis": 0, "angle": None},
    {"k": 3, "axis": 1, "angle": None},
    {"k": None, "axis": None, "angle": 17},
    {"k": None, "axis": None, "angle": -20},
]


@pytest.mark.parametrize("params", BRANCHES)
@pytest.mark.parametrize("output_size", [(40, 52), (32, 32), (64, 80)])
def test_matches_the_released_procedure(params, output_size):
    image, label = blobs()
    ours_image, ours_label = augment(image, label, params, output_size)
    ref_image, ref_label = augment_released(image, label, params, output_size)
    assert ours_image.shape == ours_label.shape == output_size
    assert ours_image.dtype == torch.float32 and ours_label.dtype == torch.int64
    agreement = (ours_label.numpy() == ref_label).mean()
    assert agreement > 0.98, agreement  # only boundary pixels may round differently
    assert np.abs(ours_image.numpy() - ref_image).mean() < 0.02


@pytest.mark.parametrize("params", BRANCHES)
def test_image_and_label_stay_aligned(params):
    image, label = blobs()
    out_image, out_label = augment(image, label, params, (48, 48))
    # Where the label says class k, the image (0.15 k + noise) must say so too, boundaries aside.
    close = np.abs(out_image.numpy() - 0.15 * out_label.numpy()) < 0.06
    assert close.mean() > 0.95
    for k in (1, 2, 5):
        assert (out_label == k).sum() > 10  # no class lost at this size


def test_rot90_flip_without_resize_is_exact():
    image, label = blobs(40, 40)
    out_image, out_label = augment(image, label, {"k": 1, "axis": 1, "angle": None}, (40, 40))
    np.testing.assert_array_equal(out_image.numpy(), np.flip(np.rot90(image, 1), axis=1))
    np.testing.assert_array_equal(out_label.numpy(), np.flip(np.rot90(label, 1), axis=1))
    same_image, same_label = augment(image, label, BRANCHES[0], (40, 40))
    np.testing.assert_array_equal(same_image.numpy(), image)
    np.testing.assert_array_equal(same_label.numpy(), label)


def test_label_values_stay_within_the_input_set():
    rng = np.random.default_rng(1)
    label = rng.choice(np.array([0, 3, 7], np.uint8), size=(37, 45))  # worst case: values change every pixel
    image = label.astype(np.float32)
    generator = torch.Generator().manual_seed(0)
    for _ in range(30):
        params = draw_params(generator)
        _, out = augment(image, label, params, (29, 61))
        assert set(np.unique(out.numpy())) <= {0, 3, 7}
    # Without 0 in the input, a rotation may add background only where it uncovers the corners.
    no_background = rng.choice(np.array([2, 4], np.uint8), size=(30, 30))
    _, out = augment(no_background.astype(np.float32), no_background, BRANCHES[3], (30, 30))
    values = set(np.unique(out.numpy()))
    assert values <= {0, 2, 4} and {2, 4} <= values
    assert (out.numpy()[10:20, 10:20] != 0).all()  # the centre is never uncovered
    _, out = augment(no_background.astype(np.float32), no_background, BRANCHES[1], (21, 50))
    assert set(np.unique(out.numpy())) <= {2, 4}


def test_random_generator_item_and_branch_frequencies():
    image, label = blobs()
    transform = RandomGenerator(24, generator=torch.Generator().manual_seed(3))
    item = transform({"image": image, "label": label, "case_name": "case0005_slice000"})
    assert item["image"].shape == (1, 24, 24) and item["label"].shape == (24, 24)
    assert item["case_name"] == "case0005_slice000"
    generator = torch.Generator().manual_seed(0)
    draws = [draw_params(generator) for _ in range(2000)]
    flips = sum(d["k"] is not None for d in draws) / len(draws)
    rotations = [d["angle"] for d in draws if d["angle"] is not None]
    assert abs(flips - 0.5) < 0.05 and abs(len(rotations) / len(draws) - 0.25) < 0.04
    assert min(rotations) == -20 and max(rotations) == 19  # integer angles in [-20, 19]
    assert {d["k"] for d in draws if d["k"] is not None} == {0, 1, 2, 3}
    again = torch.Generator().manual_seed(0)
    assert [draw_params(again) for _ in range(50)] == draws[:50]
