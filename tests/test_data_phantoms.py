"""Phantom data: deterministic, organ-like, learnable, in every form, and from the command line."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from dlkunet import phantoms, prepare
from dlkunet.errors import DatasetError

ROOT = Path(__file__).resolve().parents[1]


def test_deterministic_per_seed_and_case():
    a = phantoms.synapse_case(0, 2, 32, 6)
    b = phantoms.synapse_case(0, 2, 32, 6)
    c = phantoms.synapse_case(1, 2, 32, 6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2] and not np.array_equal(a[0], c[0])
    # A case does not depend on how many cases are made.
    assert phantoms.synapse_case_ids(5)[:2] == phantoms.synapse_case_ids(40)[:2] == ["0005", "0006"]


def test_synapse_phantom_looks_like_abdominal_ct():
    hu, raw, spacing = phantoms.synapse_case(0, 0, 64, 12)
    label = prepare.SYNAPSE_RAW_TO_CLASS[raw]
    image = prepare.window_hu(hu)
    assert set(np.unique(label)) == set(range(9))
    per_slice = [set(np.unique(s)) for s in label]
    assert any(len(s) < 9 for s in per_slice)  # organs start and end along the volume
    sizes = [(label == k).sum() for k in range(1, 9)]
    assert max(sizes) > 5 * min(sizes)  # liver large, gallbladder small
    # Each organ has its own intensity, well above the noise (what makes phantoms learnable).
    medians = sorted(np.median(image[label == k]) for k in range(1, 9))
    assert min(np.diff(medians)) > 0.05
    assert np.std(image[label == 5] - np.median(image[label == 5])) < 0.03
    # Positions differ between cases; so do sizes.
    other = prepare.SYNAPSE_RAW_TO_CLASS[phantoms.synapse_case(0, 1, 64, 12)[1]]
    assert (label == 5).sum() != (other == 5).sum()
    assert spacing[1] == spacing[2] and 0.6 <= spacing[1] <= 0.95


def test_acdc_phantom_hearts():
    patient = phantoms.acdc_patient(0, 0, 48, 8)
    assert set(patient["frames"]) == {1, patient["info"]["ES"]}
    (ed_image, ed_label), (es_image, es_label) = patient["frames"].values()
    assert ed_image.shape == (8, 48, 60) and ed_image.dtype == np.int16
    assert set(np.unique(ed_label)) == {0, 1, 2, 3}
    assert (es_label == 3).sum() < (ed_label == 3).sum()  # the LV contracts at end-systole
    assert 1 not in ed_label[-1] and 3 not in ed_label[-1]  # apex: myocardium only
    image = prepare.normalize_minmax(ed_image)
    medians = sorted(np.median(image[ed_label == k]) for k in range(4))
    assert min(np.diff(medians)) > 0.1


def test_unknown_form_and_bad_sizes(tmp_path):
    with pytest.raises(DatasetError, match="unknown phantom form 'synapse'.*synapse-transunet"):
        phantoms.make_phantoms("synapse", tmp_path)
    with pytest.raises(DatasetError, match="at least 16 px"):
        phantoms.make_phantoms("acdc-raw", tmp_path, size=8)
    with pytest.raises(DatasetError, match="at least 2 cases"):
        phantoms.make_phantoms("synapse-raw", tmp_path, cases=1)


def test_make_phantoms_command_line(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("make_phantoms", ROOT / "datasets" / "make_phantoms.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "acdc"
    argv = [
        "--form",
        "acdc-raw",
        "--out",
        str(out),
        "--cases",
        "3",
        "--size",
        "24",
        "--slices",
        "2",
        "--seed",
        "4",
    ]
    script.main(script.get_args_parser().parse_args(argv))
    assert f"--raw {out / 'training'}" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "training").iterdir()) == ["patient001", "patient002", "patient003"]
    with pytest.raises(SystemExit) as exit_info:
        script.run_main(script.main, script.get_args_parser().parse_args(argv[:4] + ["--size", "4"]))
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("error: phantom slices must be at least 16 px")
