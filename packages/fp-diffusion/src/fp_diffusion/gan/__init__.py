"""Pix2PixHD (NVIDIA pix2pixHD's architecture and objectives): label maps -> face images.

Modules: :mod:`~fp_diffusion.gan.config` (settings), :mod:`~fp_diffusion.gan.encoding` (one-hot maps, edge
channel, checks), :mod:`~fp_diffusion.gan.networks` (generators, discriminators), :mod:`~fp_diffusion.gan.vgg`
and :mod:`~fp_diffusion.gan.losses` (objectives), :mod:`~fp_diffusion.gan.train` (the trainer),
:mod:`~fp_diffusion.gan.io` (save / load) and :mod:`~fp_diffusion.gan.sampling` (generation, sample grids).
"""

from fp_diffusion.gan.config import TOY_SETTINGS, ConfigError, Pix2PixHDConfig, lr_factor
from fp_diffusion.gan.encoding import LabelRangeError, check_labels, edge_map, encode_input, one_hot
from fp_diffusion.gan.io import GENERATOR_KIND, load_generator, save_generator
from fp_diffusion.gan.losses import Pix2PixHDLosses, feature_matching, lsgan
from fp_diffusion.gan.networks import (
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    NLayerDiscriminator,
    Pix2PixHDGenerator,
    build_discriminator,
    build_generator,
    count_parameters,
)
from fp_diffusion.gan.sampling import colorize, default_palette, generate, sample_grid
from fp_diffusion.gan.train import train_pix2pixhd
from fp_diffusion.gan.vgg import VGG19Features, find_vgg19_weights

__all__ = [
    "GENERATOR_KIND",
    "TOY_SETTINGS",
    "ConfigError",
    "GlobalGenerator",
    "LabelRangeError",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "NLayerDiscriminator",
    "Pix2PixHDConfig",
    "Pix2PixHDGenerator",
    "Pix2PixHDLosses",
    "VGG19Features",
    "build_discriminator",
    "build_generator",
    "check_labels",
    "colorize",
    "count_parameters",
    "default_palette",
    "edge_map",
    "encode_input",
    "feature_matching",
    "find_vgg19_weights",
    "generate",
    "load_generator",
    "lr_factor",
    "lsgan",
    "one_hot",
    "sample_grid",
    "save_generator",
    "train_pix2pixhd",
]
