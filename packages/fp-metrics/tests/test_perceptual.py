import json
import socket
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fp_metrics import LPIPS_TRUNK_FILES, CLIPScore, LPIPSDistance, WeightsNotFoundError

lpips = pytest.importorskip("lpips")
open_clip = pytest.importorskip("open_clip")

TINY_CLIP = "fp-test-tiny-clip"
TINY_CLIP_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """Empty fp and torch caches, and no network."""
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))

    def no_network(*args, **kwargs):
        raise AssertionError("attempted a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return weights


@pytest.fixture(scope="module")
def lpips_rand():
    torch.manual_seed(0)
    return LPIPSDistance("alex", pnet_rand=True, batch_size=2)


@pytest.fixture(scope="module")
def tiny_clip_name(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip-config")
    (folder / f"{TINY_CLIP}.json").write_text(json.dumps(TINY_CLIP_CONFIG))
    open_clip.add_model_config(folder)
    return TINY_CLIP


def _pairs(seed, n=5, size=32):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(
        n, 3, size, size, generator=g
    ) * 2 - 1


# ---------------------------------------------------------------- LPIPS


def test_lpips_batched_equals_single_pairs_and_the_lpips_model(lpips_rand):
    x, y = _pairs(0)
    d = lpips_rand(x, y)
    assert d.shape == (5,) and (d > 0).all()
    singles = torch.cat([lpips_rand(x[i : i + 1], y[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(d, singles)
    direct = lpips_rand.model(x, y, normalize=False).flatten()  # the wrapped lpips.LPIPS itself
    torch.testing.assert_close(d, direct)


def test_lpips_zero_for_identical_and_symmetric(lpips_rand):
    x, y = _pairs(1, n=3)
    assert torch.equal(lpips_rand(x, x), torch.zeros(3))
    torch.testing.assert_close(lpips_rand(x, y), lpips_rand(y, x))


def test_lpips_is_differentiable_in_the_images(lpips_rand):
    x, y = _pairs(2, n=2)
    x.requires_grad_(True)
    lpips_rand(x, y).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in lpips_rand.parameters())


def test_lpips_checks_the_input_range(lpips_rand):
    x, y = _pairs(3, n=2)
    with pytest.raises(ValueError, match=r"x values must lie in \[-1.0, 1.0\], got range"):
        lpips_rand((x + 1) * 127.5, y)  # [0, 255] images
    with pytest.raises(ValueError, match=r"y values must lie in \[-1.0, 1.0\]"):
        lpips_rand(x, y * 1.5)
    with pytest.raises(ValueError, match="floating point"):
        lpips_rand(x.to(torch.uint8), y)
    with pytest.raises(ValueError, match="same shape"):
        lpips_rand(x, y[:1])
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        lpips_rand(x[:, :1], y[:, :1])


def test_lpips_uses_the_calibrated_linear_layers(lpips_rand):
    bundled = torch.load(Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth", map_location="cpu")
    assert torch.equal(lpips_rand.model.lin0.model[1].weight, bundled["lin0.model.1.weight"])


def test_lpips_loads_a_torchvision_trunk_file(lpips_rand, tmp_path):
    filename, _ = LPIPS_TRUNK_FILES["alex"]
    torch.manual_seed(1)
    trunk = {}
    for key, value in lpips_rand.model.net.state_dict().items():
        _slice, index, rest = key.split(".", 2)
        trunk[f"features.{index}.{rest}"] = torch.randn_like(value)
    torch.save(trunk, tmp_path / filename)
    loaded = LPIPSDistance("alex", trunk_weights=tmp_path)  # a folder holding the file
    assert torch.equal(loaded.model.net.slice1[0].weight, trunk["features.0.weight"])
    assert torch.equal(loaded.model.net.slice5.get_submodule("10").bias, trunk["features.10.bias"])
    del trunk["features.3.weight"]
    torch.save(trunk, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="features.3.weight is missing"):
        LPIPSDistance("alex", trunk_weights=tmp_path / "broken.pth")


def test_lpips_offline_error_names_the_trunk_file(offline):
    filename, url = LPIPS_TRUNK_FILES["vgg"]
    with pytest.raises(WeightsNotFoundError) as info:
        LPIPSDistance("vgg")
    message = str(info.value)
    assert filename in message and url in message and str(offline / filename) in message
    with pytest.raises(ValueError, match="net must be one of"):
        LPIPSDistance("resnet")


# ---------------------------------------------------------------- CLIP score


def _manual_clip_score(scorer, images, texts):
    x = F.interpolate(images, size=(32, 32), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    x = (x - scorer.mean) / scorer.std
    with torch.no_grad():
        e_img = F.normalize(scorer.model.encode_image(x), dim=-1)
        e_txt = F.normalize(scorer.model.encode_text(scorer.tokenizer(texts)), dim=-1)
    return 100 * (e_img * e_txt).sum(-1).clamp_min(0)


def test_clip_score_with_a_tiny_random_model(tiny_clip_name):
    torch.manual_seed(0)
    scorer = CLIPScore(tiny_clip_name, pretrained=None, batch_size=2)
    assert scorer.image_size == (32, 32)
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 48, 48, generator=g)
    texts = ["a face", "a smiling person", "a photo of a cat"]
    scores = scorer(images, texts)
    assert scores.shape == (3,) and ((scores >= 0) & (scores <= 100)).all()
    torch.testing.assert_close(scores, _manual_clip_score(scorer, images, texts))
    # batching does not change the scores
    scorer.batch_size = 1
    torch.testing.assert_close(scorer(images, texts), scores)


def test_clip_score_loads_a_local_checkpoint_and_accepts_a_model(tiny_clip_name, tmp_path):
    torch.manual_seed(1)
    source = CLIPScore(tiny_clip_name, pretrained=None)
    file = tmp_path / "tiny.pt"
    torch.save(source.model.state_dict(), file)
    torch.manual_seed(2)  # a different random init, overwritten by the checkpoint
    loaded = CLIPScore(tiny_clip_name, pretrained=file)
    images = torch.rand(2, 3, 40, 30)
    torch.testing.assert_close(loaded(images, ["a", "b"]), source(images, ["a", "b"]))
    wrapped = CLIPScore(model=source.model, tokenizer=source.tokenizer, model_name=tiny_clip_name)
    torch.testing.assert_close(wrapped(images, ["a", "b"]), source(images, ["a", "b"]))


def test_clip_score_checks_inputs(tiny_clip_name):
    scorer = CLIPScore(tiny_clip_name, pretrained=None)
    with pytest.raises(ValueError, match=r"images values must lie in \[0.0, 1.0\]"):
        scorer(torch.rand(1, 3, 32, 32) * 255, ["a"])
    with pytest.raises(ValueError, match="list of 2 strings"):
        scorer(torch.rand(2, 3, 32, 32), ["only one"])
    with pytest.raises(ValueError, match="list of 1 strings"):
        scorer(torch.rand(1, 3, 32, 32), "a bare string")
    with pytest.raises(ValueError, match="unknown open_clip model"):
        CLIPScore("no-such-model", pretrained=None)
    with pytest.raises(ValueError, match="unknown pretrained tag"):
        CLIPScore(tiny_clip_name, pretrained="laion-nonexistent")
    with pytest.raises(ValueError, match="encode_image"):
        CLIPScore(model=torch.nn.Linear(2, 2))


def test_clip_score_offline_error_names_the_file(offline, tmp_path):
    with pytest.raises(WeightsNotFoundError) as info:
        CLIPScore("ViT-B-32", pretrained="openai")
    message = str(info.value)
    assert str(offline / "open_clip-ViT-B-32-openai.bin") in message and "huggingface.co" in message
    with pytest.raises(WeightsNotFoundError, match="missing.bin"):
        CLIPScore("ViT-B-32", pretrained=str(tmp_path / "missing.bin"))


def test_clip_score_applies_the_tag_settings_to_a_local_file(offline, monkeypatch, tiny_clip_name):
    # an OpenAI tag needs QuickGELU; open_clip only sees a file path, so fp must pass the flag on
    (offline / "open_clip-RN50-openai.bin").write_bytes(b"placeholder")
    calls = {}
    tiny = open_clip.create_model(tiny_clip_name)

    def fake_create_model(name, **kwargs):
        calls.update(kwargs, name=name)
        return tiny

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    CLIPScore("RN50", pretrained="openai")
    assert calls["name"] == "RN50"
    assert calls["pretrained"] == str(offline / "open_clip-RN50-openai.bin")
    assert calls["force_quick_gelu"] is True
    assert calls["pretrained_text"] is False and calls["pretrained_image"] is False
