"""The fp command line: pipeline stages, configuration, synthetic data, MLflow and DVC wiring."""

__version__ = "0.1.0"
