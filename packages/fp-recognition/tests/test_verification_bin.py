import os
import pickle

import numpy as np
import pytest

from fp_recognition.data import VERIFICATION_SETS, DataFormatError, load_bin, load_bins, write_bin


def test_write_then_load(tmp_path, make_jpegs):
    jpegs = make_jpegs(6)
    path = write_bin(tmp_path / "lfw.bin", jpegs, [True, False, True])
    vb = load_bin(path)
    assert vb.name == "lfw" and vb.num_pairs == 3
    assert vb.images == jpegs and vb.issame.tolist() == [True, False, True]
    x = vb.tensors(image_size=32)[5]
    assert x.shape == (3, 32, 32) and -1 <= x.min() and x.max() <= 1
    images, issame = pickle.loads(path.read_bytes())  # what insightface's load_bin sees
    assert isinstance(images, list) and isinstance(images[0], bytes) and issame == [True, False, True]


def _py2_style_pickle(images: list[bytes], issame: list[bool]) -> bytes:
    """Opcodes of a Python 2 protocol-2 dump: images as SHORT_BINSTRING (py2 str), NEWTRUE/NEWFALSE."""
    out = bytearray(b"\x80\x02]q\x00(")
    for img in images:
        assert len(img) < 256
        out += b"U" + bytes([len(img)]) + img
    out += b"e]q\x01("
    out += b"".join(b"\x88" if s else b"\x89" for s in issame)
    out += b"e\x86q\x02."
    return bytes(out)


def test_python2_pickle_gives_the_exact_bytes(tmp_path):
    images = [bytes(range(200, 256)) + b"\x00\xff", b"\x80abc", b"x", b"\xe9\xe8"]
    path = tmp_path / "agedb_30.bin"
    path.write_bytes(_py2_style_pickle(images, [False, True]))
    with pytest.raises(UnicodeDecodeError):  # why insightface retries with encoding='bytes'
        pickle.loads(path.read_bytes())
    vb = load_bin(path)
    assert vb.images == images and vb.issame.tolist() == [False, True]


@pytest.mark.parametrize("protocol", [2, 4])
def test_numpy_issame_and_buffers_are_admitted(tmp_path, make_jpegs, protocol):
    jpegs = make_jpegs(4)
    buffers = [np.frombuffer(j, np.uint8) for j in jpegs]
    path = tmp_path / "cfp_fp.bin"
    path.write_bytes(pickle.dumps((buffers, np.array([True, False])), protocol=protocol))
    vb = load_bin(path)
    assert vb.images == jpegs and vb.issame.tolist() == [True, False]
    path.write_bytes(pickle.dumps((jpegs, [np.bool_(True), np.bool_(False)]), protocol=protocol))
    assert load_bin(path).issame.tolist() == [True, False]


class _RunsCode:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "lfw.bin"
    path.write_bytes(pickle.dumps(([b"a", b"b"], [_RunsCode(str(marker))]), protocol=2))
    with pytest.raises(DataFormatError, match=r"lfw\.bin: refused global (posix|os|nt)\.system") as err:
        load_bin(path)
    assert err.value.path == str(path)
    assert not marker.exists()


def test_other_globals_and_object_arrays_refused(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(pickle.dumps((eval, []), protocol=4))
    with pytest.raises(DataFormatError, match=r"refused global builtins\.eval"):
        load_bin(path)
    path.write_bytes(pickle.dumps(([b"a", b"b"], np.array([1], dtype=object)), protocol=4))
    with pytest.raises(DataFormatError, match="only bool and uint8"):
        load_bin(path)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"images": []}, "expected a pair"),
        (([b"a", b"b", b"c"], [True]), "3 images for 1 pairs"),
        (([b"a", b"b"], [1]), "pair 0: issame entry is int"),
        (([b"a", 5], [True]), "image 1: image is a int"),
        ((b"ab", [True]), "images must be a list"),
    ],
)
def test_wrong_structure(tmp_path, obj, message):
    path = tmp_path / "calfw.bin"
    path.write_bytes(pickle.dumps(obj, protocol=4))
    with pytest.raises(DataFormatError, match=message) as err:
        load_bin(path)
    assert str(err.value).startswith(str(path))


def test_not_a_pickle_and_missing_sets(tmp_path, make_jpegs):
    path = tmp_path / "cplfw.bin"
    path.write_bytes(pickle.dumps(([b"a"], []), protocol=4)[:-5])
    with pytest.raises(DataFormatError, match="not a readable pickle"):
        load_bin(path)
    write_bin(tmp_path / "lfw.bin", make_jpegs(2), [True])
    assert list(load_bins(tmp_path, ["lfw"])) == ["lfw"]
    with pytest.raises(DataFormatError, match="missing verification sets: cfp_fp.bin"):
        load_bins(tmp_path, ["lfw", "cfp_fp"])
    assert VERIFICATION_SETS == ("lfw", "cfp_fp", "agedb_30", "calfw", "cplfw")


def test_image_that_does_not_decode_names_the_index(tmp_path, make_jpegs):
    vb = load_bin(write_bin(tmp_path / "lfw.bin", [*make_jpegs(1), b"garbage"], [False]))
    with pytest.raises(DataFormatError, match=r"lfw\.bin: image 1: image does not decode"):
        vb.tensors()[1]
