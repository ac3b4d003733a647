"""The training loss of the public DLKUNet release: cross-entropy plus a soft Dice term.

``loss = w_ce * CE(logits, labels) + w_dice * Dice(logits, labels)``

- The Dice term is TransUNet's (FACTS.md): softmax over classes, one-hot labels including the
  background, per class ``1 - (2 sum(p t) + 1e-5) / (sum(p^2) + sum(t^2) + 1e-5)`` with the sums
  running over the whole batch (not per image), then the mean over classes. A class absent from
  the batch and not predicted contributes ``1 - 1e-5 / (sum(p^2) + 1e-5)``, close to 0 when the
  network puts no probability on it.
- The weights are fixed (``--loss_schedule fixed``: the release's ``(1, 1)`` on Synapse and
  ``(0.4, 0.6)`` on ACDC) or follow the release's "training strategy" (``sigmoid``): with
  ``s = 1 / (1 + exp(-0.1 (epoch - 150)))`` the weights are ``(1 - s, 1 + s)``, moving the
  emphasis from cross-entropy early to Dice late. ``epoch`` is the 0-based index of the epoch
  being trained (0 for the first, 299 for the last of 300).
"""

import math

import torch.nn.functional as F
from torch import nn

SCHEDULES = ("fixed", "sigmoid")
SIGMOID_SLOPE = 0.1
SIGMOID_MIDPOINT = 150


def sigmoid_weights(epoch, slope=SIGMOID_SLOPE, midpoint=SIGMOID_MIDPOINT):
    """``(ce_weight, dice_weight) = (1 - s, 1 + s)`` with ``s = 1 / (1 + exp(-slope (epoch - midpoint)))``.

    Epoch 0 gives about ``(1, 1)``, epoch 150 exactly ``(0.5, 1.5)``, epoch 300 about ``(0, 2)``.
    """
    s = 1.0 / (1.0 + math.exp(-slope * (epoch - midpoint)))
    return 1.0 - s, 1.0 + s


def loss_weights(epoch, schedule="fixed", weights=(1.0, 1.0)):
    """The ``(ce_weight, dice_weight)`` pair for the 0-based ``epoch``.

    Args:
        epoch: 0-based index of the epoch being trained.
        schedule: ``"fixed"`` returns ``weights``; ``"sigmoid"`` the release's schedule, which
            replaces ``weights``.
        weights: the fixed ``(ce, dice)`` pair.

    Raises:
        ValueError: for an unknown schedule.
    """
    if schedule == "fixed":
        return float(weights[0]), float(weights[1])
    if schedule == "sigmoid":
        return sigmoid_weights(epoch)
    raise ValueError(f"unknown loss schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")


def soft_dice_loss(logits, labels, smooth=1e-5):
    """TransUNet's soft Dice loss, averaged over all classes including the background.

    Args:
        logits: ``(N, K, H, W)`` float network output (any float dtype; computed in float32).
        labels: ``(N, H, W)`` int64 class indices in ``0..K-1``.
        smooth: added to numerator and denominator, as released.

    Returns:
        Scalar float32 tensor in ``[0, 1]``.
    """
    num_classes = logits.shape[1]
    probs = F.softmax(logits.float(), dim=1)
    one_hot = F.one_hot(labels, num_classes).permute(0, 3, 1, 2).to(probs.dtype)
    dims = (0, 2, 3)
    intersection = (probs * one_hot).sum(dims)
    # sum(t^2) equals sum(t) for a one-hot target; written as released for clarity.
    denominator = (probs * probs).sum(dims) + (one_hot * one_hot).sum(dims)
    per_class = 1.0 - (2.0 * intersection + smooth) / (denominator + smooth)
    return per_class.mean()


class SegmentationLoss(nn.Module):
    """Weighted cross-entropy plus soft Dice; ``forward`` returns the total and both terms.

    Args:
        schedule: ``"fixed"`` or ``"sigmoid"`` (see the module docstring).
        weights: ``(ce, dice)`` for the fixed schedule.
    """

    def __init__(self, schedule="fixed", weights=(1.0, 1.0)):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown loss schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
        self.schedule = schedule
        self.weights = (float(weights[0]), float(weights[1]))

    def weights_at(self, epoch):
        """``(ce_weight, dice_weight)`` for the 0-based ``epoch``."""
        return loss_weights(epoch, self.schedule, self.weights)

    def forward(self, logits, labels, epoch):
        """``(total, ce, dice)`` float32 scalars for ``(N, K, H, W)`` logits, ``(N, H, W)`` labels.

        ``ce`` and ``dice`` are detached (for logging); ``total`` carries the gradient.
        """
        ce_weight, dice_weight = self.weights_at(epoch)
        logits = logits.float()
        ce = F.cross_entropy(logits, labels)
        dice = soft_dice_loss(logits, labels)
        return ce_weight * ce + dice_weight * dice, ce.detach(), dice.detach()


def describe_weights(schedule, weights):
    """One phrase for logs: ``fixed CE 1 + Dice 1`` or ``sigmoid CE (1-s) + Dice (1+s), ...``."""
    if schedule == "sigmoid":
        return f"sigmoid: CE (1-s) + Dice (1+s), s = 1/(1+exp(-{SIGMOID_SLOPE}(epoch-{SIGMOID_MIDPOINT})))"
    return f"fixed: CE {weights[0]:g} + Dice {weights[1]:g}"
