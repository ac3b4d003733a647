"""Atomic writes (dlkunet/files.py): whole files or none, no temporary files left, the user's umask."""

import json
import os

import numpy as np
import pytest

from dlkunet.files import atomic_path, atomic_write, current_umask, write_json
from dlkunet.prepare import write_nifti


def mode_of(path):
    return path.stat().st_mode & 0o777


@pytest.fixture
def umask_027():
    """A umask other than the usual 022, so that permissions really come from it."""
    previous = os.umask(0o027)
    yield 0o027
    os.umask(previous)


def test_write_json_is_whole_with_the_umask_permissions(tmp_path, umask_027):
    path = tmp_path / "deeper" / "args.json"
    write_json(path, {"b": 1, "a": [1.5, None]}, indent=2, sort_keys=True)
    text = path.read_text()
    assert json.loads(text) == {"a": [1.5, None], "b": 1} and text.endswith("}\n")
    assert text.index('"a"') < text.index('"b"')  # the dump options are passed on
    assert mode_of(path) == 0o640 == 0o666 & ~current_umask()


def test_a_failing_write_keeps_the_old_file_and_leaves_no_temporary_one(tmp_path):
    path = tmp_path / "summary.json"
    write_json(path, {"epoch": 1})
    with pytest.raises(ValueError, match="Out of range float"):
        write_json(path, {"epoch": 2, "dice": float("nan")}, allow_nan=False)
    assert json.loads(path.read_text()) == {"epoch": 1}

    def half_then_fail(f):
        f.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert json.loads(path.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_path_hides_the_temporary_name_until_the_rename(tmp_path):
    path = tmp_path / "case0001_pred.nii.gz"
    with atomic_path(path, suffix=".tmp.nii.gz") as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".case0001_pred.nii.gz.")
        assert tmp.name.endswith(".tmp.nii.gz") and not path.exists()
        tmp.write_bytes(b"written")
    assert path.read_bytes() == b"written" and not tmp.exists()


def test_write_nifti_keeps_spacing_and_permissions(tmp_path):
    import SimpleITK as sitk

    path = tmp_path / "img0001.nii.gz"
    volume = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    write_nifti(path, volume, (2.5, 0.7, 0.8))
    image = sitk.ReadImage(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(image), volume)
    assert image.GetSpacing() == pytest.approx((0.8, 0.7, 2.5))  # SimpleITK orders axes (x, y, z)
    assert mode_of(path) == 0o666 & ~current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["img0001.nii.gz"]
