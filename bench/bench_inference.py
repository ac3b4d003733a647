"""Volume inference time: slice by slice (as released) vs dlkunet.inference.predict_volume.

    python bench/bench_inference.py                  # DLKUNet-M, 8 slices of 512 px, CPU or GPU
    python bench/bench_inference.py --full           # 148 slices (a Synapse-sized volume)

The same network and the same phantom volume go through both paths in one process. The
baseline is the release's loop: per slice a linear resize to 224, a forward pass of one slice,
softmax, argmax, a nearest resize back. Ours resizes the whole volume at once and runs
``--batch_size`` slices per forward pass, channels_last, under autocast on CUDA. The label maps
are compared: the share of voxels that agree is printed (batched kernels round differently, so
a voxel whose top two classes are nearly tied may flip). After a warm-up on two slices, each
path is timed 3 times (once with --full), alternating so that a busy machine slows both alike.
"""

import argparse
import statistics
import time

import common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import torch
from common import print_rows, row
from scipy.ndimage import zoom

from dlkunet.inference import predict_volume
from dlkunet.phantoms import synapse_case
from dlkunet.prepare import window_hu
from network import get_model

PATCH = 224


@torch.inference_mode()
def predict_slice_by_slice(model, volume, device):
    """The released procedure, one slice per forward pass."""
    prediction = np.zeros(volume.shape, dtype=np.uint8)
    for i, image in enumerate(volume):
        h, w = image.shape
        small = zoom(image, (PATCH / h, PATCH / w), order=1)
        x = torch.from_numpy(small.astype(np.float32))[None, None].to(device)
        labels = torch.argmax(torch.softmax(model(x), dim=1), dim=1)[0].cpu().numpy()
        prediction[i] = zoom(labels, (h / PATCH, w / PATCH), order=0)
    return prediction


def run(full=False, device=None, batch_size=16, model_name="M"):
    """One row: seconds per volume, slice by slice vs batched (median of 3 alternating runs)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    slices = 148 if full else 8
    hu, _, _ = synapse_case(seed=0, index=1, size=512, slices=slices)
    volume = window_hu(hu).astype(np.float32)
    torch.manual_seed(0)
    model = get_model(model_name, num_classes=9).to(device).eval()
    amp = device.startswith("cuda")

    def sync():
        if amp:
            torch.cuda.synchronize()

    def baseline_run(volume=volume):
        out = predict_slice_by_slice(model, volume, device)
        sync()
        return out

    def ours_run(volume=volume):
        out = predict_volume(model, volume, PATCH, batch_size, device, amp=amp, channels_last=True)
        sync()
        return out

    baseline_run(volume[:2])  # warm-up (allocator, cuDNN autotuning) on two slices
    model.to(memory_format=torch.channels_last)
    ours_run(volume[:2])
    times = {"base": [], "ours": []}
    for _ in range(1 if full else 3):
        for key, fn in (("base", baseline_run), ("ours", ours_run)):
            model.to(memory_format=torch.contiguous_format if key == "base" else torch.channels_last)
            start = time.perf_counter()
            outputs = fn()
            times[key].append(time.perf_counter() - start)
            if key == "base":
                reference = outputs
    agree = float(np.mean(outputs == reference))
    print(f"labels agreeing with slice-by-slice: {100 * agree:.3f}% of voxels")
    base, ours = statistics.median(times["base"]), statistics.median(times["ours"])
    name = f"infer DLKUNet-{model_name} {slices}x512x512 ({device})"
    return [row(name, "1 slice/pass", base, f"batch {batch_size}", ours, "s/volume")]


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--full", action="store_true", help="148 slices (a Synapse-sized volume)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--batch_size", type=int, default=16, help="slices per forward pass for ours")
    parser.add_argument("--model", default="M", help="DLKUNet variant")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print_rows(run(args.full, args.device, args.batch_size, args.model), title="volume inference")


if __name__ == "__main__":
    main()
