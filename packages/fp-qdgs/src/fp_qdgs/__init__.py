"""Quality-diversity generative sampling (QDGS) of a generator's latent space.

QDGS (Chang et al., AAAI 2024) runs CMA-MAEGA (pyribs 0.12) over a generator's latents with a CLIP scorer's
objective and measures, filling a grid over the measures with the best latent per cell. Modules:

* :mod:`fp_qdgs.protocols`: the generator and scorer protocols and their checks;
* :mod:`fp_qdgs.jacobian`: objective, measures and their ``[B, k + 1, n]`` Jacobian from one forward pass;
* :mod:`fp_qdgs.config`, :mod:`fp_qdgs.archives`, :mod:`fp_qdgs.emitters`, :mod:`fp_qdgs.sampler`,
  :mod:`fp_qdgs.checkpoint`, :mod:`fp_qdgs.baseline`: the sampler, its parts, resume, the random baseline;
* :mod:`fp_qdgs.clip_model`, :mod:`fp_qdgs.memory`, :mod:`fp_qdgs.clip_scorer`: the CLIP scorer;
* :mod:`fp_qdgs.embedded_clip`: a small open_clip model trained here on synthetic images and captions (the
  loader is ``fp_metrics.clip_models.load_clip``);
* :mod:`fp_qdgs.export`: the QDGS hand-off, an image-folder dataset of labelled samples with a manifest;
* :mod:`fp_qdgs.plotting`: archive heatmaps (matplotlib imported lazily);
* :mod:`fp_qdgs.toy`: a sphere / linear-projection toy generator and scorer;
* :mod:`fp_qdgs.shapes`: the colour-biased shapes proof of concept (renderer, captions, sets on disk, VAE,
  scorer prompts, classifier and the repair protocol);
* :mod:`fp_qdgs.faces`: QDGS on faces (identity labels from an archive, latent-walk variants, the identity
  folder the recogniser pretrains on, StyleGAN2 with safe loading and its q-space, the embedded face VAE).
"""

from fp_qdgs.archives import (
    ArchiveSample,
    acceptance_mask,
    archive_metrics,
    clipped_share,
    make_result_archive,
    make_search_archive,
    sample_archive,
)
from fp_qdgs.baseline import random_sampling
from fp_qdgs.checkpoint import load_archive, load_checkpoint, save_archive, save_checkpoint
from fp_qdgs.clip_model import CLIP_MEAN, CLIP_STD, CLIPLike, embed_texts, preprocess_for_clip
from fp_qdgs.clip_scorer import (
    CLIPScorer,
    CLIPScorerConfig,
    PromptPair,
    latent_norm_penalty,
    margin_penalty,
    pairwise_angle,
    prompt_pair_score,
)
from fp_qdgs.config import SamplerConfig
from fp_qdgs.embedded_clip import (
    CLIPTrainConfig,
    EmbeddedCLIPConfig,
    build_embedded_clip,
    train_clip,
    zero_shot_accuracy,
)
from fp_qdgs.emitters import QDGSArborescenceEmitter, make_emitters
from fp_qdgs.export import QDGSExport, archive_export, export_samples, label_by_threshold, read_export
from fp_qdgs.jacobian import Evaluation, evaluate, evaluate_with_jacobian, stacked_jacobian
from fp_qdgs.memory import EmbeddingMemory
from fp_qdgs.plotting import plot_archive_heatmap
from fp_qdgs.protocols import Generator, Scorer, check_images, check_scores, gaussian_mean_norm, generate
from fp_qdgs.sampler import QDGSSampler

__version__ = "0.1.0"

__all__ = [
    "CLIP_MEAN",
    "CLIP_STD",
    "ArchiveSample",
    "CLIPLike",
    "CLIPScorer",
    "CLIPScorerConfig",
    "CLIPTrainConfig",
    "EmbeddedCLIPConfig",
    "EmbeddingMemory",
    "Evaluation",
    "Generator",
    "PromptPair",
    "QDGSArborescenceEmitter",
    "QDGSExport",
    "QDGSSampler",
    "SamplerConfig",
    "Scorer",
    "__version__",
    "acceptance_mask",
    "archive_export",
    "archive_metrics",
    "build_embedded_clip",
    "check_images",
    "check_scores",
    "clipped_share",
    "embed_texts",
    "evaluate",
    "evaluate_with_jacobian",
    "export_samples",
    "gaussian_mean_norm",
    "generate",
    "label_by_threshold",
    "latent_norm_penalty",
    "load_archive",
    "load_checkpoint",
    "make_emitters",
    "make_result_archive",
    "make_search_archive",
    "margin_penalty",
    "pairwise_angle",
    "plot_archive_heatmap",
    "preprocess_for_clip",
    "prompt_pair_score",
    "random_sampling",
    "read_export",
    "sample_archive",
    "save_archive",
    "save_checkpoint",
    "stacked_jacobian",
    "train_clip",
    "zero_shot_accuracy",
]
