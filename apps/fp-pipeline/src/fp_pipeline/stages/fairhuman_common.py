"""What the FairHuman stages share (issue 16): where outputs live, how params become settings, the test set.

Layout (all under ``outputs/``; the schema in docs/fairhuman.md, "Pipeline stages")::

    fairhuman/data/{train,test}/              rendered human scenes (fp_pipeline.synth.humans layout)
    fairhuman/data-contact-sheet.png          train images with their face / hand boxes (DVC plots)
    fairhuman/base/                           the small text-to-image base (default only)
    fairhuman/clip/                           the embedded scene CLIP (default only)
    fairhuman/base-eval/                      metrics.json, evaluation.json, samples.png of the base alone
    fairhuman/runs/<variant>/train/seed-<s>/  model/final (LoRA or ControlNet), train.json (fairhuman-train@<variant>)
    fairhuman/runs/<variant>/eval/seed-<s>/   metrics.json, evaluation.json (fairhuman-eval@<variant>)
    fairhuman/runs/<variant>/samples/seed-<s>.png  pose | generated | real (DVC plots)
    fairhuman/runs/<variant>/metrics.json     every seed's metrics, {"seed-<s>": {...}} (DVC metrics)
    fairhuman-report/                         report.md, summary.json, figures/ (fairhuman_report)
    checkpoints/fairhuman-base-{vae,unet}/, checkpoints/fairhuman-clip/,
    checkpoints/fairhuman-<variant>-seed-<s>/   resumable checkpoints (removed once a stage has finished)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fp_pipeline.config import ParamsError, section

__all__ = [
    "BASE_DIR",
    "BASE_EVAL_DIR",
    "CLIP_DIR",
    "CONTACT_SHEET",
    "DATA_DIR",
    "FAIRHUMAN_ROOT",
    "REPORT_DIR",
    "RUNS_DIR",
    "SPLITS",
    "base_model",
    "clip_model",
    "eval_dir",
    "fairhuman_seeds",
    "samples_file",
    "stage_seeds",
    "train_dir",
    "variant_dir",
    "variant_metrics_file",
    "load_fairhuman_base",
    "model_dir",
    "split_dir",
    "load_test_scenes",
    "train_config",
    "uses_default_base",
    "variant_names",
]

FAIRHUMAN_ROOT = Path("outputs/fairhuman")
DATA_DIR = FAIRHUMAN_ROOT / "data"
CONTACT_SHEET = FAIRHUMAN_ROOT / "data-contact-sheet.png"
BASE_DIR = FAIRHUMAN_ROOT / "base"
CLIP_DIR = FAIRHUMAN_ROOT / "clip"
BASE_EVAL_DIR = FAIRHUMAN_ROOT / "base-eval"
RUNS_DIR = FAIRHUMAN_ROOT / "runs"
REPORT_DIR = Path("outputs/fairhuman-report")
SPLITS = ("train", "test")


def split_dir(split: str) -> Path:
    """``outputs/fairhuman/data/<split>`` (``train`` or ``test``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return DATA_DIR / split


def variant_dir(variant: str) -> Path:
    """``outputs/fairhuman/runs/<variant>``: the variant's train and eval stages write under it."""
    return RUNS_DIR / variant


def train_dir(variant: str, seed: int) -> Path:
    """``runs/<variant>/train/seed-<seed>`` (``model/`` and ``train.json``)."""
    return variant_dir(variant) / "train" / f"seed-{int(seed)}"


def model_dir(variant: str, seed: int) -> Path:
    """``train_dir/model`` (``final/`` and any ``epoch-<e>/`` snapshots)."""
    return train_dir(variant, seed) / "model"


def eval_dir(variant: str, seed: int) -> Path:
    """``runs/<variant>/eval/seed-<seed>`` (metrics.json, evaluation.json)."""
    return variant_dir(variant) / "eval" / f"seed-{int(seed)}"


def samples_file(variant: str, seed: int) -> Path:
    """``runs/<variant>/samples/seed-<seed>.png`` (pose | generated | real)."""
    return variant_dir(variant) / "samples" / f"seed-{int(seed)}.png"


def variant_metrics_file(variant: str) -> Path:
    """``runs/<variant>/metrics.json``: ``{"seed-<s>": metrics}`` over the seeds (DVC metrics)."""
    return variant_dir(variant) / "metrics.json"


def base_model(params: dict[str, Any]) -> str:
    """``fairhuman.base_model``: our own base (default) or a hub id / folder (real scale: SDXL)."""
    value = section(params, "fairhuman").get("base_model") or str(BASE_DIR)
    if not isinstance(value, str):
        raise ParamsError(f"fairhuman.base_model must be a path or a hub id, got {value!r}")
    return value


def uses_default_base(params: dict[str, Any]) -> bool:
    """True when ``fairhuman.base_model`` is the base ``fairhuman-base`` trains (then it trains it)."""
    return Path(base_model(params)) == BASE_DIR


def clip_model(params: dict[str, Any]) -> str:
    """``fairhuman.eval.clip``: the CLIP of the CLIP score and the FD features (default our scene CLIP)."""
    value = section(params, "fairhuman.eval").get("clip") or str(CLIP_DIR)
    if not isinstance(value, str):
        raise ParamsError(f"fairhuman.eval.clip must be a folder or an open_clip name, got {value!r}")
    return value


def load_fairhuman_base(params: dict[str, Any]) -> Any:
    """The base's ``BaseComponents`` (offline): errors name the missing files (``fp_diffusion.base.load_base``).

    ``fairhuman.vae_model`` (real scale: ``madebyollin/sdxl-vae-fp16-fix``) replaces the VAE; its files are
    looked up in the local cache too, and a missing one is named.
    """
    from fp_core.weights import hub_file
    from fp_diffusion.base import load_base

    vae_id = section(params, "fairhuman").get("vae_model")
    vae_files = []
    if vae_id:  # checked first: a missing replacement VAE is named even when the base is there
        vae_files = [hub_file(str(vae_id), name, what=f"{vae_id} VAE") for name in _VAE_FILES]
    base = load_base(base_model(params))
    if vae_files:
        from diffusers import AutoencoderKL

        base.vae = AutoencoderKL.from_pretrained(str(vae_files[0].parent), local_files_only=True).eval()
    return base


_VAE_FILES = ("config.json", "diffusion_pytorch_model.safetensors")


def variant_names(params: dict[str, Any]) -> list[str]:
    """``fairhuman.run``: distinct keys of ``fairhuman.variants`` (the variants ``dvc repro`` trains)."""
    values = section(params, "fairhuman.run")
    known = section(params, "fairhuman.variants")
    if not isinstance(values, list) or not values or len(set(values)) != len(values):
        raise ParamsError(f"fairhuman.run must be a non-empty list of distinct names, got {values!r}")
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ParamsError(f"fairhuman.run {unknown} are not keys of fairhuman.variants {sorted(known)}")
    return [str(v) for v in values]


def fairhuman_seeds(params: dict[str, Any]) -> list[int]:
    """``fairhuman.seeds``: distinct non-negative ints."""
    values = section(params, "fairhuman.seeds")
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in values)
        or len(set(values)) != len(values)
    ):
        raise ParamsError(f"fairhuman.seeds must be a non-empty list of distinct ints >= 0, got {values!r}")
    return list(values)


