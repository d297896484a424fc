"""The text-to-image latent diffusion base the ControlNet and LoRA fine-tuners start from.

Offline there is no Stable Diffusion, so the pipeline trains a small one here (:mod:`.config` for the toy
scale, :mod:`.train`: VAE, then UNet + text encoder jointly) on CLIP's real tokenizer (:mod:`.tokenizer`),
and stores it in diffusers' layout (:mod:`.io`); :func:`load_base` also loads the real SD 1.5 from the local
Hugging Face cache. :mod:`.sampling` draws images through diffusers' ``StableDiffusionPipeline``.
"""

from fp_diffusion.base.components import BaseComponents
from fp_diffusion.base.config import (
    TINY_SETTINGS,
    ConfigError,
    DiffusionBaseConfig,
    build_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
)
from fp_diffusion.base.io import (
    BASE_KIND,
    SD15_HUB_ID,
    SDXL_HUB_ID,
    SDXL_VAE_FIX,
    component_files,
    load_base,
    save_base,
)
from fp_diffusion.base.sampling import encode_prompts, generate, make_pipeline, sample_grid, tokenize
from fp_diffusion.base.tokenizer import (
    build_clip_tokenizer,
    clip_vocab_and_merges,
    write_clip_tokenizer_files,
)
from fp_diffusion.base.train import encode_latent_stats, measure_scaling_factor, train_denoiser, train_vae

__all__ = [
    "BASE_KIND",
    "SD15_HUB_ID",
    "SDXL_HUB_ID",
    "SDXL_VAE_FIX",
    "TINY_SETTINGS",
    "BaseComponents",
    "ConfigError",
    "DiffusionBaseConfig",
    "build_clip_tokenizer",
    "build_scheduler",
    "build_text_encoder",
    "build_unet",
    "build_vae",
    "clip_vocab_and_merges",
    "component_files",
    "encode_latent_stats",
    "encode_prompts",
    "generate",
    "load_base",
    "make_pipeline",
    "measure_scaling_factor",
    "sample_grid",
    "save_base",
    "tokenize",
    "train_denoiser",
    "train_vae",
    "write_clip_tokenizer_files",
]
