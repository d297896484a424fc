import socket

import numpy as np
import pytest
import torch
from PIL import Image

from fp_metrics import (
    INCEPTION_FILENAME,
    FeatureStats,
    InceptionFeatureExtractor,
    WeightsNotFoundError,
    clean_resize,
    extract_features,
    feature_stats_from_images,
    list_images,
)
from fp_metrics import features as features_module

cleanfid_resize = pytest.importorskip("cleanfid.resize")


class TinyExtractor(torch.nn.Module):
    """[B, 3, S, S] in [0, 255] -> [B, 6]: channel means and maxima after a fixed conv."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x / 255)
        return torch.cat([y.mean(dim=(2, 3)), y.amax(dim=(2, 3))], dim=1)


class FakeInceptionLayers(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 2048)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.mean(dim=(2, 3)))[:, :, None, None]


class FakeInception(torch.nn.Module):
    """Same contract as clean-fid's TorchScript file: a ``layers`` submodule giving [B, 2048, 1, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = FakeInceptionLayers()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _images(seed=0, n=5, h=37, w=45):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), generator=g, dtype=torch.uint8)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty weight cache, no clean-fid cache, and no network at all."""
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(weights))
    monkeypatch.setattr(features_module, "_cleanfid_cache_dirs", lambda: [tmp_path / "cleanfid-cache"])

    def no_network(*args, **kwargs):
        raise AssertionError("attempted a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return weights


# ---------------------------------------------------------------- clean resize


@pytest.mark.parametrize(("h", "w"), [(64, 80), (512, 512), (20, 31)])
def test_clean_resize_equals_cleanfid(h, w):
    rng = np.random.default_rng(h + w)
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    ref = cleanfid_resize.make_resizer("PIL", False, "bicubic", (299, 299))(image)
    got = clean_resize(image)
    assert got.dtype == np.float32 and got.shape == (299, 299, 3)
    assert np.array_equal(got, ref)


def test_clean_resize_non_square_size_order():
    image = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    ref = cleanfid_resize.make_resizer("PIL", False, "bicubic", (40, 30))(image)  # PIL order: (width, height)
    got = clean_resize(image, (30, 40))  # ours: (height, width)
    assert got.shape == (30, 40, 3) and np.array_equal(got, ref)


def test_clean_resize_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        clean_resize(np.zeros((10, 10)))


# ---------------------------------------------------------------- pluggable extractor


def _manual_features(images_u8, extractor, size):
    rows = []
    for img in images_u8:
        arr = clean_resize(img.permute(1, 2, 0).numpy().astype(np.float32), size)
        x = torch.from_numpy(arr.transpose(2, 0, 1).copy())[None]
        with torch.no_grad():
            rows.append(extractor(x))
    return torch.cat(rows).numpy()


def test_module_extractor_on_uint8_and_float_tensors():
    images = _images()
    model = TinyExtractor()
    feats = extract_features(images, model, batch_size=2, image_size=32)
    assert feats.shape == (5, 6) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, _manual_features(images, model, 32), rtol=1e-6, atol=1e-6)
    # float images in [0, 1] holding the same values
    floats = extract_features(images.double() / 255, model, batch_size=3, image_size=32)
    np.testing.assert_allclose(floats, feats, rtol=1e-5, atol=1e-5)


def test_callable_extractor_and_no_resize():
    images = _images(1, n=3, h=16, w=16)
    feats = extract_features(images, lambda x: x.mean(dim=(2, 3)), image_size=16, resize=None)
    np.testing.assert_allclose(feats, images.double().mean(dim=(2, 3)).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="must be 16x16"):
        extract_features(_images(), lambda x: x.mean(dim=(2, 3)), image_size=16, resize=None)


