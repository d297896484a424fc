"""Generation: a saved ControlNet loads into the diffusers pipeline and generates; per-image seeds; the
conditioning matters; offline loading and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _tiny_sd import tiny_base  # noqa: E402  (tests/_tiny_sd.py, on the pytest pythonpath)
from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

from fp_core.weights import WeightsNotFoundError
from fp_diffusion.controlnet.config import ControlNetTrainConfig
from fp_diffusion.controlnet.pipeline import (
    SEG_CONTROLNET_HUB_ID,
    build_pipeline,
    generate_from_maps,
    load_controlnet,
)
from fp_diffusion.controlnet.train import controlnet_from_base


def _maps(count: int, size: int = 20, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 19, (count, size, size), generator=torch.Generator().manual_seed(seed))


def _active_controlnet(base) -> ControlNetModel:
    """A ControlNet whose zero convolutions (outputs and the condition embedding's last conv) are not zero, as
    after training, so that the map changes the image."""
    controlnet = controlnet_from_base(base, ControlNetTrainConfig())
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
        for block in [*zero_convs, controlnet.controlnet_cond_embedding.conv_out]:
            block.weight.copy_(torch.randn(block.weight.shape, generator=generator) * 0.5)
    return controlnet.eval()


def test_saved_controlnet_loads_into_the_pipeline_and_generates(tmp_path: Path) -> None:
    base = tiny_base(tmp_path).freeze()
    _active_controlnet(base).save_pretrained(tmp_path / "saved")
    loaded = load_controlnet(tmp_path / "saved")
    pipeline = build_pipeline(base, loaded, scheduler="unipc")
    assert isinstance(pipeline, StableDiffusionControlNetPipeline) and pipeline.safety_checker is None
    images = generate_from_maps(pipeline, _maps(3), "a face", seeds=[1, 2, 3], steps=3, batch_size=2)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.float32
    assert bool(torch.isfinite(images).all()) and 0 <= float(images.min()) and float(images.max()) <= 1
    with pytest.raises(ValueError, match="scheduler"):
        build_pipeline(base, loaded, scheduler="euler-x")


def test_each_image_depends_only_on_its_seed_and_map(tmp_path: Path) -> None:
    base = tiny_base(tmp_path).freeze()
    pipeline = build_pipeline(base, _active_controlnet(base))
    maps = _maps(3)
    prompts = ["a", "b", "c"]
    together = generate_from_maps(pipeline, maps, prompts, seeds=[5, 6, 7], steps=3, batch_size=3)
    alone = generate_from_maps(pipeline, maps[1:2], ["b"], seeds=[6], steps=3, batch_size=1)
    torch.testing.assert_close(alone[0], together[1], rtol=0, atol=1e-5)
    reordered = generate_from_maps(
        pipeline, maps.flip(0), prompts[::-1], seeds=[7, 6, 5], steps=3, batch_size=2
    )
    torch.testing.assert_close(reordered.flip(0), together, rtol=0, atol=1e-5)
    other_seed = generate_from_maps(pipeline, maps[1:2], ["b"], seeds=[8], steps=3)
    assert (other_seed[0] - together[1]).abs().max() > 1e-3
    other_map = generate_from_maps(pipeline, _maps(1, seed=9), ["b"], seeds=[6], steps=3)
    assert (other_map[0] - together[1]).abs().max() > 1e-3
    off = [
        generate_from_maps(pipeline, m, ["b"], seeds=[6], steps=3, controlnet_conditioning_scale=0.0)
        for m in (maps[1:2], _maps(1, seed=9))
    ]
    torch.testing.assert_close(off[0], off[1], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="seeds"):
        generate_from_maps(pipeline, maps, prompts, seeds=[1])


def test_offline_errors_name_repo_files_places_and_command(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "fp"))
    with pytest.raises(WeightsNotFoundError) as raised:
        load_controlnet(SEG_CONTROLNET_HUB_ID)
    message = str(raised.value)
    for needed in (
        SEG_CONTROLNET_HUB_ID,
        "config.json",
        "diffusion_pytorch_model.safetensors",
        "hf download lllyasviel/control_v11p_sd15_seg",
        "FP_WEIGHTS_DIR",
        str(tmp_path / "hub"),
        str(tmp_path / "fp" / SEG_CONTROLNET_HUB_ID),
    ):
        assert needed in message, needed
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="diffusion_pytorch_model.safetensors missing"):
        load_controlnet(tmp_path / "half")
    with pytest.raises(WeightsNotFoundError, match="neither a directory"):
        load_controlnet(tmp_path / "no" / "such" / "dir")


def test_hub_id_loads_from_the_fp_weights_dir(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "fp"))
    base = tiny_base(tmp_path)
    controlnet = _active_controlnet(base)
    controlnet.save_pretrained(tmp_path / "fp" / SEG_CONTROLNET_HUB_ID)
    loaded = load_controlnet(SEG_CONTROLNET_HUB_ID)
    assert torch.equal(loaded.controlnet_mid_block.weight, controlnet.controlnet_mid_block.weight)