def stage_seeds(params: dict[str, Any], seed: int | None) -> list[int]:
    """The seeds one train / eval stage runs: ``[seed]`` (checked against ``fairhuman.seeds``) or, for None,
    all of ``fairhuman.seeds`` (one stage per variant runs every seed: each process pays ~14 s of imports)."""
    seeds = fairhuman_seeds(params)
    if seed is None:
        return seeds
    if int(seed) not in seeds:
        raise ParamsError(f"seed {seed} is not in fairhuman.seeds {seeds}")
    return [int(seed)]


def train_config(params: dict[str, Any], variant: str, seed: int) -> Any:
    """``FairHumanTrainConfig`` of ``{**fairhuman.train, **fairhuman.variants[variant], seed}``."""
    from fp_diffusion.fairhuman import FairHumanTrainConfig

    variants = section(params, "fairhuman.variants")
    if variant not in variants:
        raise ParamsError(f"variant {variant!r} is not a key of fairhuman.variants {sorted(variants)}")
    if int(seed) not in fairhuman_seeds(params):
        raise ParamsError(f"seed {seed} is not in fairhuman.seeds {fairhuman_seeds(params)}")
    overrides = variants[variant] or {}
    if not isinstance(overrides, dict) or not {"module", "weighting"} <= set(overrides):
        raise ParamsError(
            f"fairhuman.variants.{variant} must be a mapping with at least module and weighting, got {overrides!r}"
        )
    values = {**dict(section(params, "fairhuman.train") or {}), **overrides, "seed": int(seed)}
    try:
        return FairHumanTrainConfig.from_dict(values)
    except (ValueError, TypeError) as err:
        raise ParamsError(f"fairhuman.variants.{variant} (over fairhuman.train): {err}") from err


def load_test_scenes(resolution: int) -> dict[str, Any]:
    """The test split at ``resolution``: ``real`` and ``pose`` ``[N, 3, R, R]`` in [0, 1], ``prompts`` (N),
    ``face_boxes`` / ``hand_boxes`` (N lists of ``[x0, y0, x1, y1]``, scaled to ``resolution``)."""
    import torch

    from fp_diffusion.fairhuman import HumanScenes, read_metadata

    root = split_dir("test")
    data = HumanScenes(root, size=resolution, conditions=["pose"])
    items = [data[i] for i in range(len(data))]
    records = read_metadata(root)
    sizes = [_image_side(root / r.file_name) for r in records]
    scale = [resolution / s for s in sizes]
    return {
        "real": (torch.stack([it["pixel_values"] for it in items]) + 1) / 2,
        "pose": torch.stack([it["conditions"]["pose"] for it in items]),
        "prompts": [str(it["caption"]) for it in items],
        "face_boxes": [[_scaled(b, k) for b in r.face_boxes] for r, k in zip(records, scale, strict=True)],
        "hand_boxes": [[_scaled(b, k) for b in r.hand_boxes] for r, k in zip(records, scale, strict=True)],
    }


def _image_side(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    if width != height:
        raise ValueError(f"{path} is {width}x{height}; the human scenes are square")
    return int(width)


def _scaled(box: Any, factor: float) -> list[float]:
    return [float(v) * factor for v in box]
