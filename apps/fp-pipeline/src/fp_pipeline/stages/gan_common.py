"""What the Pix2PixHD stages and ``clip-faces`` share: where outputs live and how params become settings.

Layout (all under ``outputs/``)::

    clip-faces/                          the embedded face CLIP (open_clip config + safetensors + manifest)
    clip-faces-zero-shot.json            its zero-shot accuracy per QDGS faces prompt pair (DVC metrics)
    gan/<variant>/model/seed-<s>/        one Pix2PixHD generator per GAN seed (save_generator)
    gan/<variant>/eval/metrics.json      FD / LPIPS on the test maps and each perturbed set (DVC metrics)
    gan/<variant>/eval/fig6.png          test maps of the variant and the faces generated from them
    gan/<variant>/eval/samples.npz       the Fig. 6 maps and images (uint8, for the report's grid)
    gan-report/                          report.md, summary.json, figures/
    checkpoints/gan-<variant>-seed-<s>/  resumable GAN checkpoints; checkpoints/clip-faces/ the CLIP's
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fp_pipeline.config import ParamsError, section

__all__ = [
    "CHECKPOINT_ROOT",
    "CLIP_FACES_DIR",
    "CLIP_FD_LABEL",
    "GAN_ROOT",
    "INCEPTION_FD_LABEL",
    "REPORT_DIR",
    "ZERO_SHOT_FILE",
    "checkpoint_dir",
    "eval_dir",
    "export_seed",
    "fd_label",
    "format_cell",
    "gan_seeds",
    "model_dir",
    "torch_threads",
]

CLIP_FACES_DIR = Path("outputs/clip-faces")
ZERO_SHOT_FILE = Path("outputs/clip-faces-zero-shot.json")
GAN_ROOT = Path("outputs/gan")
REPORT_DIR = Path("outputs/gan-report")
CHECKPOINT_ROOT = Path("outputs/checkpoints")
#: the metric's name in every table (offline default: no Inception weights, so not an FID)
CLIP_FD_LABEL = "CLIP-FD (embedded face CLIP)"
INCEPTION_FD_LABEL = "FID (Inception)"


def fd_label(features: str) -> str:
    """The table label of the Frechet distance in ``features`` space (``clip`` or ``inception``)."""
    if features not in ("clip", "inception"):
        raise ParamsError(f"gan.eval.features must be 'clip' or 'inception', got {features!r}")
    return CLIP_FD_LABEL if features == "clip" else INCEPTION_FD_LABEL


def format_cell(value: Any) -> str:
    """``{"mean", "se"}`` -> ``"12.3 ± 0.45"``; a string (an unavailable metric) is returned as is."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or value.get("mean") is None:
        return "n/a"
    se = value.get("se")
    return f"{value['mean']:.4g}" + ("" if se is None else f" ± {se:.2g}")


def model_dir(variant: str, seed: int | None = None) -> Path:
    """``outputs/gan/<variant>/model`` (the DVC output), or its ``seed-<s>`` generator."""
    base = GAN_ROOT / variant / "model"
    return base if seed is None else base / f"seed-{int(seed)}"


def eval_dir(variant: str) -> Path:
    """``outputs/gan/<variant>/eval``."""
    return GAN_ROOT / variant / "eval"


def checkpoint_dir(name: str) -> Path:
    """``outputs/checkpoints/<name>`` (e.g. ``gan-single-seed-0``, ``clip-faces``)."""
    return CHECKPOINT_ROOT / name


def gan_seeds(params: dict[str, Any]) -> list[int]:
    """``gan.seeds``: distinct non-negative ints (one GAN per seed and variant)."""
    values = section(params, "gan.seeds")
    if (
        not isinstance(values, list)
        or not values
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values)
        or len(set(values)) != len(values)
    ):
        raise ParamsError(f"gan.seeds must be a non-empty list of distinct ints >= 0, got {values!r}")
    return [int(v) for v in values]


def export_seed(params: dict[str, Any]) -> int:
    """``gan.export_seed``: which parser training seed's export the GANs read (one of parsing.export.seeds)."""
    seed = section(params, "gan.export_seed")
    exported = section(params, "parsing.export.seeds")
    if seed not in exported:
        raise ParamsError(f"gan.export_seed {seed!r} is not in parsing.export.seeds {exported}")
    return int(seed)


def torch_threads(params: dict[str, Any], key: str = "gan") -> None:
    """Apply ``<key>.torch_threads`` if > 0, else ``runtime.torch_threads`` (0: torch's default)."""
    import torch

    threads = int((params.get(key) or {}).get("torch_threads", 0) or 0)
    threads = threads or int(params.get("runtime", {}).get("torch_threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)
