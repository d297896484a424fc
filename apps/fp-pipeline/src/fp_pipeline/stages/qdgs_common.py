"""What the QDGS shapes stages share: where outputs live and how params become library settings.

Layout (all under ``outputs/``)::

    qdgs-shapes/data/train-b<bias>/, eval/      shapes sets (ImageFolder + labels.csv + manifest)
    qdgs-shapes-vae/                            the VAE generator (safetensors + config + manifest)
    clip-shapes/                                the embedded CLIP (open_clip config + safetensors + manifest)
    qdgs-shapes/clip-zero-shot.json             its zero-shot accuracies (DVC metrics)
    qdgs-shapes/samples/<method>/               QDGS or random samples, labelled (the QDGS export)
    qdgs-shapes/archives/<method>.npz, .json    the result archive (no pickle) and its settings
    qdgs-shapes/runs/<method>.json              the sampler's final metrics (DVC metrics)
    qdgs-shapes/plots/                          VAE samples, archive heatmaps (DVC plots)
    qdgs-shapes/classifier/b<bias>.json         the repair trials at one bias
    qdgs-shapes-report/                         report.md, summary.json, figures
    checkpoints/qdgs-shapes-<name>/             resumable checkpoints, outside the DVC outputs
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fp_pipeline.config import ParamsError, section

__all__ = [
    "ARCHIVE_DIR",
    "CLASSIFIER_DIR",
    "CLIP_DIR",
    "DATA_DIR",
    "METHODS",
    "PLOTS_DIR",
    "REPORT_DIR",
    "ROOT",
    "RUNS_DIR",
    "SAMPLES_DIR",
    "VAE_DIR",
    "ZERO_SHOT_FILE",
    "bias_name",
    "biases",
    "checkpoint_dir",
    "classifier_file",
    "eval_dir",
    "torch_threads",
    "train_dir",
]

ROOT = Path("outputs/qdgs-shapes")
DATA_DIR = ROOT / "data"
VAE_DIR = Path("outputs/qdgs-shapes-vae")
CLIP_DIR = Path("outputs/clip-shapes")
ZERO_SHOT_FILE = ROOT / "clip-zero-shot.json"
SAMPLES_DIR = ROOT / "samples"
ARCHIVE_DIR = ROOT / "archives"
RUNS_DIR = ROOT / "runs"
PLOTS_DIR = ROOT / "plots"
CLASSIFIER_DIR = ROOT / "classifier"
REPORT_DIR = Path("outputs/qdgs-shapes-report")
CHECKPOINT_ROOT = Path("outputs/checkpoints")
#: the two samplers compared at equal generator evaluations
METHODS: tuple[str, str] = ("qd", "random")


def bias_name(bias: float) -> str:
    """``0.98 -> "b0.98"``, ``0.9 -> "b0.9"``: Python's shortest float text, as DVC writes a matrix item."""
    return f"b{float(bias)!r}"


def train_dir(bias: float) -> Path:
    """``outputs/qdgs-shapes/data/train-b<bias>``."""
    return DATA_DIR / f"train-{bias_name(bias)}"


def eval_dir() -> Path:
    """``outputs/qdgs-shapes/data/eval``: the balanced evaluation set."""
    return DATA_DIR / "eval"


def classifier_file(bias: float) -> Path:
    """``outputs/qdgs-shapes/classifier/b<bias>.json``."""
    return CLASSIFIER_DIR / f"{bias_name(bias)}.json"


def checkpoint_dir(name: str) -> Path:
    """``outputs/checkpoints/qdgs-shapes-<name>``."""
    return CHECKPOINT_ROOT / f"qdgs-shapes-{name}"


def biases(params: dict[str, Any]) -> list[float]:
    """``qdgs.shapes.data.biases``: distinct values in ``(0.5, 1]`` (a share of triangles that are red)."""
    values = section(params, "qdgs.shapes.data.biases")
    if not isinstance(values, list) or not values:
        raise ParamsError(f"qdgs.shapes.data.biases must be a non-empty list, got {values!r}")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.5 <= float(v) <= 1.0:
            raise ParamsError(f"qdgs.shapes.data.biases: each bias must be a number in [0.5, 1], got {v!r}")
        out.append(float(v))
    names = [bias_name(b) for b in out]
    if len(set(names)) != len(names):
        raise ParamsError(f"qdgs.shapes.data.biases has duplicates: {values}")
    return out


def torch_threads(params: dict[str, Any]) -> None:
    """Apply ``qdgs.torch_threads`` if > 0, else ``runtime.torch_threads`` (0: torch's default)."""
    import torch

    threads = int(params.get("qdgs", {}).get("torch_threads", 0) or 0)
    threads = threads or int(params.get("runtime", {}).get("torch_threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)
