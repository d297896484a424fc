"""The shapes run's CLIP scorer: the public code's prompts on a loaded CLIP (e.g. the embedded shapes CLIP).

A *loaded CLIP* is any object with ``model`` (an open_clip-style ``encode_image``), ``encode_texts(prompts) ->
unit [P, D]``, ``image_size``, ``mean`` and ``std`` (``fp_metrics.clip_models.LoadedCLIP``); it is duck-typed
here, so fp-qdgs does not import fp-metrics' loader. The prompts are embedded once, when the scorer is built;
the scorer preprocesses images with the loaded CLIP's own size and normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import torch

from fp_qdgs.clip_scorer import CLIPScorer, CLIPScorerConfig
from fp_qdgs.protocols import gaussian_mean_norm
from fp_qdgs.shapes.vae import LATENT_DIM

__all__ = ["SHAPE_MEASURE", "SHAPES_PROMPTS", "LoadedCLIPLike", "PromptSet", "shapes_scorer"]

Side = tuple[str, ...]


class LoadedCLIPLike(Protocol):
    """What :func:`shapes_scorer` reads from a loaded CLIP."""

    model: Any
    image_size: int
    mean: Any
    std: Any

    def encode_texts(self, prompts: Sequence[str]) -> torch.Tensor: ...


@dataclass(frozen=True)
class PromptSet:
    """Objective prompts ``(positive side, negative side)``, one ``(first, second)`` pair per measure, and the
    measures' names (a side is one or more prompts; its angle is the mean over them)."""

    objective: tuple[Side, Side]
    measures: tuple[tuple[Side, Side], ...]
    measure_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.measures) != len(self.measure_names) or not self.measures:
            raise ValueError(
                f"give one name per measure prompt pair: {len(self.measures)} pairs, "
                f"{len(self.measure_names)} names"
            )
        sides = [*self.objective, *(side for pair in self.measures for side in pair)]
        if any(not side or any(not isinstance(p, str) or not p for p in side) for side in sides):
            raise ValueError("every prompt side needs one or more non-empty strings")

    def all_prompts(self) -> list[str]:
        """Every prompt, objective sides first, then each measure's two sides (the embedding order)."""
        return [p for side in (*self.objective, *(s for pair in self.measures for s in pair)) for p in side]


#: The public code's shapes prompts (sentences end in a full stop there). Measure 0 ("colour") is negative
#: for red, measure 1 ("shape") negative for triangles.
SHAPES_PROMPTS = PromptSet(
    objective=(("A regular square or a triangle.",), ("Splatters of colors.",)),
    measures=(
        (("A red shape.",), ("A blue shape.",)),
        (("A triangle with 3 edges.",), ("A square or diamond with 4 edges.",)),
    ),
    measure_names=("colour", "shape"),
)
#: Index of the shape measure in :data:`SHAPES_PROMPTS` (the one the exported samples are labelled by).
SHAPE_MEASURE = 1


def _split(embeddings: torch.Tensor, prompts: PromptSet) -> tuple[tuple, list[tuple]]:
    sides = [*prompts.objective, *(s for pair in prompts.measures for s in pair)]
    chunks, start = [], 0
    for side in sides:
        chunks.append(embeddings[start : start + len(side)])
        start += len(side)
    objective = (chunks[0], chunks[1])
    measures = [(chunks[2 + 2 * j], chunks[3 + 2 * j]) for j in range(len(prompts.measures))]
    return objective, measures


def shapes_scorer(
    clip: LoadedCLIPLike,
    config: CLIPScorerConfig | None = None,
    prompts: PromptSet = SHAPES_PROMPTS,
    *,
    mean_prior_norm: float | None = None,
) -> CLIPScorer:
    """A :class:`~fp_qdgs.CLIPScorer` on ``clip.model`` with ``prompts`` embedded once by ``clip.encode_texts``.

    ``config`` defaults to :meth:`CLIPScorerConfig.prompt_only` (the shapes run); its ``image_size``, ``mean``
    and ``std`` are replaced by the loaded CLIP's. ``mean_prior_norm`` defaults to the 6-d VAE prior's.
    """
    for name in ("model", "encode_texts", "image_size", "mean", "std"):
        if not hasattr(clip, name):
            raise TypeError(
                f"{type(clip).__name__} has no {name!r}; expected a loaded CLIP (LoadedCLIP-like)"
            )
    all_prompts = prompts.all_prompts()
    with torch.no_grad():
        texts = torch.as_tensor(clip.encode_texts(all_prompts)).detach().float()
    if texts.dim() != 2 or len(texts) != len(all_prompts):
        raise ValueError(
            f"encode_texts returned shape {tuple(texts.shape)} for {len(all_prompts)} prompts; expected [P, D]"
        )
    base = config or CLIPScorerConfig.prompt_only()
    config = replace(
        base,
        image_size=int(clip.image_size),
        mean=tuple(float(v) for v in torch.as_tensor(clip.mean, dtype=torch.float64).reshape(-1)),
        std=tuple(float(v) for v in torch.as_tensor(clip.std, dtype=torch.float64).reshape(-1)),
    )
    objective, measures = _split(texts, prompts)
    norm = gaussian_mean_norm(LATENT_DIM) if mean_prior_norm is None else float(mean_prior_norm)
    return CLIPScorer(clip.model, objective, measures, mean_prior_norm=norm, config=config)
