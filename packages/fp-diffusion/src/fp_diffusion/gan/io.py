"""A trained generator on disk: ``generator.safetensors``, ``pix2pixhd_config.json`` and a manifest.

The directory (replaced atomically as a whole) holds::

    manifest.json               kind "pix2pixhd-generator", format_version 1, params = the config,
                                parameters (count), weights / config file names
    generator.safetensors       the generator's state dict (float tensors, CPU)
    pix2pixhd_config.json       Pix2PixHDConfig.to_dict()

Nothing is unpickled on load: safetensors and JSON only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fp_core.atomic import atomic_output_dir, write_json
from fp_core.manifest import read_manifest, write_manifest
from fp_diffusion.gan.config import Pix2PixHDConfig
from fp_diffusion.gan.networks import Pix2PixHDGenerator, build_generator, count_parameters

__all__ = ["CONFIG_FILE", "GENERATOR_KIND", "WEIGHTS_FILE", "load_generator", "save_generator"]

GENERATOR_KIND = "pix2pixhd-generator"
WEIGHTS_FILE = "generator.safetensors"
CONFIG_FILE = "pix2pixhd_config.json"


def save_generator(
    generator: nn.Module,
    config: Pix2PixHDConfig,
    directory: str | os.PathLike[str],
    *,
    inputs: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``generator`` (a :class:`Pix2PixHDGenerator` of ``config``) to ``directory`` atomically.

    ``inputs`` (e.g. the export it was trained on) go into the manifest's ``inputs``; ``extra`` (e.g. the
    history) into its fields. Returns ``directory``.
    """
    from safetensors.torch import save_file

    generator = getattr(generator, "module", generator)
    if not isinstance(generator, Pix2PixHDGenerator):
        raise TypeError(f"save_generator expects a Pix2PixHDGenerator, got {type(generator).__name__}")
    if generator.config.to_dict() != config.to_dict():
        raise ValueError("config differs from the generator's own config; pass the config it was built with")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in generator.state_dict().items()}
    directory = Path(directory)
    with atomic_output_dir(directory) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        write_json(tmp / CONFIG_FILE, config.to_dict())
        write_manifest(
            tmp,
            GENERATOR_KIND,
            inputs=inputs,
            params=config.to_dict(),
            parameters=count_parameters(generator),
            weights=WEIGHTS_FILE,
            config=CONFIG_FILE,
            **dict(extra or {}),
        )
    return directory


def load_generator(
    directory: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> Pix2PixHDGenerator:
    """The generator :func:`save_generator` wrote (its config on ``.config``), in eval mode.

    Raises :class:`fp_core.manifest.ManifestError` for a missing or foreign manifest, ``FileNotFoundError``
    naming a missing file and ``ValueError`` for weights that do not fit the config.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    manifest = read_manifest(directory, GENERATOR_KIND, required=("weights", "config"), max_version=1)
    config_path, weights_path = directory / manifest["config"], directory / manifest["weights"]
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing from the saved generator {directory}")
    config = Pix2PixHDConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
    generator = build_generator(config)
    state = load_file(str(weights_path), device=str(map_location))
    try:
        generator.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{weights_path} does not fit the config in {config_path}: {error}") from None
    return generator.to(map_location).eval()
