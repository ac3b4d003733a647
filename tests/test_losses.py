"""The release's loss: TransUNet's soft Dice term, CE + Dice weights, the sigmoid schedule."""

import math

import pytest
import torch
import torch.nn.functional as F

from dlkunet.losses import SegmentationLoss, loss_weights, sigmoid_weights, soft_dice_loss


@pytest.mark.parametrize(
    "epoch, expected",
    [
        # s = 1 / (1 + exp(15)) and 1 / (1 + exp(-15)): the end points are close to, not at, 0 and 1.
        (0, (1 - 1 / (1 + math.exp(15)), 1 + 1 / (1 + math.exp(15)))),
        (150, (0.5, 1.5)),
        (300, (1 - 1 / (1 + math.exp(-15)), 1 + 1 / (1 + math.exp(-15)))),
    ],
)
def test_sigmoid_weights_at_epochs_0_150_300(epoch, expected):
    ce, dice = sigmoid_weights(epoch)
    assert ce == pytest.approx(expected[0], abs=1e-12)
    assert dice == pytest.approx(expected[1], abs=1e-12)
    assert ce + dice == pytest.approx(2.0)


def test_sigmoid_schedule_moves_weight_from_ce_to_dice():
    assert sigmoid_weights(0)[0] > 0.9999 and sigmoid_weights(300)[0] < 1e-6
    ces = [loss_weights(e, "sigmoid")[0] for e in range(0, 301, 10)]
    assert ces == sorted(ces, reverse=True)


def test_fixed_schedule_keeps_the_given_weights():
    assert loss_weights(0, "fixed", (0.4, 0.6)) == (0.4, 0.6)
    assert loss_weights(299, "fixed", (0.4, 0.6)) == (0.4, 0.6)
    with pytest.raises(ValueError, match="unknown loss schedule"):
        loss_weights(0, "cosine")


def test_dice_term_matches_a_hand_computed_value():
    # Zero logits: p = 0.5 for both classes at all four pixels; labels [0, 0, 0, 1].
    logits = torch.zeros(1, 2, 2, 2)
    labels = torch.tensor([[[0, 0], [0, 1]]])
    smooth = 1e-5
    background = 1 - (2 * 1.5 + smooth) / (4 * 0.25 + 3 + smooth)
    foreground = 1 - (2 * 0.5 + smooth) / (4 * 0.25 + 1 + smooth)
    assert soft_dice_loss(logits, labels).item() == pytest.approx((background + foreground) / 2, rel=1e-6)


def test_dice_term_sums_over_the_batch_and_matches_a_loop():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 5, 6)
    labels = torch.randint(0, 4, (3, 5, 6))
    probs = logits.softmax(1)
    per_class = []
    for k in range(4):
        p, t = probs[:, k], (labels == k).float()
        per_class.append(1 - (2 * (p * t).sum() + 1e-5) / ((p * p).sum() + (t * t).sum() + 1e-5))
    assert soft_dice_loss(logits, labels).item() == pytest.approx(
        torch.stack(per_class).mean().item(), rel=1e-6
    )


def test_dice_term_is_near_zero_for_a_confident_correct_prediction():
    labels = torch.tensor([[[0, 1], [2, 2]]])
    logits = 50 * F.one_hot(labels, 3).permute(0, 3, 1, 2).float()
    assert soft_dice_loss(logits, labels).item() < 1e-6


def test_total_is_the_weighted_sum_and_only_it_carries_the_gradient():
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    labels = torch.randint(0, 3, (2, 4, 4))
    total, ce, dice = SegmentationLoss("fixed", (0.4, 0.6))(logits, labels, epoch=7)
    assert ce.item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert dice.item() == pytest.approx(soft_dice_loss(logits, labels).item())
    assert total.item() == pytest.approx(0.4 * ce.item() + 0.6 * dice.item(), rel=1e-6)
    assert total.requires_grad and not ce.requires_grad and not dice.requires_grad

    total, ce, dice = SegmentationLoss("sigmoid", (0.4, 0.6))(logits, labels, epoch=150)
    assert total.item() == pytest.approx(0.5 * ce.item() + 1.5 * dice.item(), rel=1e-6)
