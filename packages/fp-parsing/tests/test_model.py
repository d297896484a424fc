"""The U-Net parser: shapes, input normalisation, save / load round trip, offline encoder weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from fp_parsing.model import (
    CONFIG_FILENAME,
    IMAGENET_MEAN,
    IMAGENET_STD,
    WEIGHTS_FILENAME,
    EncoderWeightsUnavailable,
    FaceParser,
    build_parser,
    encoder_weight_source,
    load_parser,
    save_parser,
)

TINY = {"encoder_name": "resnet18", "num_classes": 5, "encoder_depth": 3, "decoder_channels": (16, 8, 4)}


def _tiny(**overrides: object) -> FaceParser:
    torch.manual_seed(0)
    return build_parser(**{**TINY, **overrides})  # type: ignore[arg-type]


@pytest.fixture
def offline_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty Hugging Face and fp caches, offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "fp"))
    (tmp_path / "hub").mkdir()
    return tmp_path


def _encoder_state(value: float) -> dict[str, torch.Tensor]:
    """A resnet18 encoder state dict with every floating tensor set to ``value``."""
    from segmentation_models_pytorch.encoders import get_encoder

    state = get_encoder("resnet18", weights=None).state_dict()
    return {
        k: (torch.full_like(v, value) if v.dtype.is_floating_point else v).contiguous()
        for k, v in state.items()
    }


def test_forward_shape_and_imagenet_normalisation() -> None:
    model = _tiny().eval()
    images = torch.rand(2, 3, 32, 32)
    logits = model(images)
    assert logits.shape == (2, 5, 32, 32)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(logits, model.unet((images - mean) / std))
    plain = _tiny(normalize=False).eval()
    plain.load_state_dict(model.state_dict())
    torch.testing.assert_close(plain(images), model.unet(images))


def test_state_dict_is_the_unets_own() -> None:
    model = _tiny()
    keys = set(model.state_dict())
    assert keys == {f"unet.{k}" for k in model.unet.state_dict()}
    assert not any("input_mean" in k or "input_std" in k for k in keys)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="decoder_channels must have encoder_depth=3"):
        build_parser("resnet18", encoder_depth=3, decoder_channels=(16, 8))
    with pytest.raises(ValueError, match="num_classes"):
        build_parser("resnet18", num_classes=0)


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = _tiny()
    with torch.no_grad():  # move the BatchNorm statistics away from their defaults
        model.train()(torch.rand(4, 3, 32, 32))
    model.eval()
    save_parser(model, tmp_path / "parser", {"encoder_weights": "imagenet", "variant": "linear"})
    assert sorted(p.name for p in (tmp_path / "parser").iterdir()) == [WEIGHTS_FILENAME, CONFIG_FILENAME]
    config = json.loads((tmp_path / "parser" / CONFIG_FILENAME).read_text())
    assert config["variant"] == "linear" and config["encoder_weights"] == "imagenet"
    assert (
        config["encoder_depth"] == 3
        and config["decoder_channels"] == [16, 8, 4]
        and config["num_classes"] == 5
    )

    loaded = load_parser(tmp_path / "parser").eval()
    assert loaded.architecture == model.architecture
    images = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_save_refuses_a_config_that_contradicts_the_model(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        save_parser(_tiny(), tmp_path, {"num_classes": 19})
    with pytest.raises(TypeError, match="FaceParser"):
        save_parser(torch.nn.Linear(2, 2), tmp_path, {})


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=CONFIG_FILENAME):
        load_parser(tmp_path)
    save_parser(_tiny(), tmp_path, {})
    (tmp_path / WEIGHTS_FILENAME).write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=rf"{WEIGHTS_FILENAME} is not a readable safetensors file"):
        load_parser(tmp_path)
    (tmp_path / WEIGHTS_FILENAME).unlink()
    with pytest.raises(FileNotFoundError, match=WEIGHTS_FILENAME):
        load_parser(tmp_path)
    (tmp_path / CONFIG_FILENAME).write_text("{not json")
    save_file({"x": torch.zeros(1)}, str(tmp_path / WEIGHTS_FILENAME))
    with pytest.raises(ValueError, match=rf"{CONFIG_FILENAME} is not valid JSON"):
        load_parser(tmp_path)


def test_load_detects_weights_of_another_architecture(tmp_path: Path) -> None:
    save_parser(_tiny(), tmp_path, {})
    config = json.loads((tmp_path / CONFIG_FILENAME).read_text())
    config["num_classes"] = 7
    (tmp_path / CONFIG_FILENAME).write_text(json.dumps(config))
    with pytest.raises(ValueError, match=rf"{WEIGHTS_FILENAME} does not hold the parser"):
        load_parser(tmp_path)


def test_offline_missing_weights_fail_fast_with_instructions(offline_caches: Path) -> None:
    source = encoder_weight_source("resnet18", "imagenet")
    with pytest.raises(EncoderWeightsUnavailable) as caught:
        build_parser("resnet18", encoder_weights="imagenet", num_classes=3)
    message = str(caught.value)
    assert source["repo_id"] in message and source["revision"] in message
    assert str(offline_caches / "hub") in message and str(offline_caches / "fp") in message
    assert "HF_HUB_OFFLINE is set" in message
    assert f"hf download {source['repo_id']} {WEIGHTS_FILENAME} --revision {source['revision']}" in message
    assert "encoder_weights: null" in message and "path of a local" in message
    # raised directly from fp-parsing, not from inside a download attempt: no chained errors, short traceback
    assert caught.value.__context__ is None and caught.value.__cause__ is None
    assert len(caught.traceback) <= 3


def test_unknown_weights_name_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"no pretrained weights 'imagenet22k'.*imagenet"):
        build_parser("resnet18", encoder_weights="imagenet22k")


def test_weights_are_read_from_the_hub_cache(offline_caches: Path) -> None:
    source = encoder_weight_source("resnet18", "imagenet")
    snapshot = (
        offline_caches
        / "hub"
        / f"models--{source['repo_id'].replace('/', '--')}"
        / "snapshots"
        / source["revision"]
    )
    snapshot.mkdir(parents=True)
    save_file(_encoder_state(0.25), str(snapshot / WEIGHTS_FILENAME))
    model = build_parser("resnet18", encoder_weights="imagenet", num_classes=3)
    assert torch.equal(
        model.unet.encoder.conv1.weight, torch.full_like(model.unet.encoder.conv1.weight, 0.25)
    )
    assert torch.equal(model.unet.encoder.layer4[1].bn2.bias, torch.full((512,), 0.25))


def test_weights_are_read_from_the_fp_cache_or_an_explicit_file(offline_caches: Path) -> None:
    source = encoder_weight_source("resnet18", "imagenet")
    target = offline_caches / "fp" / source["repo_id"] / WEIGHTS_FILENAME
    target.parent.mkdir(parents=True)
    save_file(_encoder_state(0.5), str(target))
    model = build_parser("resnet18", encoder_weights="imagenet", num_classes=3)
    assert torch.equal(model.unet.encoder.conv1.weight, torch.full_like(model.unet.encoder.conv1.weight, 0.5))

    explicit = offline_caches / "mine.safetensors"
    save_file(_encoder_state(-1.0), str(explicit))
    model = build_parser("resnet18", encoder_weights=str(explicit), num_classes=3)
    assert float(model.unet.encoder.conv1.weight.detach().max()) == -1.0

    with pytest.raises(EncoderWeightsUnavailable, match="does not exist"):
        build_parser("resnet18", encoder_weights=str(offline_caches / "absent.safetensors"))
    save_file({"conv1.weight": torch.zeros(1)}, str(explicit))
    with pytest.raises(
        EncoderWeightsUnavailable, match=r"mine\.safetensors does not hold the resnet18 encoder"
    ):
        build_parser("resnet18", encoder_weights=str(explicit))
