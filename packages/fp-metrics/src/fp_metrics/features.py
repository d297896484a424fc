"""Image feature extraction for FID / KID with a pluggable extractor.

Pipeline (clean-fid's "clean" mode): each image as an ``[H, W, 3]`` array in ``[0, 255]`` is resized per
channel with PIL bicubic on float32 ('F' mode) images, clipped to ``[0, 255]``; the batch
``[B, 3, S, S]`` (float32, still in ``[0, 255]``) goes to the extractor, which returns ``[B, D]``.
The default extractor is the TorchScript Inception of clean-fid (``inception-2015-12-05.pt``), which
normalises ``(x - 128) / 128`` and returns the 2048-d pool features. Folders are searched recursively
and sorted, like clean-fid's ``get_folder_features``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fp_core.weights import find_weight_file
from fp_metrics.generative import FeatureStats

__all__ = [
    "INCEPTION_FILENAME",
    "INCEPTION_URL",
    "IMAGE_EXTENSIONS",
    "InceptionFeatureExtractor",
    "clean_resize",
    "extract_features",
    "feature_stats_from_images",
    "list_images",
]

INCEPTION_FILENAME = "inception-2015-12-05.pt"
INCEPTION_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm")

Extractor = torch.nn.Module | Callable[[torch.Tensor], torch.Tensor]
ImageSource = str | os.PathLike | Sequence[str | os.PathLike] | torch.Tensor | np.ndarray


def clean_resize(image: np.ndarray, size: int | tuple[int, int] = 299) -> np.ndarray:
    """clean-fid's "clean" resize: ``[H, W, 3]`` in ``[0, 255]`` -> float32 ``[S_h, S_w, 3]`` in ``[0, 255]``.

    Each channel becomes a PIL float ('F') image, is resized with bicubic filtering and clipped; no
    quantisation. ``size`` is an int or ``(height, width)``.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must have shape [H, W, 3], got {arr.shape}")
    h, w = (size, size) if isinstance(size, int) else size
    channels = []
    for c in range(3):
        pil = Image.fromarray(arr[:, :, c].astype(np.float32), mode="F")
        channels.append(np.asarray(pil.resize((w, h), resample=Image.BICUBIC)).clip(0, 255))
    return np.stack(channels, axis=2).astype(np.float32)


def _cleanfid_cache_dirs() -> list[Path]:
    """Where clean-fid itself keeps the Inception file (``/tmp``, or ``./`` on Windows), plus the temp dir."""
    dirs = [Path("./") if os.name == "nt" else Path("/tmp"), Path(tempfile.gettempdir())]
    return list(dict.fromkeys(dirs))


