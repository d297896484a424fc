import numpy as np
import pytest
import torch

from fp_recognition.data import (
    DataFormatError,
    IRHeader,
    RecordDataset,
    RecordReader,
    RecordWriter,
    decode_image,
    image_to_tensor,
    pack_record,
    unpack_record,
    write_record_dataset,
)


def test_write_then_read(tmp_path, make_jpegs):
    jpegs = make_jpegs(6)
    groups = {"alice": jpegs[:2], "bob": jpegs[2:3], "carol": jpegs[3:]}
    out = write_record_dataset(groups, tmp_path / "faces")
    assert sorted(p.name for p in out.iterdir()) == ["property", "train.idx", "train.rec"]
    assert (out / "property").read_text() == "3,16,16\n"
    ds = RecordDataset(out, normalise=False)
    assert len(ds) == 6 and ds.num_classes == 3 and ds.identity_range == (7, 10)
    assert [ds[i][1] for i in range(6)] == [0, 0, 1, 2, 2, 2]
    for i, jpeg in enumerate(jpegs):  # JPEG bytes are stored as they are
        assert torch.equal(ds[i][0], image_to_tensor(decode_image(jpeg, "x")))
    x, _ = RecordDataset(out, image_size=32)[0]
    assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
    reader = RecordReader(out / "train.rec", out / "train.idx")
    header0, _ = unpack_record(reader.read(0))
    assert header0.flag == 2 and header0.label.tolist() == [7.0, 10.0]
    ranges = [unpack_record(reader.read(k))[0].label.tolist() for k in (7, 8, 9)]
    assert ranges == [[1.0, 3.0], [3.0, 4.0], [4.0, 7.0]]
    assert unpack_record(reader.read(4))[0] == IRHeader(0, 2.0, 4, 0)


def test_encodes_arrays_and_tensors(tmp_path):
    imgs = [np.full((8, 8, 3), 100, np.uint8), torch.full((3, 8, 8), 0.5)]
    ds = RecordDataset(write_record_dataset([imgs], tmp_path / "d"), normalise=False)
    assert ds[0][0].shape == (3, 8, 8)
    assert ds[1][0].mean().item() == pytest.approx(0.5, abs=0.02)


def test_flag_zero_header_reads_every_record(tmp_path, make_jpegs):
    jpegs = make_jpegs(2)
    with RecordWriter(tmp_path / "train.rec", tmp_path / "train.idx") as w:
        w.write(0, pack_record(IRHeader(0, 1.0, 0, 0), jpegs[0]))
        w.write(1, pack_record(IRHeader(0, np.array([0.0, 5.0], np.float32), 1, 0), jpegs[1]))
    ds = RecordDataset(tmp_path)
    assert len(ds) == 2 and ds.num_classes == 2 and [ds[0][1], ds[1][1]] == [1, 0]


def test_image_that_does_not_decode(tmp_path, make_jpegs):
    out = write_record_dataset([[make_jpegs(1)[0], b"not a jpeg at all"]], tmp_path / "d")
    ds = RecordDataset(out)
    ds[0]
    with pytest.raises(DataFormatError, match=r"train\.rec: record 2: image does not decode"):
        ds[1]


def test_bad_property(tmp_path, make_jpegs):
    out = write_record_dataset([make_jpegs(1)], tmp_path / "d")
    (out / "property").write_text("ten,112\n")
    with pytest.raises(DataFormatError, match="property: expected 'num_classes,h,w'"):
        RecordDataset(out)


def test_missing_files(tmp_path):
    with pytest.raises(DataFormatError, match=r"train\.rec: file not found"):
        RecordDataset(tmp_path)
