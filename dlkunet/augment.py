"""Training augmentation with the public release's semantics, resampled once.

The release (as TransUNet) augments each training slice so (FACTS.md):

1. with probability 0.5: rotate by ``k * 90`` degrees (``k`` in 0..3) and flip along a random
   axis;
2. otherwise, with probability 0.5: rotate by an integer angle in ``[-20, 19]`` degrees,
   nearest-neighbour for image and label;
3. resize to the training size: cubic for the image, nearest for the label.

Done that way (``scipy.ndimage.rotate`` at full size, then ``scipy.ndimage.zoom``) a 512x512
slice costs 10-20 ms on one core. ``RandomGenerator`` keeps steps 1 and the parameter draws, but
does the small rotation and the resize as one warp: each output pixel is mapped through the
combined rotation and scaling to the input slice and sampled there once, with
``torch.nn.functional.grid_sample`` (bicubic for the image, nearest for the label); without a
rotation the resize is separable (``interpolate``, bicubic, and a nearest-index lookup). The
geometry equals the release's (rotation about the slice centre, corner-aligned resize). Two
differences, both deliberate:

- the image is interpolated once (cubic) instead of twice (nearest, then cubic), so rotated
  images lack the jagged edges of the nearest-neighbour rotation;
- the cubic kernel is the cubic convolution kernel (a = -0.75) rather than scipy's cubic
  B-spline; both pass exactly through the samples when no resampling is needed.

The label is only ever sampled with nearest neighbour, so it holds no value that is not in the
input, except background (0) where a rotation uncovers the corners, as in the release.
``augment_released`` is the release's procedure, kept to compare against (tests, bench).
"""

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage


def draw_params(generator=None):
    """Draw one augmentation: ``{"k": int|None, "axis": int|None, "angle": int|None}``.

    ``k``/``axis`` are set for the rot90+flip branch, ``angle`` (degrees) for the small rotation
    branch, neither for a slice left as it is. Draws use torch's random generator (``generator``
    or the global one, which PyTorch seeds differently in each DataLoader worker).
    """

    def uniform():
        return torch.rand((), generator=generator).item()

    def integer(low, high):
        return int(torch.randint(low, high, (), generator=generator).item())

    if uniform() > 0.5:
        return {"k": integer(0, 4), "axis": integer(0, 2), "angle": None}
    if uniform() > 0.5:
        return {"k": None, "axis": None, "angle": integer(-20, 20)}
    return {"k": None, "axis": None, "angle": None}


def rot_flip(image, label, k, axis):
    """Rotate both arrays by ``k * 90`` degrees and flip them along ``axis`` (exact, no resampling)."""
    image = np.flip(np.rot90(image, k), axis=axis)
    label = np.flip(np.rot90(label, k), axis=axis)
    return image, label


def warp_grid(in_shape, out_shape, angle):
    """Sampling grid for ``grid_sample``: rotation by ``angle`` degrees about the centre, then resize.

    Returns:
        ``(1, oh, ow, 2)`` float32 tensor of normalised ``(x, y)`` input positions
        (``align_corners=True``: -1 and 1 are the centres of the first and last pixels).

    The rotation follows ``scipy.ndimage.rotate(..., axes=(1, 0), reshape=False)``: it turns in
    pixel units about the slice centre, so non-square slices rotate without shearing.
    """
    h, w = in_shape
    oh, ow = out_shape
    # Output pixel centres in the input's normalised frame (corner-aligned, like scipy's zoom).
    ys = torch.linspace(-1.0, 1.0, oh) if oh > 1 else torch.zeros(1)
    xs = torch.linspace(-1.0, 1.0, ow) if ow > 1 else torch.zeros(1)
    half_h, half_w = max(h - 1, 1) / 2.0, max(w - 1, 1) / 2.0
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    # In pixel units about the centre, rotate back to where each output pixel came from.
    grid = torch.empty(1, oh, ow, 2)
    grid[0, :, :, 0] = cos * xs[None, :] - (sin * half_h / half_w) * ys[:, None]
    grid[0, :, :, 1] = (sin * half_w / half_h) * xs[None, :] + cos * ys[:, None]
    return grid