class InceptionFeatureExtractor(torch.nn.Module):
    """clean-fid's Inception-v3 (TorchScript): ``[B, 3, 299, 299]`` in ``[0, 255]`` -> ``[B, 2048]``.

    ``path`` is the ``.pt`` file or a folder with it; by default it is looked up in ``$FP_WEIGHTS_DIR`` /
    ``~/.cache/fp`` and then clean-fid's own cache (``/tmp``). Nothing is downloaded: a missing file raises
    :class:`~fp_metrics.WeightsNotFoundError` naming the file, its URL and where to put it. Any TorchScript
    file with a ``layers`` submodule mapping ``[B, 3, 299, 299]`` to ``[B, ...]`` is accepted.
    """

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        super().__init__()
        file = find_weight_file(
            INCEPTION_FILENAME,
            INCEPTION_URL,
            path,
            extra_dirs=_cleanfid_cache_dirs(),
            what="Inception (clean-fid) TorchScript",
        )
        try:
            with warnings.catch_warnings():  # recent torch flags TorchScript as deprecated; the file is one
                warnings.simplefilter("ignore", FutureWarning)
                base = torch.jit.load(str(file), map_location="cpu")
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"{file} is not a loadable TorchScript file (expected clean-fid's {INCEPTION_FILENAME} "
                f"from {INCEPTION_URL}): {err}"
            ) from err
        if not hasattr(base, "layers"):
            raise ValueError(f"{file} has no 'layers' submodule; expected clean-fid's {INCEPTION_FILENAME}")
        self.path = file
        self.base = base.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 3, 299, 299]`` float in ``[0, 255]`` -> features ``[B, 2048]``."""
        if x.dim() != 4 or x.shape[1] != 3 or x.shape[2:] != (299, 299):
            raise ValueError(f"Inception expects images [B, 3, 299, 299] in [0, 255], got {tuple(x.shape)}")
        return self.base.layers.forward((x - 128) / 128).reshape(x.shape[0], -1)


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Sorted image files (extension in :data:`IMAGE_EXTENSIONS`, any case) in ``folder``.

    Subfolders are searched too unless ``recursive=False`` (clean-fid searches recursively).
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"image folder {root} does not exist or is not a directory")
    candidates = root.rglob("*") if recursive else root.iterdir()
    files = sorted(p for p in candidates if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"no images with extensions {IMAGE_EXTENSIONS} in {root}")
    return files


def _image_to_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """One ``[3, H, W]`` image, uint8 in [0, 255] or float in [0, 1] -> float32 ``[H, W, 3]`` in [0, 255]."""
    t = image.detach().cpu() if isinstance(image, torch.Tensor) else torch.from_numpy(np.asarray(image))
    if t.dtype == torch.uint8:
        arr = t.numpy().astype(np.float32)
    elif t.dtype.is_floating_point:
        lo, hi = (float(t.min()), float(t.max())) if t.numel() else (0.0, 0.0)
        if lo < 0 or hi > 1:
            raise ValueError(
                f"float image tensors must be in [0, 1] (uint8 tensors in [0, 255]), got range [{lo}, {hi}]"
            )
        arr = t.to(torch.float32).numpy() * 255
    else:
        raise ValueError(f"image tensors must be uint8 or floating point, got dtype {t.dtype}")
    return arr.transpose(1, 2, 0)


def _iter_arrays(images: ImageSource) -> Iterator[np.ndarray]:
    """Iterator of ``[H, W, 3]`` float32 arrays in [0, 255], one image at a time."""
    if isinstance(images, torch.Tensor | np.ndarray):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"image tensors must have shape [N, 3, H, W], got {tuple(images.shape)}")
        return (_image_to_hwc(images[i]) for i in range(images.shape[0]))
    if isinstance(images, str | os.PathLike):
        files = list_images(images)
    else:
        files = [Path(p) for p in images]
        for f in files:
            if not f.is_file():
                raise ValueError(f"image file {f} does not exist")

    def load() -> Iterator[np.ndarray]:
        for f in files:
            with Image.open(f) as im:
                yield np.asarray(im.convert("RGB"), dtype=np.uint8).astype(np.float32)

    return load()


def _batches(
    images: ImageSource, batch_size: int, image_size: int, resize: str | None
) -> Iterator[torch.Tensor]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if resize not in ("clean", None):
        raise ValueError(f"resize must be 'clean' or None, got {resize!r}")
    arrays = _iter_arrays(images)
    batch: list[np.ndarray] = []
    for arr in arrays:
        if resize == "clean":
            arr = clean_resize(arr, image_size)
        elif arr.shape[:2] != (image_size, image_size):
            raise ValueError(
                f"with resize=None every image must be {image_size}x{image_size}, "
                f"got {arr.shape[0]}x{arr.shape[1]}"
            )
        batch.append(arr)
        if len(batch) == batch_size:
            yield torch.from_numpy(np.stack(batch).transpose(0, 3, 1, 2).copy())
            batch = []
    if batch:
        yield torch.from_numpy(np.stack(batch).transpose(0, 3, 1, 2).copy())


def _resolve_extractor(extractor: Extractor | None, device: torch.device | str) -> Extractor:
    if extractor is None:
        return InceptionFeatureExtractor().to(device)
    if not callable(extractor):
        raise ValueError(
            f"extractor must be an nn.Module or a callable [B, 3, S, S] -> [B, D], got {extractor!r}"
        )
    return extractor


def _run(extractor: Extractor, batch: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    with torch.no_grad():
        out = extractor(batch.to(device))
    if not isinstance(out, torch.Tensor) or out.dim() < 1 or out.shape[0] != batch.shape[0]:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the extractor must return a tensor [B, D] with B={batch.shape[0]}, got {got}")
    return out.reshape(out.shape[0], -1).cpu()


def extract_features(
    images: ImageSource,
    extractor: Extractor | None = None,
    *,
    batch_size: int = 50,
    image_size: int = 299,
    resize: str | None = "clean",
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Features of all images -> float32 ``[N, D]``.

    ``images``: a folder (searched recursively, sorted), a list of files, or a tensor / array
    ``[N, 3, H, W]`` (uint8 in [0, 255] or float in [0, 1]).
    ``extractor``: any module / callable mapping ``[B, 3, S, S]`` float32 in [0, 255] on ``device`` to
    ``[B, D]`` (run under ``torch.no_grad``; put a module in eval mode yourself); default
    :class:`InceptionFeatureExtractor` (``S = image_size = 299``).
    ``resize``: ``"clean"`` (:func:`clean_resize` to ``S x S``) or ``None`` (images must already be
    ``S x S``).
    """
    extractor = _resolve_extractor(extractor, device)
    feats = [_run(extractor, b, device) for b in _batches(images, batch_size, image_size, resize)]
    if not feats:
        raise ValueError("no images to extract features from")
    return torch.cat(feats).numpy().astype(np.float32, copy=False)


def feature_stats_from_images(
    images: ImageSource,
    extractor: Extractor | None = None,
    *,
    batch_size: int = 50,
    image_size: int = 299,
    resize: str | None = "clean",
    device: torch.device | str = "cpu",
    stats: FeatureStats | None = None,
) -> FeatureStats:
    """Streaming version of :func:`extract_features` -> :class:`FeatureStats` (O(D^2) memory, any N).

    Pass ``stats`` to keep accumulating into an existing accumulator.
    """
    extractor = _resolve_extractor(extractor, device)
    stats = FeatureStats() if stats is None else stats
    for b in _batches(images, batch_size, image_size, resize):
        stats.update(_run(extractor, b, device))
    return stats
