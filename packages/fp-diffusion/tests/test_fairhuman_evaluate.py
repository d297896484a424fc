"""FairHuman evaluation: CLIP score on a hand-made CLIP, regional FD on hand-made features, scene generation
with the base / LoRA / ControlNet on a tiny base (shapes, per-image seeds), the optional scorers' messages."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny_sd import tiny_base  # noqa: E402  (tests/_tiny_sd.py, on the pytest pythonpath)

from fp_diffusion.fairhuman import (
    LoraSettings,
    add_lora,
    clip_score,
    generate_scenes,
    lora_parameters,
    optional_metric,
    regional_fd,
)
from fp_metrics.clip_models import LoadedCLIP

TEXTS = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "not red": (-1.0, 0.0, 0.0),
    "grey": (1.0, 1.0, 1.0),
}


class _ColourCLIP(torch.nn.Module):
    """Image embedding: the mean colour; text embedding: a fixed vector per caption (TEXTS)."""

    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Parameter(torch.tensor(list(TEXTS.values())), requires_grad=False)

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.table[tokens[:, 0]]


def _clip() -> LoadedCLIP:
    names = list(TEXTS)
    return LoadedCLIP(
        model=_ColourCLIP(),
        tokenizer=lambda prompts: torch.tensor([[names.index(p)] for p in prompts]),
        image_size=8,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        name="hand-made",
    )


def _solid(*colours) -> torch.Tensor:
    return torch.stack([torch.tensor(c).view(3, 1, 1).expand(3, 8, 8) for c in colours]).float()


def test_clip_score_is_100_cosine_clamped_at_zero() -> None:
    images = _solid((1, 0, 0), (1, 0, 0), (1, 0, 0), (1, 1, 0), (0.5, 0.5, 0.5))
    scores = clip_score(_clip(), images, ["red", "green", "not red", "red", "grey"])
    expected = torch.tensor([100.0, 0.0, 0.0, 100 / math.sqrt(2), 100.0])  # "not red": -100 clamped to 0
    torch.testing.assert_close(scores, expected, atol=1e-4, rtol=0)
    assert scores.shape == (5,) and scores.dtype == torch.float32
    with pytest.raises(ValueError, match="one caption per image"):
        clip_score(_clip(), images, ["red"])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        clip_score(_clip(), images * 2 - 1, ["red"] * 5)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        clip_score(_clip(), images[0], ["red"])


def test_regional_fd_on_hand_made_features() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 3))
    assert regional_fd(real, real) == pytest.approx(0.0, abs=1e-6)
    shifted = real + np.array([2.0, 0.0, 0.0])  # same covariance, mean moved by 2: FD = |d|^2 = 4
    assert regional_fd(torch.from_numpy(shifted), real) == pytest.approx(4.0, rel=1e-6)
    # the covariance term: N(0, 4 I) vs N(0, I) in 3-d gives 3 * (4 + 1 - 2 * 2) = 3 (exact for these sets)
    white = real - real.mean(axis=0)
    white = white @ np.linalg.inv(np.linalg.cholesky(np.cov(white, rowvar=False))).T
    assert regional_fd(2 * white, white) == pytest.approx(3.0, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 samples"):
        regional_fd(real[:1], real)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):
    return tiny_base(tmp_path_factory.mktemp("tiny")).freeze()


def test_generate_with_the_base_and_a_lora_unet_per_image_seeds(base) -> None:
    import copy

    prompts, settings = ["a person waving", "two people"], dict(steps=2, guidance_scale=2.0)
    plain = generate_scenes(base, None, prompts, seeds=[1, 2], **settings)
    assert plain.shape == (2, 3, 32, 32) and plain.dtype == torch.float32
    assert 0 <= float(plain.min()) and float(plain.max()) <= 1
    alone = generate_scenes(base, None, prompts[1:], seeds=[2], **settings)
    torch.testing.assert_close(alone[0], plain[1], rtol=0, atol=1e-6)  # image i depends only on seeds[i]
    unet = copy.deepcopy(base.unet)
    add_lora(unet, LoraSettings(rank=2))
    with torch.no_grad():
        for p in lora_parameters(unet):
            p.copy_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    adapted = generate_scenes(base, unet, prompts, seeds=[1, 2], **settings)
    assert adapted.shape == plain.shape and not torch.allclose(adapted, plain, atol=1e-3)
    with pytest.raises(ValueError, match="one seed per prompt"):
        generate_scenes(base, None, prompts, seeds=[1], **settings)


def test_generate_with_a_controlnet_needs_and_uses_the_conditions(base) -> None:
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(base.unet, conditioning_embedding_out_channels=(8, 16, 16))
    with torch.no_grad():  # non-zero residuals, so the condition reaches the image
        zero_convs = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]
        for module in [*zero_convs, controlnet.controlnet_cond_embedding.conv_out]:
            module.weight.copy_(
                0.5 * torch.randn(module.weight.shape, generator=torch.Generator().manual_seed(1))
            )
    poses = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    settings = dict(seeds=[3, 4], steps=2, guidance_scale=1.0)
    images = generate_scenes(base, controlnet, ["a", "b"], poses, **settings)
    assert images.shape == (2, 3, 32, 32) and 0 <= float(images.min()) and float(images.max()) <= 1
    again = generate_scenes(base, controlnet, ["a", "b"], poses, **settings)
    torch.testing.assert_close(again, images, rtol=0, atol=1e-6)
    other = generate_scenes(base, controlnet, ["a", "b"], poses.flip(0), **settings)
    assert not torch.allclose(other, images, atol=1e-3)  # the pose condition changes the image
    with pytest.raises(ValueError, match=r"needs conditions \[N=2, 3, H, W\], got None"):
        generate_scenes(base, controlnet, ["a", "b"], seeds=[3, 4], steps=2)


def test_optional_metrics_name_the_file_and_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path))
    message = optional_metric("hps_v2")
    assert message == (
        f"unavailable: place HPS_v2_compressed.pt at {tmp_path / 'HPS_v2_compressed.pt'} "
        "(from https://huggingface.co/xswu/HPSv2)"
    )
    assert "ImageReward.pt" in optional_metric("image-reward")
    (tmp_path / "HPS_v2_compressed.pt").write_bytes(b"weights")
    assert optional_metric("hps_v2") is None
    with pytest.raises(ValueError, match="unknown optional metric 'fid'"):
        optional_metric("fid")
