"""The Synapse and ACDC loaders read every form (shapes, dtypes, values, names), with and without lists."""

import logging
import shutil

import numpy as np
import pytest
import torch

import Dataloader_ACDC
import Dataloader_Synapse
from Dataloader_ACDC import ACDCdataset
from Dataloader_Synapse import RandomGenerator, Synapse_dataset
from dlkunet import data, phantoms, prepare


@pytest.fixture(autouse=True)
def fresh_warnings():
    """Each test sees the list-fallback warning anew (it is logged once per process otherwise)."""
    data._warned.clear()
    yield


def copy_tree(src, dst):
    shutil.copytree(src, dst)
    return dst


# ---------------------------------------------------------------------------------------------
# Synapse


def test_class_tables():
    assert Dataloader_Synapse.NUM_CLASSES == len(Dataloader_Synapse.CLASS_NAMES) == 9
    assert Dataloader_Synapse.CLASS_NAMES[5] == "liver" and Dataloader_Synapse.CLASS_NAMES[8] == "pancreas"
    assert (
        Dataloader_ACDC.CLASS_NAMES == ["background", "RV", "Myo", "LV"] and Dataloader_ACDC.NUM_CLASSES == 4
    )


def test_synapse_transunet_train_slices(synapse_phantom):
    train = Synapse_dataset(synapse_phantom.root, synapse_phantom.list_dir, "train")
    assert train.layout == "transunet" and len(train) == 4 * 8
    item = train[3]
    assert item["case_name"] == "case0005_slice003"
    assert item["image"].shape == item["label"].shape == (48, 48)
    assert item["image"].dtype == np.float32 and item["label"].dtype == np.uint8
    assert 0.0 <= item["image"].min() and item["image"].max() <= 1.0
    # The values are those of the phantom generator, windowed and remapped.
    hu, raw, _ = phantoms.synapse_case(0, 0, 48, 8)
    np.testing.assert_array_equal(item["image"], prepare.window_hu(hu)[3])
    np.testing.assert_array_equal(item["label"], prepare.SYNAPSE_RAW_TO_CLASS[raw[3]])


def test_synapse_transunet_test_volumes(synapse_phantom):
    test = Synapse_dataset(synapse_phantom.root, synapse_phantom.list_dir, "test_vol")
    assert [test[i]["case_name"] for i in range(len(test))] == ["case0001", "case0002"]
    volume = test[0]
    assert volume["image"].shape == volume["label"].shape == (8, 48, 48)
    assert volume["image"].dtype == np.float32 and volume["label"].dtype == np.uint8
    assert len(volume["spacing"]) == 3 and all(isinstance(s, float) for s in volume["spacing"])
    assert volume["spacing"][1] == volume["spacing"][2] and volume["spacing"][0] >= 2.5
    assert set(np.unique(volume["label"])) == set(range(9))  # every organ somewhere in the volume