def test_image_folder_equals_tensor(tmp_path):
    images = _images(2, n=4)
    (tmp_path / "sub").mkdir()
    for i, img in enumerate(images):
        folder = tmp_path / "sub" if i == 3 else tmp_path  # clean-fid searches subfolders too
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(folder / f"img_{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    files = list_images(tmp_path)
    assert [f.name for f in files] == ["img_0.png", "img_1.png", "img_2.png", "img_3.png"]
    assert len(list_images(tmp_path, recursive=False)) == 3
    model = TinyExtractor()
    from_folder = extract_features(tmp_path, model, image_size=32)
    from_files = extract_features([str(f) for f in files], model, image_size=32)
    from_tensor = extract_features(images, model, image_size=32)
    assert np.array_equal(from_folder, from_tensor) and np.array_equal(from_files, from_tensor)


def test_streaming_stats_from_images_equal_features():
    images = _images(3, n=7)
    model = TinyExtractor()
    feats = extract_features(images, model, batch_size=3, image_size=32).astype(np.float64)
    stats = feature_stats_from_images(images, model, batch_size=3, image_size=32)
    assert isinstance(stats, FeatureStats) and stats.n == 7
    np.testing.assert_allclose(stats.mean, feats.mean(0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(feats, rowvar=False), rtol=1e-8, atol=1e-12)
    # keeps accumulating into a given accumulator
    more = feature_stats_from_images(_images(4, n=2), model, image_size=32, stats=stats)
    assert more is stats and stats.n == 9


def test_bad_image_inputs_raise(tmp_path):
    model = TinyExtractor()
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        extract_features(torch.full((1, 3, 8, 8), 2.0), model, image_size=8)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        extract_features(torch.zeros(3, 8, 8), model, image_size=8)
    with pytest.raises(ValueError, match="no images"):
        extract_features(tmp_path, model)
    with pytest.raises(ValueError, match="does not exist"):
        extract_features(tmp_path / "missing", model)
    with pytest.raises(ValueError, match="resize"):
        extract_features(_images(), model, resize="bilinear")
    with pytest.raises(ValueError, match=r"\[B, D\] with B=5"):
        extract_features(_images(), lambda x: x[:1].mean(dim=(2, 3)), image_size=8)
    with pytest.raises(ValueError, match="callable"):
        extract_features(_images(), extractor="inception")


# ---------------------------------------------------------------- Inception weights (offline)


def test_inception_offline_raises_naming_the_file(offline):
    with pytest.raises(WeightsNotFoundError) as info:
        InceptionFeatureExtractor()
    message = str(info.value)
    assert INCEPTION_FILENAME in message
    assert str(offline / INCEPTION_FILENAME) in message  # where to put it
    assert "https://" in message and "FP_WEIGHTS_DIR" in message
    # the default extractor of extract_features fails the same way, before touching any image
    with pytest.raises(WeightsNotFoundError, match=INCEPTION_FILENAME):
        extract_features(_images())
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        InceptionFeatureExtractor(offline / "elsewhere.pt")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_inception_loads_torchscript_from_path_folder_and_cache(offline, tmp_path):
    scripted = torch.jit.script(FakeInception())
    folder = tmp_path / "models"
    folder.mkdir()
    file = folder / INCEPTION_FILENAME
    scripted.save(str(file))
    x = torch.rand(2, 3, 299, 299) * 255
    expected = scripted.layers((x - 128) / 128).reshape(2, -1)
    for source in (file, folder):
        ext = InceptionFeatureExtractor(source)
        assert ext.path == file
        torch.testing.assert_close(ext(x), expected)
    scripted.save(str(offline / INCEPTION_FILENAME))  # now present in $FP_WEIGHTS_DIR
    cached = InceptionFeatureExtractor()
    assert cached.path == offline / INCEPTION_FILENAME
    feats = extract_features(_images(n=2), batch_size=2)  # default extractor, clean resize to 299
    assert feats.shape == (2, 2048)
    with pytest.raises(ValueError, match=r"\[B, 3, 299, 299\]"):
        cached(torch.zeros(1, 3, 64, 64))


def test_inception_rejects_a_file_that_is_not_torchscript(offline):
    bad = offline / INCEPTION_FILENAME
    bad.write_bytes(b"not a torchscript archive")
    with pytest.raises(ValueError, match=str(bad)):
        InceptionFeatureExtractor()
