"""FairHuman and parsing-conditioned generators (Pix2PixHD, ControlNet)."""

__version__ = "0.1.0"

__all__: list[str] = ["__version__"]
