"""LoRA on a tiny UNet: settings reach peft, only adapters train, save / load round trip, fuse."""

from __future__ import annotations

import json

import pytest
import torch

from fp_core.manifest import ManifestError
from fp_diffusion.fairhuman import (
    LORA_TARGETS,
    LORA_WEIGHTS_FILE,
    LoraSettings,
    add_lora,
    fuse_lora,
    load_lora,
    lora_parameters,
    save_lora,
)

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")


from _tiny_sd import tiny_unet  # noqa: E402  (tests/_tiny_sd.py, on the pytest pythonpath)


def _inputs():
    gen = torch.Generator().manual_seed(1)
    return (
        torch.randn(2, 4, 8, 8, generator=gen),
        torch.tensor([10, 700]),
        torch.randn(2, 5, 8, generator=gen),
    )


def _perturb_lora(unet) -> None:
    """Give lora_B nonzero values (it starts at 0, which would make every comparison trivial)."""
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in lora_parameters(unet):
            p.add_(0.2 * torch.randn(p.shape, generator=gen))


@torch.no_grad()
def _out(unet) -> torch.Tensor:
    x, t, e = _inputs()
    return unet(x, t, encoder_hidden_states=e).sample


def test_settings_reach_peft_and_only_lora_trains() -> None:
    unet = tiny_unet()
    base = _out(unet)
    params = add_lora(unet, LoraSettings(rank=3, alpha=6, dropout=0.1))
    assert LoraSettings().rank == 256 and LoraSettings().lora_alpha == 256.0
    config = unet.peft_config[next(iter(unet.peft_config))]
    assert config.r == 3 and config.lora_alpha == 6 and config.lora_dropout == 0.1
    assert set(config.target_modules) == set(LORA_TARGETS)
    trainable = [name for name, p in unet.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert len(params) == len(trainable) and isinstance(params, list)
    # rank-3 factors on every projection: 7 transformer blocks (2 down, 1 mid, 4 up) x (self-, cross-attention)
    # x 4 projections x (A, B)
    shapes = {tuple(p.shape) for name, p in unet.named_parameters() if ".lora_A." in name}
    assert all(s[0] == 3 for s in shapes)
    assert len(params) == 7 * 2 * 4 * 2
    unet.eval()
    torch.testing.assert_close(_out(unet), base)  # B = 0: starts from the base model
    with pytest.raises(ValueError, match="rank must be a positive int"):
        LoraSettings(rank=0)


def test_save_load_round_trip_gives_equal_outputs(tmp_path) -> None:
    unet = tiny_unet()
    add_lora(unet, LoraSettings(rank=4, alpha=2))  # alpha != rank: the scale must survive the round trip
    _perturb_lora(unet)
    unet.eval()
    expected = _out(unet)
    folder = save_lora(
        unet, tmp_path / "lora", extra={"weighting": "mpd"}, settings=LoraSettings(rank=4, alpha=2)
    )
    assert (folder / LORA_WEIGHTS_FILE).is_file()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "fairhuman-lora" and manifest["rank"] == 4 and manifest["lora_alpha"] == 2.0
    assert manifest["extra"] == {"weighting": "mpd"} and manifest["params"]["rank"] == 4
    from safetensors.torch import load_file

    keys = list(load_file(folder / LORA_WEIGHTS_FILE))
    assert keys and all(k.startswith("unet.") and (".lora_A." in k or ".lora_B." in k) for k in keys)
    fresh = tiny_unet()
    assert not torch.allclose(_out(fresh), expected)
    loaded = load_lora(fresh, folder)
    fresh.eval()
    assert loaded["num_tensors"] == len(keys)
    torch.testing.assert_close(_out(fresh), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="already carries adapters"):
        load_lora(fresh, folder)
    with pytest.raises(ManifestError):
        load_lora(tiny_unet(), tmp_path)


def test_fused_equals_unfused() -> None:
    unet = tiny_unet()
    add_lora(unet, LoraSettings(rank=4, alpha=8))
    _perturb_lora(unet)
    unet.eval()
    unfused = _out(unet)
    base = _out(tiny_unet())
    fuse_lora(unet)
    assert not lora_parameters(unet) and not any("lora" in n for n, _ in unet.named_modules())
    fused = _out(unet)
    torch.testing.assert_close(fused, unfused, rtol=0, atol=1e-5)  # float32 merge round-off
    assert (fused - base).abs().max() > 1e-2  # the adapters did change the model
