"""Quality-diversity generative sampling (QDGS) of a generator's latent space."""

__version__ = "0.1.0"

__all__: list[str] = ["__version__"]
