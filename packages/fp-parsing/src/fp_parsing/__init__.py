"""Fair and robust multi-objective face parsing (U-Net, homotopy-scheduled losses)."""

__version__ = "0.1.0"

__all__: list[str] = ["__version__"]
