"""Metrics: the two empty-mask conventions on hand-made masks, and equality with medpy."""

import math

import numpy as np
import pytest
from medpy.metric import binary
from scipy.ndimage import gaussian_filter

from dlkunet.metrics import (
    calculate_metric_percase,
    case_means,
    dice,
    hd95,
    score_volume,
    summarize,
    union_box,
)

NAN = float("nan")


def square(shape, top, left, size):
    mask = np.zeros(shape, dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


EMPTY = np.zeros((8, 8), dtype=bool)
SOME = square((8, 8), 2, 2, 3)


@pytest.mark.parametrize(
    "pred, gt, transunet, strict",
    [
        (SOME, SOME, (1.0, 0.0), (1.0, 0.0)),  # both non-empty: the real values
        (SOME, EMPTY, (1.0, 0.0), (0.0, NAN)),  # a prediction on an empty ground truth
        (EMPTY, SOME, (0.0, 0.0), (0.0, NAN)),  # a missed object
        (EMPTY, EMPTY, (0.0, 0.0), (NAN, NAN)),  # nothing anywhere
    ],
    ids=["both", "pred-only", "gt-only", "neither"],
)
def test_conventions_on_every_empty_case(pred, gt, transunet, strict):
    assert calculate_metric_percase(pred, gt) == transunet
    assert calculate_metric_percase(pred, gt, convention="transunet") == transunet
    got = calculate_metric_percase(pred, gt, convention="strict")
    assert all((math.isnan(a) and math.isnan(b)) or a == b for a, b in zip(got, strict, strict=True))


def test_hand_computed_values():
    gt = square((10, 10), 2, 2, 4)  # 16 pixels
    pred = square((10, 10), 2, 4, 4)  # shifted right by 2: 8 shared pixels
    d, h = calculate_metric_percase(pred, gt)
    assert d == 2 * 8 / (16 + 16)
    # Surfaces are the squares' outlines; every pooled distance is 0, 1 or 2 and at least 5% are 2.
    assert h == 2.0
    # In mm the shift along the columns is 2 * 0.5 mm.
    assert calculate_metric_percase(pred, gt, spacing=(3.0, 0.5))[1] == 1.0


def test_unknown_convention_and_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="convention"):
        calculate_metric_percase(SOME, SOME, convention="monai")
    with pytest.raises(ValueError, match="shape"):
        calculate_metric_percase(SOME, np.ones((8, 9), bool))
    with pytest.raises(ValueError, match="spacing"):
        calculate_metric_percase(SOME, SOME, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="empty"):
        hd95(SOME, EMPTY)


def blobs(rng, shape, level):
    """Smooth random blobs, several components, usually touching the array border."""
    return gaussian_filter(rng.random(shape), 1.0) > level


@pytest.mark.parametrize("ndim", [2, 3])
def test_equal_to_medpy_on_random_shapes(ndim):
    rng = np.random.default_rng(ndim)
    checked = 0
    for trial in range(60):
        shape = tuple(int(n) for n in rng.integers(3, 30, size=ndim))
        pred, gt = blobs(rng, shape, rng.uniform(0.45, 0.56)), blobs(rng, shape, rng.uniform(0.45, 0.56))
        if not pred.any() or not gt.any():
            continue
        spacing = None if trial % 3 else tuple(rng.uniform(0.3, 4.0, size=ndim))
        expected = (binary.dc(pred, gt), binary.hd95(pred, gt, voxelspacing=spacing))
        assert calculate_metric_percase(pred, gt, spacing=spacing) == expected, (shape, spacing)
        assert dice(pred, gt) == expected[0]
        assert hd95(pred, gt, spacing) == expected[1]
        checked += 1
    assert checked > 30


