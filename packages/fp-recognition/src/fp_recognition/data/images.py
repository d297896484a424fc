"""Image decoding, encoding and tensor conversion shared by every reader; lazily decoded image lists.

Convention: an image tensor is float32 ``[3, H, W]`` RGB in ``[0, 1]``; "normalised" means ``(x - 0.5) / 0.5``
in ``[-1, 1]``, what insightface and AdaFace feed their networks.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fp_recognition.data.errors import DataFormatError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageLike",
    "LazyImages",
    "decode_image",
    "encode_jpeg",
    "image_to_tensor",
    "load_image_file",
    "normalise",
]

#: File name suffixes the folder readers take as images (lower case).
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp")

#: What the writers accept as one image: encoded bytes (written as they are), a PIL image, a uint8 array
#: ``[H, W, 3]`` or a float tensor ``[3, H, W]`` in ``[0, 1]``.
ImageLike = bytes | Image.Image | np.ndarray | torch.Tensor


def decode_image(data: bytes, source: str | os.PathLike[str], where: str = "") -> Image.Image:
    """Decode encoded image bytes (JPEG, PNG ...) to an RGB PIL image; a :class:`DataFormatError` if they don't."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")
    except Exception as exc:  # PIL raises several types for corrupt data
        raise DataFormatError(source, f"image does not decode ({type(exc).__name__}: {exc})", where) from exc


def load_image_file(path: str | os.PathLike[str]) -> Image.Image:
    """Read and decode one image file to RGB; a :class:`DataFormatError` naming it if it is missing or bad."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"image cannot be read ({exc.strerror or exc})") from exc
    return decode_image(data, path)


def image_to_tensor(image: Image.Image, image_size: int | None = None) -> torch.Tensor:
    """RGB PIL image -> float32 ``[3, S, S]`` in ``[0, 1]``, bilinearly resized to ``image_size`` if given."""
    x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1).float() / 255.0
    if image_size is not None and tuple(x.shape[1:]) != (image_size, image_size):
        x = F.interpolate(x[None], size=(image_size, image_size), mode="bilinear", align_corners=False)[0]
        x = x.clamp(0.0, 1.0)
    return x


def normalise(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1] -> [-1, 1]``: ``(x - 0.5) / 0.5``, any shape."""
    return (x - 0.5) / 0.5


def encode_jpeg(image: ImageLike, quality: int = 95) -> bytes:
    """Encode one image (see :data:`ImageLike`) as JPEG bytes; bytes are returned unchanged."""
    if isinstance(image, bytes):
        return image
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image tensor must have shape [3, H, W], got {tuple(image.shape)}")
        image = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    if isinstance(image, np.ndarray):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image array must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"cannot encode {type(image).__name__} as an image")
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


class LazyImages(Sequence[torch.Tensor]):
    """Images decoded on access: ``images[i] -> [3, S, S]`` float32 (normalised unless ``normalise=False``).

    Args:
        sources: encoded bytes or image file paths.
        origin: the file the bytes come from (named in errors, with the image index).
        image_size: resize to ``S x S`` if the stored size differs; ``None`` keeps it.
        normalise: map ``[0, 1]`` to ``[-1, 1]``.
        bgr: reverse the channels (AdaFace's released checkpoints take BGR input).
    """

    def __init__(
        self,
        sources: Sequence[bytes | str | os.PathLike[str]],
        *,
        origin: str | os.PathLike[str] = "",
        image_size: int | None = None,
        normalise: bool = True,
        bgr: bool = False,
    ) -> None:
        self.sources = sources
        self.origin = str(origin)
        self.image_size = image_size
        self.normalise = normalise
        self.bgr = bgr

    def __len__(self) -> int:
        return len(self.sources)

    def __getitem__(self, index: int) -> torch.Tensor:  # type: ignore[override]
        source = self.sources[index]
        if isinstance(source, bytes):
            img = decode_image(source, self.origin, f"image {index}")
        else:
            img = load_image_file(source)
        x = image_to_tensor(img, self.image_size)
        if self.bgr:
            x = x.flip(0)
        return normalise(x) if self.normalise else x
