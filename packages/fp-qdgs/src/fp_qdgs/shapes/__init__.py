"""The colour-biased shapes proof of concept: renderer, VAE generator, classifier."""

from fp_qdgs.shapes.classifier import (
    ShapeClassifier,
    balanced_group_accuracy,
    predict_shapes,
    train_classifier,
)
from fp_qdgs.shapes.render import (
    BLUE,
    COLOURS,
    IMAGE_SIZE,
    RED,
    SHAPES,
    ShapesData,
    augment,
    base_image,
    caption,
    make_shapes,
    whiten_dark,
)
from fp_qdgs.shapes.vae import LATENT_DIM, DecoderGenerator, ShapesVAE, VAEOutput, elbo_loss, train_vae

__all__ = [
    "BLUE",
    "COLOURS",
    "IMAGE_SIZE",
    "LATENT_DIM",
    "RED",
    "SHAPES",
    "DecoderGenerator",
    "ShapeClassifier",
    "ShapesData",
    "ShapesVAE",
    "VAEOutput",
    "augment",
    "balanced_group_accuracy",
    "base_image",
    "caption",
    "elbo_loss",
    "make_shapes",
    "predict_shapes",
    "train_classifier",
    "train_vae",
    "whiten_dark",
]
