"""The CLIP loader: embedded save/load round trip, clear errors, and the offline lookup of named open_clip models."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from fp_core.manifest import ManifestError  # noqa: E402
from fp_core.weights import WeightsNotFoundError  # noqa: E402
from fp_metrics.clip_models import (  # noqa: E402
    CONFIG_FILENAME,
    OPENAI_MEAN,
    WEIGHTS_FILENAME,
    load_clip,
    preprocess_images,
    save_clip,
)

TINY_CFG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16},
    "text_cfg": {"context_length": 12, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket connection fails and HF_HUB_OFFLINE is unset: the lookup itself must not connect."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture()
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    hub, fp = tmp_path / "hub", tmp_path / "fp"
    hub.mkdir()
    fp.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(fp))
    return hub, fp


def _tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = open_clip.CLIP(**json.loads(json.dumps(TINY_CFG)))
    model.fp_model_cfg = TINY_CFG
    return model


@pytest.fixture()
def saved(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    model = _tiny_model()
    directory = save_clip(model, tmp_path / "clip", context_length=12, extra={"note": "tiny"})
    return directory, model


def test_preprocess_resizes_the_shorter_side_crops_the_centre_and_normalises() -> None:
    images = torch.zeros(1, 3, 8, 16)
    images[..., :, 4:12] = 1.0  # the centre 8 x 8 is white, the side bands black
    out = preprocess_images(images, 8, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert out.shape == (1, 3, 8, 8)
    torch.testing.assert_close(out, torch.ones(1, 3, 8, 8))  # (1 - 0.5) / 0.5
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        preprocess_images(torch.zeros(3, 8, 8), 8)


def test_save_then_load_gives_identical_embeddings(saved: tuple[Path, torch.nn.Module]) -> None:
    directory, model = saved
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [CONFIG_FILENAME, WEIGHTS_FILENAME, "manifest.json"]
    )
    clip = load_clip(directory)
    assert clip.name == f"embedded:{directory.resolve()}"
    assert (clip.image_size, clip.mean) == (32, OPENAI_MEAN)
    assert not clip.model.training and not any(p.requires_grad for p in clip.model.parameters())
    images = torch.rand(5, 3, 48, 40)
    model.eval()
    with torch.no_grad():
        expected = model.encode_image(preprocess_images(images, 32))
        expected_text = model.encode_text(
            open_clip.get_tokenizer("ViT-B-32", context_length=12)(["a red shape"])
        )
    got = clip.encode_images(images, batch_size=2)
    torch.testing.assert_close(got, expected / expected.norm(dim=1, keepdim=True), rtol=0, atol=1e-6)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(5))
    text = clip.encode_texts(["a red shape"])
    torch.testing.assert_close(
        text, expected_text / expected_text.norm(dim=1, keepdim=True), rtol=0, atol=1e-6
    )
    assert clip.tokenizer(["a"]).shape == (1, 12)


def test_encode_images_is_differentiable(saved: tuple[Path, torch.nn.Module]) -> None:
    clip = load_clip(saved[0])
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    clip.encode_images(images)[:, 0].sum().backward()
    assert images.grad is not None and bool(images.grad.abs().sum() > 0)


def test_the_directory_is_open_clip_s_local_dir_layout(saved: tuple[Path, torch.nn.Module]) -> None:
    directory, model = saved
    reloaded = open_clip.create_model(f"local-dir:{directory}")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(reloaded.state_dict()[key], value, rtol=0, atol=0)


def test_the_manifest_names_the_tokenizer_and_context_length(saved: tuple[Path, torch.nn.Module]) -> None:
    manifest = json.loads((saved[0] / "manifest.json").read_text())
    assert manifest["kind"] == "embedded-clip"
    assert (manifest["tokenizer"], manifest["context_length"], manifest["extra"]) == (
        "ViT-B-32",
        12,
        {"note": "tiny"},
    )


@pytest.mark.parametrize("missing", ["manifest.json", CONFIG_FILENAME, WEIGHTS_FILENAME])
def test_a_missing_file_is_named(saved: tuple[Path, torch.nn.Module], missing: str) -> None:
    (saved[0] / missing).unlink()
    with pytest.raises((ManifestError, FileNotFoundError), match=missing):
        load_clip(saved[0])


@pytest.mark.parametrize("broken", ["manifest.json", CONFIG_FILENAME, WEIGHTS_FILENAME])
def test_a_corrupt_file_is_named(saved: tuple[Path, torch.nn.Module], broken: str) -> None:
    (saved[0] / broken).write_bytes(b"{not json or safetensors")
    with pytest.raises(ManifestError, match=broken):
        load_clip(saved[0])


def test_weights_of_another_architecture_are_refused(saved: tuple[Path, torch.nn.Module]) -> None:
    other = dict(TINY_CFG, embed_dim=8)
    config = json.loads((saved[0] / CONFIG_FILENAME).read_text())
    config["model_cfg"] = other
    (saved[0] / CONFIG_FILENAME).write_text(json.dumps(config))
    with pytest.raises(ManifestError, match=WEIGHTS_FILENAME):
        load_clip(saved[0])


def test_save_needs_the_model_cfg_and_a_matching_context_length(tmp_path: Path) -> None:
    model = _tiny_model()
    with pytest.raises(ValueError, match="context_length"):
        save_clip(model, tmp_path / "a", context_length=77)
    del model.fp_model_cfg
    with pytest.raises(ValueError, match="model_cfg"):
        save_clip(model, tmp_path / "b", context_length=12)
    save_clip(model, tmp_path / "c", context_length=12, model_cfg=TINY_CFG)
    assert load_clip(tmp_path / "c").image_size == 32


def test_an_unknown_source_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a directory"):
        load_clip("outputs/clip")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_clip(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown pretrained tag"):
        load_clip("ViT-B-32/no-such-tag")


def test_vit_b_32_quickgelu_offline_names_the_file_and_the_places(
    empty_caches: tuple[Path, Path], no_network: None
) -> None:
    hub, fp = empty_caches
    with pytest.raises(WeightsNotFoundError) as info:
        load_clip("ViT-B-32-quickgelu")
    message = str(info.value)
    repo = open_clip.get_pretrained_cfg("ViT-B-32-quickgelu", "openai")["hf_hub"].rstrip("/")
    assert WEIGHTS_FILENAME in message and "open_clip_pytorch_model.bin" in message
    assert str(hub) in message and str(fp) in message
    assert f"hf download {repo} {WEIGHTS_FILENAME}" in message
    assert "open_clip-ViT-B-32-quickgelu-openai.bin" in message


@pytest.fixture()
def tiny_registered(monkeypatch: pytest.MonkeyPatch) -> str:
    """A tiny model config and a pretrained tag for it (QuickGELU, its own mean / std) in open_clip's registries."""
    from open_clip import factory, pretrained

    monkeypatch.setitem(factory._MODEL_CONFIGS, "fp-tiny-test", json.loads(json.dumps(TINY_CFG)))
    tag = {
        "hf_hub": "fp-test/tiny-clip/",
        "url": "",
        "quick_gelu": True,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.25, 0.25, 0.25),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    monkeypatch.setitem(pretrained._PRETRAINED, "fp-tiny-test", {"tiny": tag})
    return "fp-tiny-test/tiny"


