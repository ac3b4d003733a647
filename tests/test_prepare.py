"""Raw downloads to training forms: values, splits, idempotence, interrupted runs, errors."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from Dataloader_ACDC import ACDCdataset
from Dataloader_Synapse import Synapse_dataset
from dlkunet import data, phantoms, prepare
from dlkunet.errors import DatasetError

ROOT = Path(__file__).resolve().parents[1]


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "datasets" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


prepare_synapse = load_script("prepare_synapse")
prepare_acdc = load_script("prepare_acdc")


def run_script(module, argv):
    return module.main(module.get_args_parser().parse_args(argv))


@pytest.fixture(scope="module")
def synapse_raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("synapse_raw")
    return phantoms.make_phantoms("synapse-raw", out, cases=4, size=32, slices=5, seed=1)["root"]


@pytest.fixture(scope="module")
def acdc_raw(tmp_path_factory):
    out = tmp_path_factory.mktemp("acdc_raw")
    return phantoms.make_phantoms("acdc-raw", out, cases=5, size=32, slices=4, seed=1)["root"]


def mtimes(folder):
    return {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in Path(folder).rglob("*") if p.is_file()}


# ---------------------------------------------------------------------------------------------
# Synapse


def test_raw_synapse_phantom_is_the_download_form(synapse_raw):
    assert sorted(p.name for p in (synapse_raw / "img").iterdir()) == [
        "img0001.nii.gz",
        "img0002.nii.gz",
        "img0005.nii.gz",
        "img0006.nii.gz",
    ]
    image = sitk.ReadImage(str(synapse_raw / "img" / "img0005.nii.gz"))
    assert image.GetPixelID() == sitk.sitkInt16 and image.GetSize() == (32, 32, 5)
    hu = sitk.GetArrayFromImage(image)
    assert hu.min() < -900 and hu.max() > 200  # air and contrast-enhanced organs, in HU
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(synapse_raw / "label" / "label0005.nii.gz")))
    assert set(np.unique(label)) - {0} >= {1, 2, 3, 4, 6, 7, 8, 11}  # raw BTCV label numbers


def test_prepare_synapse_values_split_and_spacing(synapse_raw, tmp_path):
    out = tmp_path / "synapse"
    run_script(
        prepare_synapse, ["--raw", str(synapse_raw.parent.parent), "--out", str(out)]
    )  # finds Training/
    lists = out / "lists_Synapse"
    assert (lists / "test_vol.txt").read_text() == "case0001\ncase0002\n"
    assert (lists / "train.txt").read_text().splitlines()[:2] == ["case0005_slice000", "case0005_slice001"]

    hu, spacing = prepare.read_nifti(synapse_raw / "img" / "img0001.nii.gz")
    raw, _ = prepare.read_nifti(synapse_raw / "label" / "label0001.nii.gz")
    volume = Synapse_dataset(out, lists, "test")[0]
    assert volume["spacing"] == spacing and spacing[0] in (2.5, 3.0, 5.0)
    # HU window by values: -125 -> 0, 275 -> 1, linear between, clipped outside.
    expected = np.clip((hu.astype(np.float64) + 125) / 400, 0, 1)
    np.testing.assert_allclose(volume["image"], expected, atol=1e-6)
    assert volume["image"][hu <= -125].max() == 0
    np.testing.assert_array_equal(prepare.window_hu(np.array([-1000, -125, 75, 275, 900])), [0, 0, 0.5, 1, 1])
    # The 8-organ remap by values.
    for raw_value, cls in [
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
        (6, 5),
        (7, 6),
        (8, 7),
        (11, 8),
        (5, 0),
        (9, 0),
        (13, 0),
    ]:
        if (raw == raw_value).any():
            assert (volume["label"][raw == raw_value] == cls).all(), (raw_value, cls)
    train = Synapse_dataset(out, lists, "train")
    assert len(train) == 2 * 5 and train[0]["image"].dtype == np.float32


def test_prepared_phantom_equals_direct_phantom(synapse_raw, tmp_path):
    out = tmp_path / "prepared"
    run_script(prepare_synapse, ["--raw", str(synapse_raw), "--out", str(out)])
    direct = phantoms.make_phantoms(
        "synapse-transunet", tmp_path / "direct", cases=4, size=32, slices=5, seed=1
    )
    for split in ("train", "test"):
        a = Synapse_dataset(out, out / "lists_Synapse", split)
        b = Synapse_dataset(direct["root"], direct["list_dir"], split)
        assert len(a) == len(b)
        for i in (0, len(a) - 1):
            np.testing.assert_array_equal(a[i]["image"], b[i]["image"])
            np.testing.assert_array_equal(a[i]["label"], b[i]["label"])


def test_case_outside_both_lists_goes_to_training():
    assert prepare.synapse_split("0041") == "train" and prepare.synapse_split("0038") == "test"
    assert len(set(prepare.SYNAPSE_TEST_CASES) | set(prepare.SYNAPSE_TRAIN_CASES)) == 30


def test_prepare_synapse_is_idempotent_and_repairs(synapse_raw, tmp_path):
    out = tmp_path / "synapse"
    argv = ["--raw", str(synapse_raw), "--out", str(out)]
    run_script(prepare_synapse, argv)
    before = mtimes(out)
    run_script(prepare_synapse, argv)
    assert mtimes(out) == before  # nothing rewritten
    broken = out / "train_npz" / "case0006_slice002.npz"
    broken.write_bytes(broken.read_bytes()[:200])
    run_script(prepare_synapse, argv)
    after = mtimes(out)
    assert after[broken] != before[broken]
    assert {p: t for p, t in after.items() if p != broken} == {p: t for p, t in before.items() if p != broken}
    Synapse_dataset(out, out / "lists_Synapse", "train")[7]  # the repaired slice reads


def test_interrupted_write_leaves_no_file(synapse_raw, tmp_path, monkeypatch):
    out = tmp_path / "synapse"
    real_savez = np.savez
    calls = []

    def savez_then_crash(f, **arrays):
        calls.append(1)
        if len(calls) == 3:
            f.write(b"PK\x03\x04 partial")
            raise KeyboardInterrupt
        real_savez(f, **arrays)

    monkeypatch.setattr(data.np, "savez", savez_then_crash)
    with pytest.raises(KeyboardInterrupt):
        run_script(prepare_synapse, ["--raw", str(synapse_raw), "--out", str(out)])
    written = sorted(p.name for p in (out / "train_npz").iterdir())
    assert written == ["case0005_slice000.npz", "case0005_slice001.npz"]  # no partial third, no temp file
    assert not (out / "lists_Synapse").exists()
    monkeypatch.setattr(data.np, "savez", real_savez)
    run_script(prepare_synapse, ["--raw", str(synapse_raw), "--out", str(out)])
    assert len(Synapse_dataset(out, out / "lists_Synapse", "train")) == 10


def test_prepare_synapse_errors(synapse_raw, tmp_path):
    with pytest.raises(DatasetError, match="has no img/ and label/"):
        run_script(prepare_synapse, ["--raw", str(tmp_path), "--out", str(tmp_path / "o")])
    raw = tmp_path / "raw"
    shutil.copytree(synapse_raw, raw)
    (raw / "label" / "label0002.nii.gz").unlink()
    with pytest.raises(DatasetError, match="img0002.nii.gz has no label file.*label0002.nii.gz"):
        run_script(prepare_synapse, ["--raw", str(raw), "--out", str(tmp_path / "o")])
    shutil.copy(synapse_raw / "label" / "label0002.nii.gz", raw / "label")
    truncated = raw / "img" / "img0005.nii.gz"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    with pytest.raises(DatasetError, match="cannot read NIfTI file .*img0005.nii.gz.*truncated"):
        run_script(prepare_synapse, ["--raw", str(raw), "--out", str(tmp_path / "o")])
    # Uncompressed and short: the header promises more voxels than the file holds.
    image = sitk.ReadImage(str(synapse_raw / "img" / "img0006.nii.gz"))
    short = tmp_path / "short.nii"
    sitk.WriteImage(image, str(short))
    short.write_bytes(short.read_bytes()[:-100])
    with pytest.raises(DatasetError, match="short.nii is truncated"):
        prepare.read_nifti(short)
    (tmp_path / "text.nii").write_text("x" * 400)
    with pytest.raises(DatasetError, match="text.nii"):
        prepare.read_nifti(tmp_path / "text.nii")
    with pytest.raises(DatasetError, match="raw Synapse labels should be in 0..13, found 0..14"):
        prepare.remap_synapse_labels(np.array([0, 14]), "label0001.nii.gz")


def test_script_error_is_one_line_and_exit_1(tmp_path, capsys):
    args = prepare_synapse.get_args_parser().parse_args(
        ["--raw", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    with pytest.raises(SystemExit) as exit_info:
        prepare_synapse.run_main(prepare_synapse.main, args)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: raw Synapse folder") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()  # nothing written


# ---------------------------------------------------------------------------------------------
# ACDC


def test_raw_acdc_phantom_is_the_download_form(acdc_raw):
    patient = acdc_raw / "patient001"
    info = prepare_acdc.read_info(patient / "Info.cfg")
    assert info["ED"] == "1" and set(info) >= {"ES", "Group", "Height", "NbFrame", "Weight"}
    es = int(info["ES"])
    assert sorted(p.name for p in patient.iterdir()) == sorted(
        ["Info.cfg", "patient001_frame01.nii.gz", "patient001_frame01_gt.nii.gz"]
        + [f"patient001_frame{es:02d}.nii.gz", f"patient001_frame{es:02d}_gt.nii.gz"]
    )
    image = sitk.ReadImage(str(patient / "patient001_frame01.nii.gz"))
    assert image.GetSize() == (40, 32, 4) and image.GetSpacing()[2] == 10.0  # (x, y, z): W 40, H 32


@pytest.mark.parametrize("fmt", ["mtunet", "ssl4mis"])
def test_prepare_acdc_forms(acdc_raw, tmp_path, fmt):
    out = tmp_path / fmt
    run_script(prepare_acdc, ["--raw", str(acdc_raw), "--out", str(out), "--format", fmt])
    direct = phantoms.make_phantoms(f"acdc-{fmt}", tmp_path / "direct", cases=5, size=32, slices=4, seed=1)
    list_dir = out / "lists_ACDC" if fmt == "mtunet" else out
    for split in ("train", "valid", "test"):
        a = ACDCdataset(out, list_dir, split, as_volumes=True)
        b = ACDCdataset(direct["root"], direct["list_dir"], split, as_volumes=True)
        assert [a[i]["case_name"] for i in range(len(a))] == [b[i]["case_name"] for i in range(len(b))]
        np.testing.assert_array_equal(a[0]["image"], b[0]["image"])
        np.testing.assert_array_equal(a[0]["label"], b[0]["label"])
        assert a[0]["spacing"] == b[0]["spacing"]
    test = ACDCdataset(out, list_dir, "test")
    # 5 patients: 1 test (the middle one), 1 valid, 3 train; both frames of each patient.
    assert [test[i]["case_name"][:10] for i in range(len(test))] == ["patient003", "patient003"]
    volume = test[0]
    assert volume["image"].min() == 0.0 and volume["image"].max() == 1.0  # per-volume min-max
    hu, _ = prepare.read_nifti(acdc_raw / "patient003" / "patient003_frame01.nii.gz")
    np.testing.assert_allclose(volume["image"], (hu - hu.min()) / (hu.max() - hu.min()), atol=1e-6)


def test_prepare_acdc_uses_info_frames_and_is_idempotent(acdc_raw, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(acdc_raw, raw)
    # A frame that Info.cfg does not name must be ignored.
    shutil.copy(
        raw / "patient001" / "patient001_frame01.nii.gz", raw / "patient001" / "patient001_frame05.nii.gz"
    )
    out = tmp_path / "out"
    run_script(prepare_acdc, ["--raw", str(raw), "--out", str(out)])
    frames = {p.name.split("_slice")[0] for p in (out / "train").iterdir() if p.name.startswith("patient001")}
    es = int(prepare_acdc.read_info(raw / "patient001" / "Info.cfg")["ES"])
    assert frames == {"patient001_frame01", f"patient001_frame{es:02d}"}
    before = mtimes(out)
    run_script(prepare_acdc, ["--raw", str(raw), "--out", str(out)])
    assert mtimes(out) == before


def test_prepare_acdc_errors(acdc_raw, tmp_path):
    with pytest.raises(DatasetError, match="no patientNNN/ folders"):
        run_script(prepare_acdc, ["--raw", str(tmp_path), "--out", str(tmp_path / "o")])
    raw = tmp_path / "raw"
    shutil.copytree(acdc_raw, raw)
    info = raw / "patient002" / "Info.cfg"
    info.write_text(info.read_text().replace("ES:", "Es:"))
    with pytest.raises(DatasetError, match=r"patient002/Info.cfg should give the ES frame"):
        run_script(prepare_acdc, ["--raw", str(raw), "--out", str(tmp_path / "o")])
    info.write_text("ED: 1\nES: 77\n")
    with pytest.raises(
        DatasetError, match=r"Info.cfg names frame 77 but .*patient002_frame77.nii.gz does not exist"
    ):
        run_script(prepare_acdc, ["--raw", str(raw), "--out", str(tmp_path / "o")])
    with pytest.raises(DatasetError, match="gt.nii.gz: ACDC labels should be in 0..3, found 0..4"):
        prepare.check_acdc_labels(np.array([0, 4]), "patient001_frame01_gt.nii.gz")


def test_acdc_patient_split_rule():
    ids = [f"patient{i:03d}" for i in range(1, 101)]
    split = prepare.acdc_patient_split(ids)
    parts = {part: [p for p in ids if split[p] == part] for part in ("train", "valid", "test")}
    assert [len(parts[k]) for k in ("train", "valid", "test")] == [70, 10, 20]
    assert parts["test"] == [f"patient{i:03d}" for i in range(3, 101, 5)]
    assert parts["valid"] == [f"patient{i:03d}" for i in range(6, 101, 10)]
    for group in range(5):  # the five pathology groups of twenty patients
        members = set(ids[20 * group : 20 * group + 20])
        assert len(members & set(parts["test"])) == 4 and len(members & set(parts["valid"])) == 2
    assert prepare.acdc_patient_split(ids[:50]) == prepare.acdc_patient_split(list(reversed(ids[:50])))
    small = prepare.acdc_patient_split(ids[:3])
    assert sorted(small.values()) == ["test", "train", "valid"]
    with pytest.raises(DatasetError, match="at least 3 patients"):
        prepare.acdc_patient_split(ids[:2])
