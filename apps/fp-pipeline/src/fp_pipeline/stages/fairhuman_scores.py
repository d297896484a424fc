"""The FairHuman metrics of generated test scenes (schema: docs/fairhuman.md, "Pipeline stages").

* CLIP score: :func:`fp_diffusion.fairhuman.clip_score` of each generated image against its test prompt,
  mean and s.e. over the images (default CLIP: the embedded scene CLIP ``fairhuman-base`` trains on the train
  scenes' captions; real scale: ViT-L/14 from the local cache).
* Frechet distances in that CLIP's image-embedding space (unit image embeddings): ``global`` between whole
  generated and real test images; ``face`` / ``hand`` between square crops of the generated and the real
  images at the test scene's own boxes (the boxes of the pose condition,
  :func:`fp_diffusion.fairhuman.crop_regions`, 25 % padding), each crop resized to the CLIP's input side.
  The s.e. is a bootstrap over the generated images (an image's crops resampled together with it).
* The floor: the same FDs between the two halves of the real test set.
* HPS v2 / ImageReward / MediaPipe: never scored here; their entries say what to place where.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

import numpy as np

from fp_pipeline.stages.generative_eval import mean_se

__all__ = ["CROP_PADDING", "features_label", "real_vs_real", "regional_rows", "score_images", "unavailable"]

CROP_PADDING = 0.25
REGIONS = ("face", "hand")


def features_label(clip: Any) -> str:
    """What space the FDs are in (for evaluation.json)."""
    return (
        f"unit image embeddings of the CLIP {clip.name} (its image tower; face / hand crops: squares at the "
        f"test boxes, padding {CROP_PADDING}, resized to its {clip.image_size} px input)"
    )


def _embed(clip: Any, images: Any) -> np.ndarray:
    import torch

    with torch.no_grad():
        return clip.encode_images(images).cpu().double().numpy()


def regional_rows(
    clip: Any, images: Any, boxes: Sequence[Sequence[Sequence[float]]]
) -> tuple[np.ndarray, np.ndarray]:
    """``(features [M, D] of every box crop, owner [M]: the index of the image each crop comes from)``."""
    from fp_diffusion.fairhuman import crop_regions

    owner = np.asarray([i for i, image_boxes in enumerate(boxes) for _ in image_boxes], dtype=np.int64)
    if owner.size == 0:
        return np.zeros((0, 1)), owner
    crops = crop_regions(images, boxes, clip.image_size, padding=CROP_PADDING)
    return _embed(clip, crops.clamp(0, 1)), owner


def _fd(a: np.ndarray, b: np.ndarray) -> float:
    from fp_diffusion.fairhuman import regional_fd

    return regional_fd(a, b) if len(a) >= 2 and len(b) >= 2 else float("nan")


def _bootstrap_fd(
    gen: np.ndarray, real: np.ndarray, owner: np.ndarray, n: int, samples: int, seed: int
) -> tuple[float, float]:
    """FD of paired rows and its bootstrap s.e. over the ``n`` images that own them (NaN draws skipped)."""
    fd = _fd(gen, real)
    rows_of = [np.flatnonzero(owner == i) for i in range(n)]
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(samples):
        picked = rng.integers(0, n, size=n)
        rows = np.concatenate([rows_of[i] for i in picked]) if n else np.zeros(0, np.int64)
        draws.append(_fd(gen[rows], real[rows]))
    finite = np.asarray([d for d in draws if np.isfinite(d)])
    se = float(np.std(finite, ddof=1)) if finite.size >= 2 else float("nan")
    return fd, se


def score_images(
    clip: Any, generated: Any, test: dict[str, Any], *, bootstrap: int, seed: int
) -> dict[str, float]:
    """``clip_score(_se)``, ``fd_global(_se)``, ``fd_face(_se)``, ``fd_hand(_se)`` of ``generated
    [N, 3, R, R]`` in [0, 1], image ``i`` drawn for ``test["prompts"][i]``, against ``test["real"]``."""
    from fp_diffusion.fairhuman import clip_score

    n = len(generated)
    scores, scores_se = mean_se(clip_score(clip, generated, test["prompts"]).double().numpy().tolist())
    out = {"clip_score": scores, "clip_score_se": float("nan") if scores_se is None else scores_se}
    owner = np.arange(n)
    out["fd_global"], out["fd_global_se"] = _bootstrap_fd(
        _embed(clip, generated), _embed(clip, test["real"]), owner, n, bootstrap, seed
    )
    for region in REGIONS:
        boxes = test[f"{region}_boxes"]
        gen, owner = regional_rows(clip, generated, boxes)
        real, _ = regional_rows(clip, test["real"], boxes)
        out[f"fd_{region}"], out[f"fd_{region}_se"] = _bootstrap_fd(gen, real, owner, n, bootstrap, seed)
    return out


def real_vs_real(clip: Any, test: dict[str, Any]) -> dict[str, float]:
    """The floor: ``{"global", "face", "hand"}`` FDs between the first and the second half of the real test set."""
    real, half = test["real"], len(test["real"]) // 2
    out = {"global": _fd(_embed(clip, real[:half]), _embed(clip, real[half:]))}
    for region in REGIONS:
        boxes = test[f"{region}_boxes"]
        first, _ = regional_rows(clip, real[:half], boxes[:half])
        second, _ = regional_rows(clip, real[half:], boxes[half:])
        out[region] = _fd(first, second)
    return out


def unavailable() -> dict[str, str]:
    """Why HPS v2, ImageReward and MediaPipe are not scored (weights / packages not local; never stand-ins)."""
    from fp_diffusion.fairhuman import optional_metric

    out = {}
    for name, package in (("hps_v2", "hpsv2"), ("image_reward", "ImageReward")):
        reason = optional_metric(name)
        if reason is None:  # weights are there; fp carries no scorer of its own
            installed = importlib.util.find_spec(package) is not None
            reason = f"unavailable: the weights are local, but fp does not run the {package} scorer" + (
                "" if installed else f" (and the {package} package is not installed)"
            )
        out[name] = reason
    out["mediapipe"] = (
        "unavailable: hand / face landmark checks need the mediapipe package and its task files "
        "(hand_landmarker.task, face_landmarker.task), which fp does not depend on"
    )
    return out
