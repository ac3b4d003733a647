"""Volume prediction: slices resized to the network's input size, batched, argmax, resized back.

This is the public release's test-time procedure (FACTS.md): per slice a linear resize to the
patch size, the network, argmax over classes, and a nearest-neighbour resize back to the
slice's size. The resizes run once per volume with scipy (a zoom factor of 1 along the slice
axis leaves slices independent, so the result equals slice-by-slice resizing), and the network
sees ``batch_size`` slices per forward pass instead of one.
"""

import contextlib

import numpy as np
import torch
from scipy.ndimage import zoom


def autocast_context(device, amp):
    """bf16 autocast on CUDA when asked and supported, fp16 otherwise; nothing on the CPU."""
    device = torch.device(device)
    if not amp or device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def resize_slices(volume, size, order):
    """Resize every slice of a ``(D, H, W)`` array to ``size=(h, w)`` with scipy's ``zoom``."""
    d, h, w = volume.shape
    if (h, w) == tuple(size):
        return volume
    return zoom(volume, (1, size[0] / h, size[1] / w), order=order)


@torch.inference_mode()
def predict_volume(
    model, image, patch_size=(224, 224), batch_size=16, device="cpu", amp=False, channels_last=True
):
    """Predict a label map for a volume.

    Args:
        model: a network mapping ``(N, 1, h, w)`` to ``(N, K, h, w)`` logits; put in eval mode
            by the caller.
        image: ``(D, H, W)`` or ``(H, W)`` array (or tensor) of intensities, float.
        patch_size: ``(h, w)`` or an int, the size the network sees.
        batch_size: slices per forward pass.
        device: where the network runs (the model must already be there).
        amp: autocast on CUDA (ignored on the CPU).
        channels_last: feed the network channels_last tensors (faster for depthwise convs).

    Returns:
        ``(D, H, W)`` (or ``(H, W)``) uint8 array of class indices, the input's shape.
    """
    if isinstance(patch_size, int):
        patch_size = (patch_size, patch_size)
    image = image.detach().cpu().numpy() if torch.is_tensor(image) else np.asarray(image)
    squeeze = image.ndim == 2
    volume = image[None] if squeeze else image
    d, h, w = volume.shape
    resized = resize_slices(volume.astype(np.float32, copy=False), patch_size, order=1)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    labels = np.empty((d, *patch_size), dtype=np.uint8)
    for start in range(0, d, batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(resized[start : start + batch_size]))
        batch = batch.unsqueeze(1).to(device, non_blocking=True).contiguous(memory_format=memory_format)
        with autocast_context(device, amp):
            logits = model(batch)
        # argmax of the logits equals argmax of their softmax, so the softmax is skipped.
        labels[start : start + batch_size] = logits.argmax(dim=1).to(torch.uint8).cpu().numpy()
    prediction = resize_slices(labels, (h, w), order=0)
    return prediction[0] if squeeze else prediction
