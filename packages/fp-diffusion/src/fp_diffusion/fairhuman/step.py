"""One FairHuman optimisation micro-step: weight the three losses and add the combined direction to ``.grad``.

``FairHumanStep(weighting, params)`` serves the LoRA trainer (``params = lora_parameters(unet)``) and the
ControlNet trainer (``params = list(controlnet.parameters())``) alike: the trained parameters are passed
explicitly and **materialised into a list once**, so a generator (``module.parameters()``) cannot be
exhausted by an earlier pass (the public code handed MPD an exhausted generator on its ControlNet path, which
silently turned MPD into the plain sum).

* Gramian weightings (``mpd``, ``nash_mtl``) and the loss weightings (``dwa``, ``uw``, ``rlw``, ``si``, ``ls``,
  ``global_only``) go through :func:`fp_gradagg.backward`; ``mpd_output`` through
  :func:`~fp_diffusion.fairhuman.output_space.output_space_backward` (needs ``output=eps_hat``).
* **Loss scale.** The losses are given as the forward produced them, or as a ``GradScaler`` scaled them
  (``fp_gradagg.scale_losses``); ``grad_scale`` says which (``None``, a number ``S`` or the scaler). The
  weights are solved on the unscaled gradients, so they do not depend on ``S`` (tested: losses × 1024 with
  ``grad_scale=1024`` give the same weights); ``.grad`` receives ``S · d``, which the scaler unscales.
* **Gradient accumulation** (``accumulation_steps=N``). Each micro-step divides its losses by ``N``, solves its
  **own** weights on **its** unscaled gradients (the ``1/N`` is declared to fp-gradagg as part of the scale),
  and **adds** ``(1/N) Σ_i w_i g_i`` to ``.grad``. After ``N`` micro-steps ``.grad`` holds the mean of the ``N``
  micro-batch directions (tested: two half batches give ``(d_1 + d_2) / 2``, each ``d_j`` solved on its own
  half, not the last one alone). This choice keeps nothing between micro-steps; it differs from MPD on the
  Gramian of the full batch's gradients (which would need the K per-objective gradients of all micro-batches),
  and is fp-gradagg's accumulation convention. Never zero ``.grad`` between micro-steps.
* **Non-finite / degenerate** cases follow fp-gradagg's rule: a zero-gradient objective (e.g. a batch with
  no hand) gets weight 0, a Pareto-stationary Gramian a bounded ridge; overflowing gradients apply ``w = 1``
  so the inf/NaN reaches ``.grad`` and a ``GradScaler`` skips the step; each is in the diagnostics.

The result carries the weights and a flat dict to log (``fairhuman/w_global``, ``fairhuman/w_face``,
``fairhuman/w_hand``, ``fairhuman/loss_*``, ``fairhuman/residual``, ``fairhuman/dropped``, ...); with
``log=`` and ``step=`` the step logs it itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fp_core.logging import LogFn, null_log
from fp_diffusion.fairhuman.objectives import OBJECTIVES
from fp_diffusion.fairhuman.output_space import output_space_backward
from fp_diffusion.fairhuman.weighting import FairHumanWeighting, build_fairhuman_weighting
from fp_gradagg import BackwardResult, backward
from fp_gradagg.gradients import Path, stack_losses
from fp_gradagg.step import resolve_grad_scale

__all__ = ["FairHumanStep", "FairHumanStepResult", "materialise_params"]


def materialise_params(params: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    """The trained parameters as a list of tensors that require grad (duplicates removed, order kept).

    Raises:
        ValueError: when nothing requires grad (an exhausted generator, a frozen module) or an entry is not a
            tensor.
    """
    if isinstance(params, torch.Tensor):
        params = [params]
    found: list[torch.Tensor] = []
    seen: set[int] = set()
    for i, p in enumerate(params):
        if not isinstance(p, torch.Tensor):
            raise ValueError(f"params[{i}] must be a tensor, got {type(p).__name__}")
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            found.append(p)
    if not found:
        raise ValueError(
            "params holds no tensor that requires grad (an exhausted generator, or a frozen module?): pass "
            "the trained parameters, e.g. lora_parameters(unet) or list(controlnet.parameters())"
        )
    return found


@dataclass(frozen=True)
class FairHumanStepResult:
    """What one micro-step applied.

    Attributes:
        weights: ``[3]`` the weights on (global, face, hand), float32 or float64.
        losses: ``[3]`` the unscaled loss values.
        diagnostics: ``{"fairhuman/w_global": ..., ...}`` to log.
        backward: fp-gradagg's full :class:`~fp_gradagg.BackwardResult`.
    """

    weights: torch.Tensor
    losses: torch.Tensor
    diagnostics: dict[str, float]
    backward: BackwardResult


def _ordered(losses: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    if isinstance(losses, Mapping):
        missing = [name for name in OBJECTIVES if name not in losses]
        if missing or len(losses) != len(OBJECTIVES):
            raise ValueError(f"losses must have exactly the keys {OBJECTIVES}, got {sorted(losses)}")
        return [losses[name] for name in OBJECTIVES]
    ordered = list(losses.unbind(0)) if isinstance(losses, torch.Tensor) else list(losses)
    if len(ordered) != len(OBJECTIVES):
        raise ValueError(f"expected {len(OBJECTIVES)} losses {OBJECTIVES}, got {len(ordered)}")
    return ordered


class FairHumanStep:
    """One micro-step of FairHuman's K = 3 objectives on explicitly given parameters (module docstring).

    Args:
        weighting: a :class:`~fp_diffusion.fairhuman.weighting.FairHumanWeighting` or its name.
        params: the trained parameters (LoRA or ControlNet); materialised into a list here.
        accumulation_steps: micro-steps per optimiser step (the losses are divided by it).
        path: fp-gradagg's path for the Gramian methods (``"fast"`` batched, ``"naive"`` K passes).
        prefix: the diagnostics' key prefix.
        log: a ``log(metrics, step)`` callback used when ``__call__`` gets a ``step``.
    """

    def __init__(
        self,
        weighting: FairHumanWeighting | str,
        params: Iterable[torch.Tensor],
        *,
        accumulation_steps: int = 1,
        path: Path = "fast",
        prefix: str = "fairhuman/",
        log: LogFn = null_log,
    ) -> None:
        self.weighting = build_fairhuman_weighting(weighting) if isinstance(weighting, str) else weighting
        if not isinstance(self.weighting, FairHumanWeighting):
            raise ValueError(
                f"weighting must be a FairHumanWeighting or a name, got {type(weighting).__name__}"
            )
        self.params = materialise_params(params)
        if (
            isinstance(accumulation_steps, bool)
            or not isinstance(accumulation_steps, int)
            or accumulation_steps < 1
        ):
            raise ValueError(f"accumulation_steps must be a positive int, got {accumulation_steps!r}")
        if path not in ("fast", "naive"):
            raise ValueError(f"path must be 'fast' or 'naive', got {path!r}")
        self.accumulation_steps = accumulation_steps
        self.path = path
        self.prefix = prefix
        self.log = log

    def __call__(
        self,
        losses: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
        *,
        output: torch.Tensor | None = None,
        grad_scale: float | Any | None = None,
        step: int | None = None,
    ) -> FairHumanStepResult:
        """Add this micro-batch's weighted direction to ``.grad`` of :attr:`params`.

        Args:
            losses: ``{"global", "face", "hand"}`` (or the three in that order), as the forward gave them, or
                scaled by a ``GradScaler`` (then ``grad_scale=scaler``).
            output: the denoiser's prediction ``[B, C, h, w]`` the losses came from (``mpd_output`` only).
            grad_scale: the factor the given losses carry (``None``: 1; a number; or the ``GradScaler``).
            step: the global step; when given, the diagnostics are passed to ``log``.
        """
        stacked = stack_losses(_ordered(losses))
        scale = resolve_grad_scale(grad_scale) / self.accumulation_steps
        scaled = stacked / self.accumulation_steps
        method = self.weighting.method
        if self.weighting.needs_output:
            if output is None:
                raise ValueError("the 'mpd_output' weighting needs output=eps_hat (the UNet's prediction)")
            result = output_space_backward(scaled, output, self.params, method, grad_scale=scale)
        else:
            result = backward(scaled, self.params, method, path=self.path, grad_scale=scale)
        diagnostics = self._diagnostics(result)
        if step is not None:
            self.log(diagnostics, step)
        return FairHumanStepResult(result.weights, result.losses, diagnostics, result)

    def _diagnostics(self, result: BackwardResult) -> dict[str, float]:
        out: dict[str, float] = {}
        weights = result.weights.detach().to("cpu", torch.float64).tolist()
        losses = result.losses.detach().to("cpu", torch.float64).tolist()
        for name, weight, loss in zip(OBJECTIVES, weights, losses, strict=True):
            out[f"{self.prefix}w_{name}"] = float(weight)
            out[f"{self.prefix}loss_{name}"] = float(loss)
        out[f"{self.prefix}residual"] = float(result.residual)
        out[f"{self.prefix}ridge"] = float(result.ridge)
        out[f"{self.prefix}dropped"] = float(len(result.dropped))
        out[f"{self.prefix}nonfinite"] = float(result.nonfinite)
        out[f"{self.prefix}iterations"] = float(result.iterations)
        return out
