"""save_generator / load_generator round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fp_core.manifest import ManifestError, read_manifest
from fp_diffusion.gan import GENERATOR_KIND, Pix2PixHDConfig, build_generator, load_generator, save_generator


def test_round_trip(tmp_path: Path) -> None:
    config = Pix2PixHDConfig.toy(ngf=8, n_blocks=1, edge_channel=True)
    torch.manual_seed(1)
    generator = build_generator(config)
    save_generator(generator, config, tmp_path / "g", inputs={"export": "data/export"})
    manifest = read_manifest(tmp_path / "g", GENERATOR_KIND)
    assert manifest["params"] == config.to_dict() and manifest["inputs"] == {"export": "data/export"}
    assert manifest["parameters"] == sum(p.numel() for p in generator.parameters())
    loaded = load_generator(tmp_path / "g")
    assert loaded.config == config and not loaded.training
    for (name, a), (_, b) in zip(generator.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    labels = torch.randint(0, 19, (2, 16, 16))
    torch.testing.assert_close(
        loaded.from_labels(labels), generator.eval().from_labels(labels), rtol=0, atol=0
    )


def test_bad_saves_and_loads(tmp_path: Path) -> None:
    config = Pix2PixHDConfig.toy(ngf=8, n_blocks=1)
    generator = build_generator(config)
    with pytest.raises(ValueError, match="config differs"):
        save_generator(generator, Pix2PixHDConfig.toy(ngf=4), tmp_path / "g")
    with pytest.raises(TypeError, match="expects a Pix2PixHDGenerator"):
        save_generator(torch.nn.Linear(2, 2), config, tmp_path / "g")
    with pytest.raises(ManifestError, match="does not exist"):
        load_generator(tmp_path / "missing")
    save_generator(generator, config, tmp_path / "g")
    other = json.loads((tmp_path / "g" / "pix2pixhd_config.json").read_text())
    other["ngf"] = 4
    (tmp_path / "g" / "pix2pixhd_config.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="does not fit the config"):
        load_generator(tmp_path / "g")
