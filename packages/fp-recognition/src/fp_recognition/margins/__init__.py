"""Margin heads on cosines: ArcFace, CosFace, the combined margin, AdaFace; the normalised classifier."""

from fp_recognition.margins.adaface import AdaFaceMargin
from fp_recognition.margins.angular import ArcFaceMargin, CombinedMargin, CosFaceMargin
from fp_recognition.margins.normalised_linear import NormalisedLinear

__all__ = ["AdaFaceMargin", "ArcFaceMargin", "CombinedMargin", "CosFaceMargin", "NormalisedLinear"]
