"""The paper's CLIP scorer: prompt-pair angles for the objective and the measures, plus two latent/image terms.

Notation: ``e`` the unit CLIP embedding of an image, ``t`` a unit text embedding,
``angle(x, y) = 2 * arcsin(||x - y|| / 2)`` the angle between unit vectors (radians, in ``[0, pi]``; for unit
vectors ``||x - y|| = 2 sin(angle / 2)``). A *side* of a prompt pair may hold several prompts; its angle is the
mean over them (the public code sums them, which only rescales).

* Prompt term ``P(e) = angle(e, positive) - angle(e, negative)``: negative when the image is nearer the
  positive prompt.
* Measure ``j``: ``m_j(e) = angle(e, first_j) - angle(e, second_j)`` (radians; negative = nearer the first
  prompt). Their useful range is narrow: the public code's grids span ``[-0.1, 0.1]``.
* Latent regularisation ``R(z) = max(0, ||z|| - rho * mean_prior_norm)^2``: a squared hinge on the latent norm
  above ``rho`` times the generator's ``E ||z||`` under its prior.
* Image margin ``M(e) = max(0, margin - min_i angle(e, memory_i))`` over a FIFO memory of the embeddings of
  recently accepted images (0 while the memory is empty): penalises images within ``margin`` radians of one
  already accepted. The memory takes up to ``memory_per_batch`` accepted images per evaluated batch (the public
  code: one), ``memory_size`` in all (public: 100). The public code's version is
  ``1 - min_i angle * 100 / |memory|``; the hinge keeps the term's scale independent of the memory's length.

The loss is ``L = w_p * P + w_r * R + w_m * M`` and the objective (maximised) is
``objective = objective_offset - objective_scale * L``, by default ``100 - 50 * L`` as in the public code. So a
better prompt match raises the objective by 50 per radian of angle difference.

Default weights: ``w_p = 1``, ``w_r = 0.5``, ``w_m = 0.2``, the public code's face-run weights (the text of the
paper suggests the reverse order of importance for the two extra terms, regularisation 0.2 and margin 0.5; we
keep the values that produced the released datasets). The shapes run used the prompt term alone
(:meth:`CLIPScorerConfig.prompt_only`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from fp_qdgs.clip_model import CLIP_MEAN, CLIP_STD, CLIPLike, preprocess_for_clip, unit
from fp_qdgs.memory import EmbeddingMemory

__all__ = [
    "CLIPScorer",
    "CLIPScorerConfig",
    "PromptPair",
    "latent_norm_penalty",
    "margin_penalty",
    "pairwise_angle",
    "prompt_pair_score",
]

#: A prompt pair's text embeddings: ``(first / positive [P1, D], second / negative [P2, D])``.
PromptPair = tuple[torch.Tensor, torch.Tensor]


def pairwise_angle(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``2 * arcsin(||x_hat - y_hat|| / 2)`` between rows: ``x [B, D], y [P, D] -> [B, P]`` radians in ``[0, pi]``.

    Inputs are normalised first. The distance is floored at ``1e-6`` (angle ~1e-6) so the gradient stays finite
    for identical vectors, and the arcsin argument capped at 1.
    """
    diff = unit(x)[:, None, :] - unit(y)[None, :, :]
    dist = diff.square().sum(dim=-1).clamp_min(1e-12).sqrt()
    return 2.0 * torch.arcsin((dist / 2.0).clamp(max=1.0))


def prompt_pair_score(embeddings: torch.Tensor, pair: PromptPair) -> torch.Tensor:
    """``mean angle to pair[0] - mean angle to pair[1]``: ``embeddings [B, D] -> [B]`` radians."""
    first, second = (t if t.dim() == 2 else t[None] for t in pair)
    first, second = first.to(embeddings), second.to(embeddings)
    return pairwise_angle(embeddings, first).mean(dim=1) - pairwise_angle(embeddings, second).mean(dim=1)


def latent_norm_penalty(latents: torch.Tensor, rho: float, mean_prior_norm: float) -> torch.Tensor:
    """``max(0, ||z|| - rho * mean_prior_norm)^2``: ``latents [B, n] -> [B]``."""
    return torch.relu(latents.norm(dim=1) - rho * mean_prior_norm).square()


def margin_penalty(embeddings: torch.Tensor, memory: torch.Tensor | None, margin: float) -> torch.Tensor:
    """``max(0, margin - min_i angle(e, memory_i))``: ``embeddings [B, D], memory [M, D] -> [B]`` (0 if empty)."""
    if memory is None or memory.shape[0] == 0:
        return embeddings.new_zeros(embeddings.shape[0])
    nearest = pairwise_angle(embeddings, memory.to(embeddings)).min(dim=1).values
    return torch.relu(margin - nearest)


