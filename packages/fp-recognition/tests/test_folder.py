import pytest

from fp_recognition.data import DataFormatError, ImageFolderDataset


def _write(root, layout, make_jpegs):
    jpegs = iter(make_jpegs(10))
    for identity, n in layout.items():
        (root / identity).mkdir(parents=True)
        for k in range(n):
            (root / identity / f"{k}.jpg").write_bytes(next(jpegs))


def test_identity_folders(tmp_path, make_jpegs):
    _write(tmp_path, {"zed": 1, "amy": 2, "bo": 1}, make_jpegs)
    (tmp_path / "amy" / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path, image_size=32)
    assert ds.identities == ["amy", "bo", "zed"] and ds.num_classes == 3
    assert [label for _, label in ds.samples] == [0, 0, 1, 2]
    x, label = ds[3]
    assert x.shape == (3, 32, 32) and label == 2 and x.min() >= -1


def test_adaface_imgs_layout(tmp_path, make_jpegs):
    _write(tmp_path / "imgs", {"0": 2, "1": 1}, make_jpegs)
    ds = ImageFolderDataset(tmp_path, normalise=False)
    assert ds.root == tmp_path / "imgs" and len(ds) == 3
    assert 0 <= ds[0][0].min() and ds[0][0].max() <= 1


def test_identity_without_image(tmp_path, make_jpegs):
    _write(tmp_path, {"a": 1}, make_jpegs)
    (tmp_path / "b").mkdir()
    with pytest.raises(DataFormatError, match=r"/b: identity folder has no image"):
        ImageFolderDataset(tmp_path)


def test_image_that_does_not_decode(tmp_path, make_jpegs):
    _write(tmp_path, {"a": 1}, make_jpegs)
    (tmp_path / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    ds = ImageFolderDataset(tmp_path)
    with pytest.raises(DataFormatError, match=r"broken\.jpg: image does not decode"):
        ds[1]