def _fake_hub_entry(hub: Path, state: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = hub / "models--fp-test--tiny-clip"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(state, str(snapshot / WEIGHTS_FILENAME))


def test_a_named_model_loads_from_the_hub_cache_with_its_tag_settings(
    empty_caches: tuple[Path, Path], no_network: None, tiny_registered: str
) -> None:
    hub, _ = empty_caches
    with pytest.raises(WeightsNotFoundError, match="fp-test/tiny-clip"):
        load_clip(tiny_registered)
    torch.manual_seed(1)
    reference = open_clip.CLIP(**json.loads(json.dumps(TINY_CFG)), quick_gelu=True).eval()
    _fake_hub_entry(hub, {k: v.contiguous() for k, v in reference.state_dict().items()})
    clip = load_clip(tiny_registered)
    assert clip.name == tiny_registered
    assert (clip.image_size, clip.mean, clip.std) == (32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    assert any(type(m).__name__ == "QuickGELU" for m in clip.model.modules())
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        expected = reference.encode_image((images - 0.5) / 0.25)
    torch.testing.assert_close(clip.encode_images(images), expected / expected.norm(dim=1, keepdim=True))


def test_a_named_model_is_found_in_the_fp_weights_dir(
    empty_caches: tuple[Path, Path], no_network: None, tiny_registered: str
) -> None:
    _, fp = empty_caches
    from safetensors.torch import save_file

    reference = open_clip.CLIP(**json.loads(json.dumps(TINY_CFG)), quick_gelu=True)
    (fp / "fp-test" / "tiny-clip").mkdir(parents=True)
    save_file(dict(reference.state_dict()), str(fp / "fp-test" / "tiny-clip" / WEIGHTS_FILENAME))
    clip = load_clip(tiny_registered)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(clip.model.state_dict()[key], value, rtol=0, atol=0)
