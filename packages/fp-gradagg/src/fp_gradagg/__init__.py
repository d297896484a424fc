"""Fair multi-objective gradient aggregation (MPD-FairGrad and baselines)."""

__version__ = "0.1.0"

__all__: list[str] = ["__version__"]
