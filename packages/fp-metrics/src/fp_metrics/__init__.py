"""Segmentation, fairness, generative and verification metrics for fp."""

__version__ = "0.1.0"

__all__: list[str] = ["__version__"]
