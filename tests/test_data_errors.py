"""Every kind of bad data raises DatasetError naming the file (and what was expected and found)."""

import h5py
import numpy as np
import pytest

from Dataloader_ACDC import ACDCdataset
from Dataloader_Synapse import Synapse_dataset
from dlkunet.errors import DatasetError


@pytest.fixture
def synapse_root(tmp_path):
    """A TransUNet-layout root with one good training slice and one good test volume."""
    (tmp_path / "train_npz").mkdir()
    (tmp_path / "test_vol_h5").mkdir()
    (tmp_path / "lists").mkdir()
    good_slice(tmp_path / "train_npz" / "case0005_slice000.npz")
    with h5py.File(tmp_path / "test_vol_h5" / "case0001.npy.h5", "w") as f:
        f["image"] = np.zeros((3, 8, 8), np.float32)
        f["label"] = np.ones((3, 8, 8), np.float32)
    return tmp_path


def good_slice(path, **override):
    arrays = {"image": np.zeros((8, 8), np.float32), "label": np.ones((8, 8), np.uint8), **override}
    np.savez(path, **arrays)
    return path


def read_train(root, name):
    (root / "lists" / "train.txt").write_text(f"{name}\n")
    return Synapse_dataset(root, root / "lists", "train")[0]


def test_good_files_read(synapse_root):
    assert read_train(synapse_root, "case0005_slice000")["label"].max() == 1
    volume = Synapse_dataset(synapse_root, synapse_root / "lists", "test")[0]
    assert volume["label"].dtype == np.uint8 and "spacing" not in volume  # float labels become uint8


def test_missing_root_names_layouts(tmp_path):
    with pytest.raises(DatasetError, match="train_npz.*test_vol_h5.*train/, test/") as err:
        Synapse_dataset(tmp_path / "nowhere", None, "train")
    assert "nowhere" in str(err.value)
    with pytest.raises(DatasetError, match="MT-UNet.*SSL4MIS"):
        ACDCdataset(tmp_path / "nowhere", None, "train")
    with pytest.raises(DatasetError, match="has no 'train' folder"):
        Synapse_dataset(tmp_path, None, "train")  # a folder, but no layout in it


def test_unknown_split(synapse_root):
    with pytest.raises(DatasetError, match="unknown Synapse split 'valid'"):
        Synapse_dataset(synapse_root, None, "valid")


def test_list_naming_a_missing_file_names_both(synapse_root):
    (synapse_root / "lists" / "train.txt").write_text("case0005_slice000\ncase0099_slice000\n")
    with pytest.raises(DatasetError) as err:
        Synapse_dataset(synapse_root, synapse_root / "lists", "train")
    assert "train.txt" in str(err.value) and "case0099_slice000.npz" in str(err.value)


def test_list_naming_a_missing_volume(synapse_root):
    (synapse_root / "lists" / "test_vol.txt").write_text("case0009\n")
    with pytest.raises(DatasetError, match="test_vol.txt names 'case0009' but .*case0009.npy.h5 or"):
        Synapse_dataset(synapse_root, synapse_root / "lists", "test")


def test_empty_list_and_missing_list_file(synapse_root, tmp_path):
    (synapse_root / "lists" / "train.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="train.txt is empty"):
        Synapse_dataset(synapse_root, synapse_root / "lists", "train")
    with pytest.raises(DatasetError, match="val.txt does not exist"):
        Synapse_dataset(synapse_root, None, "test", list_file=tmp_path / "val.txt")


def test_truncated_npz(synapse_root):
    path = good_slice(synapse_root / "train_npz" / "case0005_slice001.npz")
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DatasetError, match="case0005_slice001.npz.*truncated"):
        read_train(synapse_root, "case0005_slice001")


def test_truncated_h5(synapse_root):
    path = synapse_root / "test_vol_h5" / "case0001.npy.h5"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetError, match="case0001.npy.h5"):
        Synapse_dataset(synapse_root, None, "test")[0]


def test_not_a_data_file(synapse_root):
    (synapse_root / "train_npz" / "case0005_slice002.npz").write_text("not an npz")
    with pytest.raises(DatasetError, match="case0005_slice002.npz"):
        read_train(synapse_root, "case0005_slice002")


