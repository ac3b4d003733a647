"""Pictures people look at: prediction overlays and Dice/HD95-per-epoch curves, drawn with PIL.

No plotting library is needed: overlays use torchvision's ``draw_segmentation_masks`` and the
curves are drawn with PIL's ``ImageDraw`` (PIL comes with torchvision).
"""

import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import draw_segmentation_masks

# One colour per foreground class (class k uses PALETTE[k - 1]), distinct on grey CT/MR slices.
PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (170, 110, 40),
]
WHITE, BLACK, GREY = (255, 255, 255), (0, 0, 0), (200, 200, 200)


def font(size=14):
    """PIL's built-in scalable font (no font files needed)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def class_color(k):
    return PALETTE[(k - 1) % len(PALETTE)]


def to_grey_rgb(image):
    """``(H, W)`` float slice -> ``(3, H, W)`` uint8 tensor, min-max scaled per slice."""
    image = np.asarray(image, dtype=np.float32)
    low, high = float(image.min()), float(image.max())
    scaled = (image - low) / (high - low) if high > low else np.zeros_like(image)
    grey = torch.from_numpy(np.round(scaled * 255).astype(np.uint8))
    return grey.unsqueeze(0).repeat(3, 1, 1)


def overlay(image, labels, num_classes, alpha=0.45):
    """``(H, W)`` slice, each foreground class of ``labels`` in its colour, as ``(3, H, W)`` uint8."""
    base = to_grey_rgb(image)
    labels = torch.from_numpy(np.asarray(labels).astype(np.int64))
    classes = list(range(1, num_classes))
    masks = torch.stack([labels == k for k in classes])
    if not masks.any():
        return base
    return draw_segmentation_masks(base, masks, alpha=alpha, colors=[class_color(k) for k in classes])


def pick_slices(gt, pred, count=3):
    """Up to ``count`` slice indices spread over the slices where the ground truth (or else the
    prediction) has foreground; evenly spread over the volume when neither has any."""
    depth = gt.shape[0]
    for volume in (gt, pred):
        with_objects = np.flatnonzero(np.asarray(volume).reshape(depth, -1).any(axis=1))
        if with_objects.size:
            break
    else:
        with_objects = np.arange(depth)
    positions = np.linspace(0, with_objects.size - 1, num=min(count, with_objects.size))
    return sorted({int(with_objects[int(round(p))]) for p in positions})


def overlay_figure(image, gt, pred, class_names, title, min_size=256):
    """One slice as [image | ground truth | prediction] with a colour legend underneath, a PIL image."""
    num_classes = len(class_names)
    panels = [to_grey_rgb(image), overlay(image, gt, num_classes), overlay(image, pred, num_classes)]
    h, w = panels[0].shape[1:]
    scale = max(1, math.ceil(min_size / max(h, w)))  # small phantoms are enlarged, pixels kept sharp
    tiles = [
        Image.fromarray(p.permute(1, 2, 0).numpy()).resize((w * scale, h * scale), Image.NEAREST)
        for p in panels
    ]
    tw, th = tiles[0].size
    text = font(14)
    legend_rows = math.ceil((num_classes - 1) / 4)
    canvas = Image.new("RGB", (3 * tw + 40, th + 50 + 24 * legend_rows), WHITE)
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 4), title, fill=BLACK, font=text)
    for i, (tile, name) in enumerate(zip(tiles, ["image", "ground truth", "prediction"], strict=True)):
        x = 10 + i * (tw + 10)
        canvas.paste(tile, (x, 40))
        draw.text((x, 22), name, fill=BLACK, font=text)
    for k in range(1, num_classes):
        x = 10 + ((k - 1) % 4) * max(160, (3 * tw + 20) // 4)
        y = th + 48 + 24 * ((k - 1) // 4)
        draw.rectangle((x, y, x + 16, y + 16), fill=class_color(k), outline=BLACK)
        draw.text((x + 22, y), f"{k} {class_names[k]}", fill=BLACK, font=text)
    return canvas


def save_overlays(image, gt, pred, class_names, case_name, folder, count=3):
    """Write ``<case>_slice<i>.png`` overlays for a few slices of a ``(D, H, W)`` volume; return the paths."""
    paths = []
    for i in pick_slices(gt, pred, count):
        path = Path(folder) / f"{case_name}_slice{i:03d}.png"
        figure = overlay_figure(image[i], gt[i], pred[i], class_names, f"{case_name}, slice {i}")
        save_png(figure, path)
        paths.append(path)
    return paths


def nice_ticks(low, high, count=5):
    """About ``count`` round tick values covering ``[low, high]``."""
    if not high > low:
        low, high = low - 1, high + 1
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    start = math.floor(low / step) * step
    return [start + i * step for i in range(int(math.ceil((high - start) / step)) + 1)]


def draw_panel(draw, box, series, title, xlabel, ylabel):
    """Line chart of ``series`` [(name, colour, [(x, y), ...])] inside ``box`` (left, top, right, bottom)."""
    text = font(13)
    left, top, right, bottom = box[0] + 60, box[1] + 30, box[2] - 15, box[3] - 45
    points = [(x, y) for _, _, pts in series for x, y in pts]
    xt = nice_ticks(min(p[0] for p in points), max(p[0] for p in points))
    yt = nice_ticks(min(p[1] for p in points), max(p[1] for p in points))

    def at(x, y):
        return (
            left + (x - xt[0]) / (xt[-1] - xt[0]) * (right - left),
            bottom - (y - yt[0]) / (yt[-1] - yt[0]) * (bottom - top),
        )

    draw.text((box[0] + 60, box[1] + 6), title, fill=BLACK, font=font(15))
    for y in yt:
        draw.line((left, at(0, y)[1], right, at(0, y)[1]), fill=GREY)
        draw.text((left - 8, at(0, y)[1]), f"{y:g}", fill=BLACK, font=text, anchor="rm")
    for x in xt:
        draw.text((at(x, 0)[0], bottom + 6), f"{x:g}", fill=BLACK, font=text, anchor="mt")
    draw.rectangle((left, top, right, bottom), outline=BLACK)
    draw.text(((left + right) / 2, bottom + 26), xlabel, fill=BLACK, font=text, anchor="mt")
    draw.text((box[0] + 4, top - 22), ylabel, fill=BLACK, font=text)
    for _, colour, pts in series:
        xy = [at(x, y) for x, y in sorted(pts)]
        if len(xy) > 1:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)


def plot_curves(series, path, xlabel="epoch"):
    """Save a PNG with Dice (%) and HD95 against ``xlabel``, side by side, one line per series.

    Args:
        series: list of ``(name, [(x, dice_percent, hd95), ...])``; NaN values are left out.
        path: the PNG file to write.
    """
    width, height = 1100, 460
    canvas = Image.new("RGB", (width, height + 24 * len(series)), WHITE)
    draw = ImageDraw.Draw(canvas)
    for column, (title, index) in enumerate([("mean Dice (%)", 1), ("mean HD95", 2)]):
        lines = [
            (name, class_color(i + 1), [(p[0], p[index]) for p in pts if not math.isnan(p[index])])
            for i, (name, pts) in enumerate(series)
        ]
        lines = [line for line in lines if line[2]]
        if lines:
            draw_panel(
                draw, (column * width // 2, 0, (column + 1) * width // 2, height), lines, title, xlabel, ""
            )
    for i, (name, _) in enumerate(series):
        y = height + 24 * i
        draw.rectangle((60, y + 4, 76, y + 18), fill=class_color(i + 1))
        draw.text((84, y + 3), name, fill=BLACK, font=font(13))
    save_png(canvas, path)


def save_png(image, path):
    """Write a PIL image as PNG atomically (a temporary file renamed over ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            image.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
