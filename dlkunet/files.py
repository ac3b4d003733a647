"""Atomic file writes: every file the project writes appears whole or not at all.

A file is written to a hidden temporary name beside its target (``.<name>.<random><suffix>``),
flushed to disk and renamed over the target. A crash or an error at any moment leaves the
previous file (or none) and no partial one; the leading dot keeps loaders and globs away from
the temporary file. New files get the permissions a plain ``open`` would give (``0o666`` less
the umask), not the private ``0o600`` of ``tempfile.mkstemp``.
"""

import contextlib
import json
import os
import tempfile
from pathlib import Path


def current_umask():
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix=".tmp"):
    """Yield a temporary path beside ``path``; on a clean exit rename it over ``path``.

    For writers that want a file name (SimpleITK picks the format from the suffix, so give it
    e.g. ``.tmp.nii.gz``). On an error the temporary file is removed and the error re-raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path, write, mode="wb"):
    """Call ``write(file_object)`` on a temporary file opened with ``mode``, then rename it to ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())


def write_json(path, obj, **dump_options):
    """Write ``obj`` as JSON (``json.dump`` options passed on) atomically, ending in a newline."""

    def write(f):
        json.dump(obj, f, **dump_options)
        f.write("\n")

    atomic_write(path, write, mode="w")
