"""FairHuman's three denoising objectives: the global noise MSE and the face- and hand-masked MSEs.

Per-element squared errors ``(pred - target)²`` are computed in float32 (float64 stays float64), whatever the
dtype of the prediction (an fp16 / bf16 UNet output under autocast). Masks are at latent resolution
``[B, 1, h, w]`` (``fp_diffusion.fairhuman.mask_to_latent``) and broadcast over the ``C`` channels.

Two normalisations of a masked MSE:

* ``"mask"`` (default): ``Σ_{b,c,y,x} m · e / (C · Σ_{b,y,x} m)``, the mean squared error over the masked
  latent cells of the whole batch (every masked cell counts the same, so a large face weighs more than a small
  one, and an image whose mask is empty contributes nothing). A batch with **no** mask cell at all gives a
  loss of exactly 0 that still belongs to the graph (its gradient is 0), and
  :func:`masked_mse_with_area` reports the area 0 as the flag: fp-gradagg's degenerate-Gramian rule then gives
  that objective weight 0 (a zero gradient is dropped), and a loss weighting sees a zero loss.
* ``"all"``: ``Σ m · e / (B · C · h · w)``, the mean over all elements, as the public FairHuman code does
  (``F.mse_loss(pred * m, target * m)`` for a binary ``m``); it shrinks with the mask's area.

**Soft masks** (values strictly between 0 and 1, e.g. a bilinearly resized mask) are accepted as per-cell
weights: ``"mask"`` is then the ``m``-weighted mean (``Σ m e / (C Σ m)``), ``"all"`` is ``Σ m e / N`` (not the
public code's ``m²`` for soft values). Values outside ``[0, 1]`` or non-finite values are rejected.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["OBJECTIVES", "Normalise", "fairhuman_losses", "masked_mse", "masked_mse_with_area"]

Normalise = Literal["mask", "all"]

#: The objective names, in the order the weightings see them.
OBJECTIVES: tuple[str, str, str] = ("global", "face", "hand")


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise ValueError(
            f"pred and target must be tensors, got {type(pred).__name__} and {type(target).__name__}"
        )
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(
            f"pred and target must both be [B, C, h, w] of one shape, got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}"
        )
    if not pred.dtype.is_floating_point or not target.dtype.is_floating_point:
        raise ValueError(f"pred and target must be floating tensors, got {pred.dtype} and {target.dtype}")


def _check_mask(mask: torch.Tensor, pred: torch.Tensor, name: str) -> torch.Tensor:
    b, _, h, w = pred.shape
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"{name} must be a tensor [B, 1, h, w] or None, got {type(mask).__name__}")
    if mask.dim() == 3:
        mask = mask.unsqueeze(1)
    if tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(
            f"{name} must be [B, 1, h, w] = {(b, 1, h, w)} (latent resolution, see mask_to_latent), "
            f"got {tuple(mask.shape)}"
        )
    values = mask.detach()
    if values.dtype == torch.bool:
        return mask
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()) or bool((values > 1).any()):
        low, high = float(values.min()), float(values.max())
        raise ValueError(f"{name} values must be finite and in [0, 1], got min {low:g} and max {high:g}")
    return mask


def masked_mse_with_area(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    normalise: Normalise = "mask",
    name: str = "mask",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The masked MSE (module docstring) and the mask's area ``Σ m`` (0-dim float32, detached).

    Args:
        pred, target: ``[B, C, h, w]`` (the predicted and the true noise, or whichever target).
        mask: ``[B, 1, h, w]`` (or ``[B, h, w]``) in ``[0, 1]``, bool or float; ``None``: every cell.
        normalise: ``"mask"`` or ``"all"``.
        name: the mask's name in error messages.

    Returns:
        ``(loss, area)``: a 0-dim float32 (float64 for float64 inputs) loss with the graph, and the number of
        masked cells (the flag: ``area == 0`` means the loss is the constant 0).
    """
    _check_pair(pred, target)
    if normalise not in ("mask", "all"):
        raise ValueError(f"normalise must be 'mask' or 'all', got {normalise!r}")
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    error = (pred.to(dtype) - target.to(dtype)).square()
    channels = error.shape[1]
    if mask is None:
        return error.mean(), torch.tensor(float(error[:, 0].numel()))
    weights = _check_mask(mask, pred, name).to(error.device, dtype)
    weighted = (error * weights).sum()
    area = weights.detach().sum()
    if normalise == "all":
        return weighted / error.numel(), area.float()
    if float(area) == 0.0:
        return weighted * 0.0, area.float()
    return weighted / (area * channels), area.float()


def masked_mse(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    normalise: Normalise = "mask",
) -> torch.Tensor:
    """Masked mean squared error of ``pred`` and ``target`` ``[B, C, h, w]`` over ``mask`` ``[B, 1, h, w]``.

    A 0-dim float32 tensor (module docstring for both normalisations, empty and soft masks); ``mask=None`` is
    the plain MSE over every element.
    """
    return masked_mse_with_area(pred, target, mask, normalise=normalise)[0]


def fairhuman_losses(
    pred: torch.Tensor,
    target: torch.Tensor,
    face_mask: torch.Tensor | None,
    hand_mask: torch.Tensor | None,
    *,
    normalise: Normalise = "mask",
) -> dict[str, torch.Tensor]:
    """``{"global", "face", "hand"}``: the plain MSE and the face- / hand-masked MSEs, 0-dim tensors.

    Args:
        pred, target: ``[B, C, h, w]``.
        face_mask, hand_mask: ``[B, 1, h, w]`` latent-resolution masks in ``[0, 1]``. ``None`` is refused (a
            missing mask would silently become the global loss); pass zeros for "no face in this batch".
        normalise: how the masked losses are normalised (module docstring); the global loss is the mean.
    """
    for mask, name in ((face_mask, "face_mask"), (hand_mask, "hand_mask")):
        if mask is None:
            raise ValueError(f"{name} is None: pass a [B, 1, h, w] mask (zeros when the batch has none)")
    return {
        "global": masked_mse(pred, target, None),
        "face": masked_mse_with_area(pred, target, face_mask, normalise=normalise, name="face_mask")[0],
        "hand": masked_mse_with_area(pred, target, hand_mask, normalise=normalise, name="hand_mask")[0],
    }