def test_pickled_objects_are_refused(synapse_root):
    good_slice(synapse_root / "train_npz" / "case0005_slice003.npz", label=np.array([{"x": 1}], dtype=object))
    with pytest.raises(DatasetError, match="case0005_slice003.npz"):
        read_train(synapse_root, "case0005_slice003")


def test_missing_key_names_keys_found(synapse_root):
    np.savez(
        synapse_root / "train_npz" / "case0005_slice004.npz", img=np.zeros((8, 8)), label=np.zeros((8, 8))
    )
    with pytest.raises(
        DatasetError, match=r"case0005_slice004.npz has no \['image'\].*found \['img', 'label'\]"
    ):
        read_train(synapse_root, "case0005_slice004")


def test_shape_mismatch(synapse_root):
    good_slice(synapse_root / "train_npz" / "case0005_slice005.npz", label=np.zeros((8, 9), np.uint8))
    with pytest.raises(
        DatasetError, match=r"case0005_slice005.npz: image shape \(8, 8\) and label shape \(8, 9\)"
    ):
        read_train(synapse_root, "case0005_slice005")


def test_non_finite_image(synapse_root):
    image = np.zeros((8, 8), np.float32)
    image[2, 3] = np.nan
    good_slice(synapse_root / "train_npz" / "case0005_slice008.npz", image=image)
    with pytest.raises(DatasetError, match="case0005_slice008.npz: image holds NaN"):
        read_train(synapse_root, "case0005_slice008")


def test_volume_where_a_slice_is_expected(synapse_root):
    good_slice(
        synapse_root / "train_npz" / "case0005_slice006.npz",
        image=np.zeros((2, 8, 8), np.float32),
        label=np.zeros((2, 8, 8), np.uint8),
    )
    with pytest.raises(DatasetError, match=r"case0005_slice006.npz: image should be a slice \(H, W\)"):
        read_train(synapse_root, "case0005_slice006")


@pytest.mark.parametrize(
    "label, message",
    [
        (np.full((8, 8), 9, np.uint8), "should be in 0..8, found 0..9"),
        (np.full((8, 8), -1, np.int16), "found -1..0"),
        (np.full((8, 8), 0.5, np.float32), "fractional"),
    ],
)
def test_label_values_outside_class_range(synapse_root, label, message):
    label = label.copy()
    label[0, 0] = 0
    good_slice(synapse_root / "train_npz" / "case0005_slice007.npz", label=label)
    with pytest.raises(DatasetError, match=f"case0005_slice007.npz.*{message}"):
        read_train(synapse_root, "case0005_slice007")


def test_acdc_label_range_and_keys(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / split).mkdir()
    np.savez(tmp_path / "train" / "p_slice_0.npz", img=np.zeros((4, 6)), label=np.full((4, 6), 4))
    np.savez(tmp_path / "test" / "p.npz", image=np.zeros((2, 4, 6)), label=np.zeros((2, 4, 6)))
    with pytest.raises(DatasetError, match=r"p_slice_0.npz: label values should be in 0..3, found 4..4"):
        ACDCdataset(tmp_path, None, "train")[0]
    with pytest.raises(DatasetError, match=r"p.npz has no \['img'\]"):
        ACDCdataset(tmp_path, None, "test")[0]
    with pytest.raises(DatasetError, match="no .npz files for split 'valid'"):
        ACDCdataset(tmp_path, None, "valid")


def test_slices_that_cannot_be_grouped(tmp_path):
    (tmp_path / "valid").mkdir()
    np.savez(tmp_path / "valid" / "oddname.npz", img=np.zeros((4, 6)), label=np.zeros((4, 6)))
    with pytest.raises(DatasetError, match="oddname.npz belongs to"):
        ACDCdataset(tmp_path, None, "valid", as_volumes=True)


def test_slices_of_one_volume_with_different_shapes(tmp_path):
    (tmp_path / "valid").mkdir()
    np.savez(tmp_path / "valid" / "p_slice_0.npz", img=np.zeros((4, 6)), label=np.zeros((4, 6)))
    np.savez(tmp_path / "valid" / "p_slice_1.npz", img=np.zeros((4, 7)), label=np.zeros((4, 7)))
    with pytest.raises(DatasetError, match=r"p_slice_1.npz: slice shape \(4, 7\) differs"):
        ACDCdataset(tmp_path, None, "valid", as_volumes=True)[0]