def nearest_indices(n_in, n_out):
    """Input index nearest to each output position of a corner-aligned resize (scipy's ``zoom``)."""
    if n_out == 1:
        return np.zeros(1, dtype=np.intp)
    return np.floor(np.arange(n_out) * ((n_in - 1) / (n_out - 1)) + 0.5).astype(np.intp)


def warp(image, label, angle, output_size):
    """Rotate (degrees) and resize both arrays in one resampling each.

    Args:
        image: ``(H, W)`` float array.
        label: ``(H, W)`` integer array.
        angle: degrees, or None/0 for no rotation.
        output_size: ``(oh, ow)``.

    Returns:
        ``(image, label)`` tensors: float32 ``(oh, ow)`` and int64 ``(oh, ow)``; where a rotation
        uncovers the corners both are 0.
    """
    image_t = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None]
    h, w = image.shape
    if not angle:
        if (h, w) == tuple(output_size):
            return image_t[0, 0], torch.from_numpy(np.asarray(label, dtype=np.int64))
        # A plain resize is separable: cubic convolution along each axis, and a label lookup at
        # the same corner-aligned positions, rounded.
        out_image = F.interpolate(image_t, size=tuple(output_size), mode="bicubic", align_corners=True)
        rows, cols = nearest_indices(h, output_size[0]), nearest_indices(w, output_size[1])
        return out_image[0, 0], torch.from_numpy(np.asarray(label)[np.ix_(rows, cols)].astype(np.int64))
    grid = warp_grid((h, w), output_size, angle)
    out_image = F.grid_sample(image_t, grid, mode="bicubic", padding_mode="zeros", align_corners=True)
    label_t = torch.from_numpy(np.asarray(label, dtype=np.float32))[None, None]
    out_label = F.grid_sample(label_t, grid, mode="nearest", padding_mode="zeros", align_corners=True)
    return out_image[0, 0], out_label[0, 0].round().long()


class RandomGenerator:
    """Training transform: the release's random rot90/flip or small rotation, then resize.

    Args:
        output_size: ``(h, w)`` or an int, the training size (224 in the release).
        generator: optional ``torch.Generator`` for the random draws (the global one otherwise).

    Call on a slice item ``{"image": (H, W) float, "label": (H, W) int, "case_name": ...}``;
    returns the item with ``image`` a float32 tensor ``(1, h, w)`` and ``label`` an int64
    tensor ``(h, w)``, other keys passed through.
    """

    def __init__(self, output_size, generator=None):
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        self.output_size = tuple(int(s) for s in output_size)
        self.generator = generator

    def __call__(self, sample):
        params = draw_params(self.generator)
        image, label = augment(sample["image"], sample["label"], params, self.output_size)
        return {**sample, "image": image[None], "label": label}

    def __repr__(self):
        return f"RandomGenerator(output_size={self.output_size})"


def augment(image, label, params, output_size):
    """Apply drawn ``params`` (see ``draw_params``) to one slice; one resampling per array.

    Returns ``(image, label)`` tensors, float32 ``(h, w)`` and int64 ``(h, w)``.
    """
    if params["k"] is not None:
        image, label = rot_flip(image, label, params["k"], params["axis"])
    return warp(image, label, params["angle"], output_size)


def augment_released(image, label, params, output_size):
    """The release's procedure for the same ``params``: scipy rotate at full size, then scipy zoom.

    Slow (two full-size resamplings of each array, spline prefiltering for the cubic zoom); kept
    as the reference that ``bench/bench_augment.py`` and the tests compare ``augment`` with.

    Returns ``(image, label)`` numpy arrays, float32 ``(h, w)`` and int64 ``(h, w)``.
    """
    if params["k"] is not None:
        image, label = rot_flip(image, label, params["k"], params["axis"])
    if params["angle"] is not None:
        image = ndimage.rotate(image, params["angle"], order=0, reshape=False)
        label = ndimage.rotate(label, params["angle"], order=0, reshape=False)
    h, w = image.shape
    if (h, w) != tuple(output_size):
        image = ndimage.zoom(image, (output_size[0] / h, output_size[1] / w), order=3)
        label = ndimage.zoom(label, (output_size[0] / h, output_size[1] / w), order=0)
    return np.asarray(image, dtype=np.float32), np.asarray(label, dtype=np.int64)
