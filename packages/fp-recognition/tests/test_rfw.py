import pytest

from fp_recognition.data import DataFormatError, load_rfw, load_rfw_pairs


def test_layout_and_pairs(tmp_path, write_rfw_group):
    names = {"m.01": [1, 2], "m.02": [1]}
    lines = ["m.01\t1\t2", "m.01\t2\tm.02\t1", "m.02\t1\tm.01\t1"]
    write_rfw_group(tmp_path, "Asian", names, lines)
    assert (tmp_path / "test/data/Asian/m.01/m.01_0002.jpg").is_file()
    assert (tmp_path / "test/txts/Asian/Asian_pairs.txt").is_file()
    pairs = load_rfw_pairs(tmp_path, "Asian")
    assert pairs.num_pairs == 3 and pairs.issame.tolist() == [True, False, False]
    assert [p.name for p in pairs.images] == ["m.01_0001.jpg", "m.01_0002.jpg", "m.02_0001.jpg"]
    assert pairs.first.tolist() == [0, 1, 2] and pairs.second.tolist() == [1, 2, 0]
    assert pairs.tensors(image_size=32)[2].shape == (3, 32, 32)
    assert list(load_rfw(tmp_path, ("Asian",))) == ["Asian"]


def test_wrong_field_count(tmp_path, write_rfw_group):
    write_rfw_group(tmp_path, "Indian", {"a": [1, 2]}, ["a\t1\t2", "a\t1"])
    with pytest.raises(DataFormatError, match=r"Indian_pairs\.txt: line 2: expected 3 fields .* got 2"):
        load_rfw_pairs(tmp_path, "Indian")


def test_missing_pair_image(tmp_path, write_rfw_group):
    write_rfw_group(tmp_path, "African", {"a": [1]}, ["a\t1\tb\t3"])
    with pytest.raises(
        DataFormatError, match=r"African_pairs\.txt: line 1: pair image .*b_0003\.jpg does not exist"
    ):
        load_rfw_pairs(tmp_path, "African")


def test_missing_pairs_file_and_bad_index(tmp_path, write_rfw_group):
    with pytest.raises(DataFormatError, match="pairs file of group Caucasian not found"):
        load_rfw_pairs(tmp_path, "Caucasian")
    write_rfw_group(tmp_path, "Caucasian", {"a": [1]}, ["a\tone\t1"])
    with pytest.raises(DataFormatError, match="line 1: image index 'one' is not an integer"):
        load_rfw_pairs(tmp_path, "Caucasian")
