"""Reading test logs: which checkpoint scored what.

A test log (ours or the public release's) holds one block per tested checkpoint::

    [2025-01-01 12:00:00.000] Model loaded from ./result/Pth/model_epoch_10_checkpoint.pth
    [2025-01-01 12:00:09.000] idx 0 case case0001 mean_dice 0.801 mean_hd95 20.5
    ...
    [2025-01-01 12:01:40.000] Testing performance in best val model: mean_dice : 0.781 mean_hd95 : 23.1

Only the ``Model loaded from`` and ``Testing performance`` lines are read (the timestamp is
optional), so per-case and per-class lines may carry extra fields such as class names. Logs
are appended to over repeated runs; every block is kept, in file order. A checkpoint's epoch
comes from an ``epoch_N`` in its file name, or from a ``Checkpoint epoch N`` line (written for
``last.pth``-style files whose name carries none).
"""

import csv
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from dlkunet.errors import DLKUNetError

NUMBER = r"([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+|nan|inf))"
TIMESTAMP = re.compile(r"^\[[^\]]*\]\s*")
MODEL_LOADED = re.compile(r"Model loaded from\s+(.*?)\s*$")
CHECKPOINT_EPOCH = re.compile(r"^Checkpoint epoch (\d+)\b")
PERFORMANCE = re.compile(
    rf"Testing performance in best val model:\s*mean_dice\s*:\s*{NUMBER}\s+mean_hd95\s*:\s*{NUMBER}", re.I
)
EPOCH_IN_NAME = re.compile(r"epoch[_-]?(\d+)", re.I)


class LogError(DLKUNetError):
    """A test log that is missing, unreadable or holds no results."""


@dataclass
class CheckpointResult:
    """One tested checkpoint: the mean Dice (a fraction, as logged) and mean HD95 over the test set."""

    log: str
    checkpoint: str
    epoch: int | None
    mean_dice: float
    mean_hd95: float
    line: int

    @property
    def dice_percent(self):
        return 100.0 * self.mean_dice


def epoch_from_name(path):
    """``.../model_epoch_120_checkpoint.pth`` -> 120; None when the name carries no epoch."""
    match = EPOCH_IN_NAME.search(Path(str(path)).name)
    return int(match.group(1)) if match else None


def parse_log(path):
    """Every checkpoint result in one log file, in file order.

    Raises:
        LogError: when the file is missing or unreadable, or holds no ``Testing performance`` line.
    """
    path = Path(path)
    if not path.is_file():
        raise LogError(f"log file {path} does not exist")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise LogError(f"cannot read log file {path}: {err.strerror}") from err
    results, checkpoint, epoch = [], None, None
    for number, raw in enumerate(lines, start=1):
        line = TIMESTAMP.sub("", raw)
        if match := MODEL_LOADED.search(line):
            checkpoint, epoch = match.group(1), epoch_from_name(match.group(1))
        elif match := CHECKPOINT_EPOCH.match(line):
            epoch = int(match.group(1)) if epoch is None else epoch
        elif match := PERFORMANCE.search(line):
            name = checkpoint if checkpoint is not None else f"(no 'Model loaded from' before line {number})"
            dice, hd95 = (float(g) for g in match.groups())
            results.append(CheckpointResult(str(path), name, epoch, dice, hd95, number))
            checkpoint, epoch = None, None
    if not results:
        raise LogError(
            f"log file {path} holds no test results (expected lines like 'Testing performance in "
            f"best val model: mean_dice : D mean_hd95 : H'; none among its {len(lines)} lines)"
        )
    return results


def parse_logs(paths):
    """``parse_log`` over several files, concatenated in the order given."""
    return [result for path in paths for result in parse_log(path)]


def best_results(results):
    """The result with the highest mean Dice and the one with the lowest mean HD95.

    NaN values (possible under the strict convention) are never picked; the first of equal
    values wins. Either entry is None when no result has a defined value.
    """
    with_dice = [r for r in results if not math.isnan(r.mean_dice)]
    with_hd95 = [r for r in results if not math.isnan(r.mean_hd95)]
    best_dice = max(with_dice, key=lambda r: r.mean_dice) if with_dice else None
    best_hd95 = min(with_hd95, key=lambda r: r.mean_hd95) if with_hd95 else None
    return best_dice, best_hd95


def format_table(results):
    """A fixed-width table, one row per result: [log,] checkpoint, epoch, mean Dice (%), mean HD95."""
    show_log = len({r.log for r in results}) > 1
    header = (["log"] if show_log else []) + ["checkpoint", "epoch", "mean_dice(%)", "mean_hd95"]
    rows = [
        ([r.log] if show_log else [])
        + [
            r.checkpoint,
            "-" if r.epoch is None else str(r.epoch),
            f"{r.dice_percent:.2f}",
            f"{r.mean_hd95:.2f}",
        ]
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    text_columns = 2 if show_log else 1  # left-aligned names, right-aligned numbers
    lines = []
    for row in [header, *rows]:
        cells = [c.ljust(w) if i < text_columns else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def describe(result):
    """One line naming a result: checkpoint, epoch, Dice (%) and HD95."""
    if result is None:
        return "none (no defined value)"
    epoch = "" if result.epoch is None else f" (epoch {result.epoch})"
    return (
        f"{result.checkpoint}{epoch}: mean_dice {result.dice_percent:.2f}% "
        f"mean_hd95 {result.mean_hd95:.2f}  [{result.log} line {result.line}]"
    )


def write_csv(results, path):
    """Write the table as CSV (Dice in %), atomically: a failed write leaves any old file intact."""
    path = Path(path)
    fields = ["log", "checkpoint", "epoch", "mean_dice_percent", "mean_hd95", "line"]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise LogError(f"cannot write CSV file {path}: {err.strerror}") from err
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            for r in results:
                row = asdict(r)
                row["mean_dice_percent"] = float(f"{r.dice_percent:.10g}")  # no 78.10000000000001
                writer.writerow({key: row[key] for key in fields})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
