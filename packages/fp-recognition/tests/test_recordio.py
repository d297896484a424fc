import struct

import numpy as np
import pytest

from fp_recognition.data import (
    RECORDIO_MAGIC,
    DataFormatError,
    IRHeader,
    RecordReader,
    RecordWriter,
    frame_record,
    pack_record,
    unpack_record,
)

MAGIC = struct.pack("<I", RECORDIO_MAGIC)


def test_frame_layout_single_part():
    framed = frame_record(b"abcde")
    magic, lrec = struct.unpack("<II", framed[:8])
    assert magic == 0xCED7230A
    assert lrec >> 29 == 0 and lrec & ((1 << 29) - 1) == 5
    assert framed[8:13] == b"abcde" and framed[13:] == b"\0\0\0"  # padded to 4
    assert len(frame_record(b"abcd")) == 12


def test_frame_splits_at_aligned_magic_only():
    data = b"head" + MAGIC + b"middle!!" + MAGIC + b"tail"
    framed = frame_record(data)
    flags = []
    pos = 0
    while pos < len(framed):
        magic, lrec = struct.unpack_from("<II", framed, pos)
        assert magic == RECORDIO_MAGIC
        length = lrec & ((1 << 29) - 1)
        flags.append(lrec >> 29)
        pos += 8 + length + (-length % 4)
    assert flags == [1, 2, 3]
    unaligned = b"xy" + MAGIC + b"z"
    assert struct.unpack_from("<I", frame_record(unaligned), 4)[0] >> 29 == 0


def test_writer_reader_roundtrip(tmp_path):
    records = {0: b"", 1: b"x" * 7, 2: b"ab" + MAGIC + b"cd", 3: MAGIC * 3, 4: b"tail" + MAGIC}
    with RecordWriter(tmp_path / "t.rec", tmp_path / "t.idx") as w:
        for k, v in records.items():
            w.write(k, v)
    reader = RecordReader(tmp_path / "t.rec", tmp_path / "t.idx")
    assert reader.keys == [0, 1, 2, 3, 4]
    for k in (4, 2, 0, 3, 1):
        assert reader.read(k) == records[k]
    lines = (tmp_path / "t.idx").read_text().splitlines()
    assert lines[0] == "0\t0" and lines[1] == "1\t8"


def test_irheader_pack_unpack():
    rec = pack_record(IRHeader(0, 7.0, 3, 0), b"JPEG")
    assert len(rec) == 24 + 4
    assert struct.unpack("<IfQQ", rec[:24]) == (0, 7.0, 3, 0)
    header, payload = unpack_record(rec)
    assert header == IRHeader(0, 7.0, 3, 0) and payload == b"JPEG"
    rec = pack_record(IRHeader(0, np.array([5, 9], np.float32), 0, 0), b"!")
    header, payload = unpack_record(rec)
    assert header.flag == 2 and header.label.tolist() == [5.0, 9.0] and payload == b"!"
    with pytest.raises(DataFormatError, match="shorter than its 24-byte IRHeader"):
        unpack_record(b"short", "f.rec", "record 3")


def _two_records(tmp_path):
    with RecordWriter(tmp_path / "t.rec", tmp_path / "t.idx") as w:
        w.write(0, b"a" * 10)
        w.write(1, b"b" * 100)
    return tmp_path / "t.rec", tmp_path / "t.idx"


def test_truncated_record_names_file_and_record(tmp_path):
    rec, idx = _two_records(tmp_path)
    rec.write_bytes(rec.read_bytes()[:-30])
    reader = RecordReader(rec, idx)
    assert reader.read(0) == b"a" * 10
    with pytest.raises(DataFormatError, match=r"t\.rec: record 1 at byte 20: truncated"):
        reader.read(1)


def test_idx_offset_past_end(tmp_path):
    rec, idx = _two_records(tmp_path)
    idx.write_text("0\t0\n1\t99999\n")
    with pytest.raises(DataFormatError, match=r"t\.idx: line 2: offset 99999 of record 1 is past the end"):
        RecordReader(rec, idx)


def test_bad_idx_line_and_bad_magic(tmp_path):
    rec, idx = _two_records(tmp_path)
    idx.write_text("0 0\n")
    with pytest.raises(DataFormatError, match=r"line 1: expected 'key<TAB>offset'"):
        RecordReader(rec, idx)
    idx.write_text("0\t0\n1\t4\n")  # points into the middle of record 0
    with pytest.raises(DataFormatError, match=r"record 1 at byte 4: bad magic"):
        RecordReader(rec, idx).read(1)


def test_reader_pickles_without_handle(tmp_path):
    import pickle

    rec, idx = _two_records(tmp_path)
    reader = RecordReader(rec, idx)
    reader.read(0)
    clone = pickle.loads(pickle.dumps(reader))
    assert clone.read(1) == b"b" * 100
