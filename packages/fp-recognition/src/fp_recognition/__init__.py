"""Face recognition (iResNet, ArcFace/AdaFace) and fairness evaluation."""

__version__ = "0.1.0"

__all__: list[str] = ["__version__"]