@pytest.mark.parametrize(
    "pred_box, gt_box",
    [
        ((slice(None), slice(None), slice(None)), (slice(2, 5), slice(0, 4), slice(3, 9))),  # all foreground
        ((slice(0, 1), slice(0, 12), slice(0, 1)), (slice(5, 6), slice(11, 12), slice(9, 10))),  # corners
        ((slice(0, 6), slice(3, 4), slice(0, 10)), (slice(1, 6), slice(2, 12), slice(9, 10))),  # faces
        ((slice(2, 3), slice(5, 6), slice(4, 5)), (slice(3, 4), slice(7, 8), slice(6, 7))),  # single voxels
    ],
)
def test_equal_to_medpy_where_masks_touch_the_border(pred_box, gt_box):
    pred, gt = np.zeros((6, 12, 10), bool), np.zeros((6, 12, 10), bool)
    pred[pred_box], gt[gt_box] = True, True
    for spacing in (None, (2.5, 0.7, 0.9)):
        expected = (binary.dc(pred, gt), binary.hd95(pred, gt, voxelspacing=spacing))
        assert calculate_metric_percase(pred, gt, spacing=spacing) == expected


def test_union_box_keeps_a_margin_and_stops_at_the_border():
    pred, gt = np.zeros((5, 9), bool), np.zeros((5, 9), bool)
    pred[0, 3], gt[2, 6] = True, True
    assert union_box(pred, gt) == (slice(0, 4), slice(2, 8))
    assert union_box(np.zeros((5, 9)), np.zeros((5, 9))) is None


def label_volume(rng, shape, num_classes):
    """An integer label map with a few smooth organs (later ones overwrite earlier ones)."""
    labels = np.zeros(shape, np.uint8)
    for k in range(1, num_classes):
        labels[blobs(rng, shape, 0.56)] = k
    return labels


def test_score_volume_equals_scoring_each_class_on_the_full_volume():
    rng = np.random.default_rng(7)
    gt, pred = label_volume(rng, (7, 20, 24), 6), label_volume(rng, (7, 20, 24), 6)
    gt[gt == 3] = 0  # class 3 absent from the ground truth
    pred[pred == 4] = 0  # class 4 absent from the prediction
    gt[gt == 5], pred[pred == 5] = 0, 0  # class 5 absent from both
    for convention in ("transunet", "strict"):
        for spacing in (None, (3.0, 0.8, 0.8)):
            scores = score_volume(pred, gt, 6, convention, spacing)
            assert scores.shape == (5, 2) and scores.dtype == np.float64
            for k in range(1, 6):
                expected = calculate_metric_percase(pred == k, gt == k, convention, spacing)
                np.testing.assert_array_equal(scores[k - 1], expected)
    strict = score_volume(pred, gt, 6, "strict")
    assert strict[2, 0] == 0 and np.isnan(strict[2, 1])  # prediction only
    assert strict[3, 0] == 0 and np.isnan(strict[3, 1])  # ground truth only
    assert np.isnan(strict[4]).all()  # neither
    np.testing.assert_array_equal(score_volume(pred, gt, 6)[2:], [[1, 0], [0, 0], [0, 0]])


def test_summarize_means_as_released_and_nan_aware_under_strict():
    scores = np.array(
        [
            [[0.8, 4.0], [0.6, 10.0]],
            [[1.0, 2.0], [NAN, NAN]],
            [[0.0, NAN], [0.4, 6.0]],
        ]
    )
    strict = summarize(scores, "strict")
    np.testing.assert_allclose(strict["class_means"], [[0.6, 3.0], [0.5, 8.0]])
    assert strict["mean_dice"] == pytest.approx(0.55) and strict["mean_hd95"] == pytest.approx(5.5)
    np.testing.assert_array_equal(strict["undefined"], [[0, 1], [1, 1]])
    plain = summarize(np.nan_to_num(scores), "transunet")
    np.testing.assert_allclose(plain["class_means"], [[0.6, 2.0], [1.0 / 3, 16.0 / 3]])
    assert plain["undefined"].sum() == 0
    # A class never defined in any case stays NaN and drops out of the overall mean.
    lonely = summarize(np.array([[[0.5, 1.0], [NAN, NAN]]]), "strict")
    assert np.isnan(lonely["class_means"][1]).all() and lonely["mean_dice"] == 0.5
    assert case_means(scores[1], "strict") == (1.0, 2.0)
    assert np.isnan(case_means(np.full((2, 2), NAN), "strict")).all()