@dataclass(frozen=True)
class CLIPScorerConfig:
    """Weights and scales of the CLIP scorer (see the module docstring for the formulas)."""

    prompt_weight: float = 1.0
    regularization_weight: float = 0.5
    margin_weight: float = 0.2
    rho: float = 1.0
    margin: float = 0.2
    memory_size: int = 100
    memory_per_batch: int = 1
    objective_scale: float = 50.0
    objective_offset: float = 100.0
    image_size: int = 224
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD

    def __post_init__(self) -> None:
        for name in ("prompt_weight", "regularization_weight", "margin_weight", "rho", "margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.memory_size < 1 or self.memory_per_batch < 0 or self.image_size < 1:
            raise ValueError("memory_size and image_size must be >= 1 and memory_per_batch >= 0")
        if self.objective_scale <= 0:
            raise ValueError(f"objective_scale must be > 0, got {self.objective_scale}")

    @classmethod
    def prompt_only(cls, **overrides: float) -> CLIPScorerConfig:
        """The shapes proof of concept's weights: prompt term only (``w_r = w_m = 0``)."""
        return replace(cls(regularization_weight=0.0, margin_weight=0.0), **overrides)


class CLIPScorer:
    """Objective and ``k`` measures of images from a CLIP-like model and precomputed text embeddings.

    Args:
        model: ``encode_image(preprocessed [B, 3, S, S]) -> [B, D]``; pass it frozen and in eval mode.
        objective_prompts: ``(positive [P, D], negative [P', D])`` text embeddings.
        measure_prompts: one ``(first, second)`` pair per measure.
        mean_prior_norm: the generator's ``E ||z||`` (scale of the regulariser).
        config: weights and scales.
    """

    def __init__(
        self,
        model: CLIPLike,
        objective_prompts: PromptPair,
        measure_prompts: Sequence[PromptPair],
        *,
        mean_prior_norm: float,
        config: CLIPScorerConfig | None = None,
    ) -> None:
        if not measure_prompts:
            raise ValueError("measure_prompts is empty; give one (first, second) prompt pair per measure")
        self.model = model
        self.config = config or CLIPScorerConfig()
        self.objective_prompts = tuple(unit(t.float()) for t in objective_prompts)
        self.measure_prompts = [tuple(unit(t.float()) for t in pair) for pair in measure_prompts]
        self.mean_prior_norm = float(mean_prior_norm)
        self.memory = EmbeddingMemory(self.config.memory_size)

    @property
    def num_measures(self) -> int:
        """``k``: one per measure prompt pair."""
        return len(self.measure_prompts)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Unit CLIP embeddings of ``images [B, 3, H, W]`` in ``[0, 1]``: ``[B, D]`` (differentiable)."""
        c = self.config
        return unit(self.model.encode_image(preprocess_for_clip(images, c.image_size, c.mean, c.std)).float())

    def terms(self, images: torch.Tensor, latents: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every term per image: ``prompt, regularization, margin, loss, objective [B]``, ``measures [B, k]``."""
        c = self.config
        e = self.embed(images)
        prompt = prompt_pair_score(e, self.objective_prompts)
        reg = latent_norm_penalty(latents.float(), c.rho, self.mean_prior_norm).to(e)
        margin = margin_penalty(e, self.memory.embeddings, c.margin)
        loss = c.prompt_weight * prompt + c.regularization_weight * reg + c.margin_weight * margin
        measures = torch.stack([prompt_pair_score(e, pair) for pair in self.measure_prompts], dim=1)
        return {
            "prompt": prompt,
            "regularization": reg,
            "margin": margin,
            "loss": loss,
            "objective": c.objective_offset - c.objective_scale * loss,
            "measures": measures,
        }

    def __call__(self, images: torch.Tensor, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B, 3, H, W], latents [B, n] -> (objective [B], measures [B, k])``."""
        t = self.terms(images, latents)
        return t["objective"], t["measures"]

    @torch.no_grad()
    def update(self, images: torch.Tensor, accepted: torch.Tensor) -> None:
        """Push the embeddings of the first ``memory_per_batch`` accepted images into the memory."""
        idx = torch.nonzero(accepted.to(torch.bool).reshape(-1)).reshape(-1)[: self.config.memory_per_batch]
        if len(idx):
            self.memory.push(self.embed(images[idx.to(images.device)]))

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """The image memory, for checkpoints."""
        return self.memory.state_tensors()

    def load_state_tensors(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state_tensors`."""
        device = self.objective_prompts[0].device
        self.memory.load_state_tensors(state, device=device)
