"""Datasets of fp-diffusion: (label map, image) pairs from a parsing export."""

from fp_diffusion.data.paired_maps import PairedMaps, PairedMapsError

__all__ = ["PairedMaps", "PairedMapsError"]
