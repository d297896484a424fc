"""save_base / load_base: the diffusers layout round trip, loading by diffusers itself, the offline errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from fp_core.manifest import read_manifest
from fp_core.weights import WeightsNotFoundError
from fp_diffusion.base import (
    SD15_HUB_ID,
    SDXL_HUB_ID,
    BaseComponents,
    DiffusionBaseConfig,
    build_clip_tokenizer,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
    encode_prompts,
    generate,
    load_base,
    sample_grid,
    save_base,
)

PROMPTS = ["a photo of a young woman with long blond hair, smiling", "a photo of an old man"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_clip_tokenizer(8)


@pytest.fixture
def components(tokenizer) -> BaseComponents:
    config = DiffusionBaseConfig.tiny()
    torch.manual_seed(0)
    vae = build_vae(config)
    vae.register_to_config(scaling_factor=0.5)
    parts = BaseComponents(
        vae, build_unet(config), build_text_encoder(config), tokenizer, build_scheduler(config), "tiny", 16
    )
    return parts.freeze()


def _outputs(parts: BaseComponents) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 16, 16, generator=generator) * 2 - 1
    with torch.no_grad():
        states = encode_prompts(parts.tokenizer, parts.text_encoder, PROMPTS, "cpu")
        latents = parts.vae.encode(x).latent_dist.mean
        eps = parts.unet(latents, torch.tensor([10, 500]), states).sample
        decoded = parts.vae.decode(latents).sample
    return [states, latents, eps, decoded]


def test_round_trip(components: BaseComponents, tmp_path: Path) -> None:
    config = DiffusionBaseConfig.tiny()
    out = save_base(components, tmp_path / "base", config=config, extra={"history": [{"epoch": 0.0}]})
    for name in (
        "model_index.json",
        "unet/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
    ):
        assert (out / name).is_file()
    manifest = read_manifest(out, "diffusion-base")
    assert manifest["resolution"] == 16 and manifest["latent_scale"] == 0.5
    assert manifest["params"] == config.to_dict() and manifest["history"] == [{"epoch": 0.0}]
    assert manifest["configs"]["unet"]["cross_attention_dim"] == 16
    loaded = load_base(out)
    assert loaded.resolution == 16 and loaded.latent_scale == 0.5 and loaded.name == str(out)
    assert loaded.noise_scheduler.config.prediction_type == "epsilon"
    assert type(loaded.noise_scheduler).__name__ == "DDPMScheduler"
    for name in ("vae", "unet", "text_encoder"):
        saved, back = getattr(components, name).state_dict(), getattr(loaded, name).state_dict()
        assert saved.keys() == back.keys() and all(torch.equal(saved[k], back[k]) for k in saved)
    # equal weights; the loaded VAE's attention runs another kernel path, so outputs agree to float rounding
    for a, b in zip(_outputs(components), _outputs(loaded), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    half = load_base(out, dtype=torch.bfloat16)
    assert next(half.unet.parameters()).dtype == torch.bfloat16
    assert next(half.text_encoder.parameters()).dtype == torch.bfloat16


def test_diffusers_loads_and_generates(components: BaseComponents, tmp_path: Path) -> None:
    from diffusers import StableDiffusionPipeline

    save_base(components, tmp_path / "base", config=None)
    pipe = StableDiffusionPipeline.from_pretrained(tmp_path / "base", local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    image = pipe(PROMPTS[:1], height=16, width=16, num_inference_steps=2, output_type="pt").images
    assert image.shape == (1, 3, 16, 16) and torch.isfinite(image).all()


def test_generate_depends_only_on_the_seed(components: BaseComponents) -> None:
    both = generate(components, PROMPTS, seeds=[3, 4], steps=2, guidance_scale=2.0, batch_size=2)
    alone = generate(components, PROMPTS[1:], seeds=[4], steps=2, guidance_scale=2.0, batch_size=1)
    assert both.shape == (2, 3, 16, 16) and 0 <= float(both.min()) and float(both.max()) <= 1
    assert torch.allclose(both[1], alone[0], atol=1e-5)
    other = generate(components, PROMPTS[1:], seeds=[5], steps=2, guidance_scale=2.0, scheduler="ddpm")
    assert not torch.allclose(other[0], alone[0])
    assert sample_grid(both, nrow=2).shape == (16, 32, 3)
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        generate(components, PROMPTS, seeds=[1])
    with pytest.raises(ValueError, match="scheduler must be one of"):
        generate(components, PROMPTS[:1], seeds=[1], scheduler="heun2")


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HF home and fp weight folder, the hub offline, and every socket connection refused."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "fp-weights"))

    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return tmp_path


def test_offline_error_names_everything(offline: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as caught:
        load_base()
    message = str(caught.value)
    assert SD15_HUB_ID in message
    assert (
        "unet/diffusion_pytorch_model.safetensors" in message and "text_encoder/model.safetensors" in message
    )
    assert (
        str(offline / "hf-home" / "hub" / "models--stable-diffusion-v1-5--stable-diffusion-v1-5") in message
    )
    assert str(offline / "fp-weights" / SD15_HUB_ID) in message and "$FP_WEIGHTS_DIR" in message
    assert f"`hf download {SD15_HUB_ID}`" in message
    with pytest.raises(WeightsNotFoundError, match="text_encoder_2/model.safetensors"):
        load_base(SDXL_HUB_ID)


def test_hub_id_from_the_fp_weight_folder(components: BaseComponents, offline: Path) -> None:
    save_base(components, offline / "fp-weights" / "someone" / "tiny-sd", config=None)
    loaded = load_base("someone/tiny-sd")
    assert loaded.name == "someone/tiny-sd" and loaded.resolution == 16  # 8 (UNet sample size) x 2 (VAE)
    for a, b in zip(_outputs(components), _outputs(loaded), strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_bad_paths(components: BaseComponents, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a folder"):
        load_base(tmp_path / "nothing-here")
    save_base(components, tmp_path / "base", config=None)
    (tmp_path / "base" / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    (tmp_path / "base" / "tokenizer" / "tokenizer.json").unlink()
    (tmp_path / "base" / "tokenizer" / "merges.txt").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"lacks unet/diffusion_pytorch_model.safetensors, tokenizer/tok"
    ):
        load_base(tmp_path / "base")
