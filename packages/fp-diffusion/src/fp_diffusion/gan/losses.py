"""Pix2PixHD's objectives: LSGAN, discriminator feature matching, VGG19 perceptual loss, optional L1.

With ``D`` = :class:`~fp_diffusion.gan.networks.MultiscaleDiscriminator` outputs (per scale, the list of
group outputs whose last is the patch score):

* ``lsgan(D, real)``: ``sum over scales of mean((score - t)^2)`` with ``t = 1`` (real) or ``0`` (fake);
  the discriminator's loss is ``0.5 * (lsgan(D(fake), False) + lsgan(D(real), True))`` (logged as
  ``loss_D_fake`` and ``loss_D_real``, each already halved), the generator's ``lsgan(D(fake), True)``;
* ``feature_matching``: ``lambda_feat * sum_scales sum_layers (1 / num_D) (4 / (n_layers + 1))
  * mean|f_fake - f_real.detach()|`` over every group output but the score;
* ``vgg``: ``lambda_vgg * sum_k w_k * mean|V_k(fake) - V_k(real).detach()|`` over relu1_1..relu5_1 with
  ``w = 1/32, 1/16, 1/8, 1/4, 1`` (:mod:`fp_diffusion.gan.vgg`); OFF, with :attr:`Pix2PixHDLosses.notes`
  saying why, when the VGG19 weights are not available locally (never a random VGG);
* ``l1``: the paper's ``lambda_l1 * mean|fake - real|`` (0 by default, as upstream).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fp_core.weights import WeightsNotFoundError
from fp_diffusion.gan.config import Pix2PixHDConfig
from fp_diffusion.gan.vgg import VGG_LAYER_WEIGHTS, VGG19Features, find_vgg19_weights

__all__ = ["Pix2PixHDLosses", "feature_matching", "lsgan"]

_LOG = logging.getLogger(__name__)
Predictions = Sequence[Sequence[torch.Tensor]]


def lsgan(predictions: Predictions, target_is_real: bool) -> torch.Tensor:
    """Sum over scales of the MSE of each scale's patch scores (its last output) to 1 (real) or 0 (fake)."""
    target = 1.0 if target_is_real else 0.0
    losses = [
        F.mse_loss(scale[-1].float(), torch.full_like(scale[-1].float(), target)) for scale in predictions
    ]
    return torch.stack(losses).sum()


def feature_matching(
    fake: Predictions, real: Predictions, n_layers: int, weight: float = 10.0
) -> torch.Tensor:
    """``weight * sum (1 / num_D) (4 / (n_layers + 1)) mean|fake_f - real_f|`` over the intermediate outputs
    (all but each scale's last); the real features are detached."""
    if len(fake) != len(real):
        raise ValueError(f"fake has {len(fake)} scales, real has {len(real)}")
    layer_weight, scale_weight = 4.0 / (n_layers + 1), 1.0 / len(fake)
    total = fake[0][0].new_zeros((), dtype=torch.float32)
    for fake_scale, real_scale in zip(fake, real, strict=True):
        for f, r in zip(fake_scale[:-1], real_scale[:-1], strict=True):
            total = total + scale_weight * layer_weight * F.l1_loss(f.float(), r.detach().float())
    return weight * total


class Pix2PixHDLosses(nn.Module):
    """The generator's and discriminator's losses for one config.

    Args:
        config: the run's settings (``feat_match``, ``lambda_feat``, ``vgg``, ``lambda_vgg``, ``vgg_path``,
            ``lambda_l1``, ``n_layers_D``).
        vgg: a ready feature extractor (tests), else one is loaded from the local weights when
            ``config.vgg``.

    Attributes:
        vgg_enabled: whether the perceptual term is computed.
        notes: human-readable notes (e.g. why the VGG term is off); also logged as warnings.
    """

    def __init__(self, config: Pix2PixHDConfig, vgg: nn.Module | None = None) -> None:
        super().__init__()
        self.config = config
        self.notes: list[str] = []
        self.vgg: nn.Module | None = vgg
        if self.vgg is None and config.vgg and config.lambda_vgg > 0:
            try:
                self.vgg = VGG19Features(find_vgg19_weights(config.vgg_path))
            except WeightsNotFoundError as error:
                note = f"VGG perceptual loss is OFF (loss_G_VGG stays 0): {error}"
                self.notes.append(note)
                _LOG.warning(note)

    @property
    def vgg_enabled(self) -> bool:
        return self.vgg is not None

    def perceptual(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``lambda_vgg * sum_k w_k mean|V_k(fake) - V_k(real)|`` (0 when the term is off)."""
        if self.vgg is None:
            return fake.new_zeros((), dtype=torch.float32)
        total = fake.new_zeros((), dtype=torch.float32)
        for w, f, r in zip(VGG_LAYER_WEIGHTS, self.vgg(fake), self.vgg(real), strict=True):
            total = total + w * F.l1_loss(f.float(), r.detach().float())
        return self.config.lambda_vgg * total

    def generator(
        self, pred_fake: Predictions, pred_real: Predictions, fake: torch.Tensor, real: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``loss_G_GAN``, ``loss_G_FM``, ``loss_G_VGG``, ``loss_G_L1`` (weighted terms, 0 when off),
        ``l1`` (the unweighted mean |fake - real|) and ``loss_G`` (their sum)."""
        c = self.config
        zero = fake.new_zeros((), dtype=torch.float32)
        terms = {
            "loss_G_GAN": lsgan(pred_fake, True),
            "loss_G_FM": feature_matching(pred_fake, pred_real, c.n_layers_D, c.lambda_feat)
            if c.feat_match
            else zero,
            "loss_G_VGG": self.perceptual(fake, real),
        }
        l1 = F.l1_loss(fake.float(), real.float())
        terms["loss_G_L1"] = c.lambda_l1 * l1 if c.lambda_l1 > 0 else zero
        terms["loss_G"] = sum(terms.values(), zero)
        terms["l1"] = l1.detach()
        return terms

    def discriminator(self, pred_fake: Predictions, pred_real: Predictions) -> dict[str, torch.Tensor]:
        """``loss_D_fake`` and ``loss_D_real`` (each half the LSGAN term) and ``loss_D`` (their sum)."""
        fake, real = 0.5 * lsgan(pred_fake, False), 0.5 * lsgan(pred_real, True)
        return {"loss_D_fake": fake, "loss_D_real": real, "loss_D": fake + real}