def test_synapse_training_batch_through_dataloader(synapse_phantom):
    train = Synapse_dataset(
        synapse_phantom.root, synapse_phantom.list_dir, "train", transform=RandomGenerator(32)
    )
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=4, shuffle=False)))
    assert batch["image"].shape == (4, 1, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["label"].shape == (4, 32, 32) and batch["label"].dtype == torch.int64
    assert batch["case_name"][0] == "case0005_slice000"


def test_synapse_release_layout_equals_transunet(tmp_path, synapse_phantom):
    made = phantoms.make_phantoms("synapse-release", tmp_path / "release", cases=6, size=48, slices=8)
    for split in ("train", "test"):
        release = Synapse_dataset(made["root"], made["list_dir"], split)
        ours = Synapse_dataset(synapse_phantom.root, synapse_phantom.list_dir, split)
        assert release.layout == "release" and len(release) == len(ours)
        a, b = release[1], ours[1]
        assert a["case_name"] == b["case_name"]
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    assert "spacing" not in release[0]  # the release's files carry no spacing
    # With no list_dir, the release's list folder next to the data is found.
    assert Synapse_dataset(made["root"], None, "test").list_path.name == "test.txt"


def test_synapse_without_lists_uses_sorted_files_and_warns_once(synapse_phantom, caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="dlkunet.data"):
        train = Synapse_dataset(synapse_phantom.root, tmp_path / "no_lists", "train")
        Synapse_dataset(synapse_phantom.root, tmp_path / "no_lists", "train")
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "train.txt" in warnings[0] and "32" in warnings[0]
    assert train.list_path is None
    names = [p.name for p in train.files]
    assert names == sorted(names) and len(names) == 32


def test_synapse_list_suffix_list_and_list_file(synapse_phantom, tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "test_vol.list").write_text("case0002\n\ncase0001.npy.h5\n")
    test = Synapse_dataset(synapse_phantom.root, lists, "test")
    assert [p.name for p in test.files] == ["case0002.npy.h5", "case0001.npy.h5"]
    val_list = tmp_path / "val.txt"
    val_list.write_text("case0001\n")
    val = Synapse_dataset(synapse_phantom.root, synapse_phantom.list_dir, "test", list_file=val_list)
    assert len(val) == 1 and val[0]["case_name"] == "case0001"


# ---------------------------------------------------------------------------------------------
# ACDC


def test_acdc_mtunet_splits(acdc_phantom):
    train = ACDCdataset(acdc_phantom.root, acdc_phantom.list_dir, "train")
    assert train.form == "mtunet" and len(train) == 7 * 2 * 6  # 7 patients, ED + ES, 6 slices
    item = train[0]
    assert item["image"].shape == item["label"].shape == (48, 60)  # not square, as the real data
    assert item["image"].dtype == np.float32 and item["label"].dtype == np.uint8
    assert item["case_name"] == "patient001_frame01_slice_0"
    test = ACDCdataset(acdc_phantom.root, acdc_phantom.list_dir, "test")
    assert len(test) == 4 and test[0]["image"].shape == (6, 48, 60) and len(test[0]["spacing"]) == 3
    assert test[0]["spacing"][0] == 10.0
    assert set(np.unique(test[0]["label"])) == {0, 1, 2, 3}
    valid = ACDCdataset(acdc_phantom.root, acdc_phantom.list_dir, "val")
    assert len(valid) == 2 * 6 and valid[0]["image"].ndim == 2


def test_acdc_valid_as_volumes_stacks_slices_in_order(acdc_phantom):
    slices = ACDCdataset(acdc_phantom.root, acdc_phantom.list_dir, "valid")
    volumes = ACDCdataset(acdc_phantom.root, acdc_phantom.list_dir, "valid", as_volumes=True)
    assert len(volumes) == 2
    volume = volumes[0]
    assert volume["case_name"] == "patient006_frame01" and volume["image"].shape == (6, 48, 60)
    assert volume["label"].dtype == np.uint8 and len(volume["spacing"]) == 3
    by_name = {slices[i]["case_name"]: slices[i] for i in range(len(slices))}
    for d in range(6):
        np.testing.assert_array_equal(volume["image"][d], by_name[f"patient006_frame01_slice_{d}"]["image"])
    # The apex (last slice) has no LV cavity and no RV: classes are missing from some slices.
    assert 3 not in volume["label"][-1] and 1 not in volume["label"][-1]


def test_acdc_ssl4mis_equals_mtunet(tmp_path, acdc_phantom):
    made = phantoms.make_phantoms("acdc-ssl4mis", tmp_path / "ssl", cases=10, size=48, slices=6)
    for split in ("train", "valid", "test"):
        ssl = ACDCdataset(made["root"], made["list_dir"], split, as_volumes=True)
        mt = ACDCdataset(acdc_phantom.root, acdc_phantom.list_dir, split, as_volumes=True)
        assert ssl.form == "ssl4mis" and len(ssl) == len(mt)
        a, b = ssl[0], mt[0]
        assert a["case_name"] == b["case_name"] and a["spacing"] == b["spacing"]
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    train = ACDCdataset(made["root"], None, "train", transform=RandomGenerator((40, 48)))
    assert train[0]["image"].shape == (1, 40, 48) and train[0]["label"].shape == (40, 48)


def test_acdc_without_lists(tmp_path, acdc_phantom, caplog):
    root = copy_tree(acdc_phantom.root, tmp_path / "acdc")
    shutil.rmtree(root / "lists_ACDC")
    with caplog.at_level(logging.WARNING, logger="dlkunet.data"):
        train = ACDCdataset(root, None, "train")
        test = ACDCdataset(root, root / "missing", "test")
    assert len(train) == 84 and len(test) == 4
    assert len(caplog.records) == 2 and all("no list file" in r.getMessage() for r in caplog.records)


def test_acdc_ssl4mis_lists_found_in_root_when_list_dir_lacks_them(tmp_path):
    made = phantoms.make_phantoms("acdc-ssl4mis", tmp_path / "ssl", cases=3, size=32, slices=3)
    empty = tmp_path / "lists"
    empty.mkdir()
    test = ACDCdataset(made["root"], empty, "test")
    assert test.list_path == made["root"] / "test.list" and len(test) == 2


# ---------------------------------------------------------------------------------------------
# Helpers


@pytest.mark.parametrize(
    "name, key",
    [
        ("case0005_slice012.npz", ("case0005", 12)),
        ("patient001_frame01_slice_3.h5", ("patient001_frame01", 3)),
        ("case_001_sliceED_10.npz", ("case_001_ED", 10)),
    ],
)
def test_slice_key(name, key):
    assert data.slice_key(name) == key


def test_group_slices_sorts_numerically():
    files = ["a_slice_10.npz", "a_slice_2.npz", "b_slice_0.npz", "a_slice_1.npz"]
    assert data.group_slices(files) == [
        ("a", ["a_slice_1.npz", "a_slice_2.npz", "a_slice_10.npz"]),
        ("b", ["b_slice_0.npz"]),
    ]
