"""LPIPS (through the ``lpips`` package) and CLIP score (through ``open_clip``), offline-friendly.

Both packages are optional extras (``fp-metrics[lpips]``, ``fp-metrics[clip]``) imported lazily here.

* LPIPS: the linear calibration layers ship inside the ``lpips`` package; the ImageNet trunk (AlexNet /
  VGG16 / SqueezeNet 1.1, torchvision files) is loaded by fp from a local file, never downloaded. With
  ``pnet_rand=True`` the trunk is random (tests, no file needed).
* CLIP score: ``100 * max(cos(image_emb, text_emb), 0)`` per pair. Weights come from a local file
  (``pretrained=path``), from ``$FP_WEIGHTS_DIR/open_clip-<model>-<tag>.bin`` for a named tag, or none
  (``pretrained=None``: random init).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from fp_core.weights import WeightsNotFoundError, find_weight_file

__all__ = ["LPIPS_TRUNK_FILES", "CLIPScore", "LPIPSDistance"]

#: torchvision trunk weights used by each LPIPS network: (file name, URL)
LPIPS_TRUNK_FILES: dict[str, tuple[str, str]] = {
    "alex": ("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "squeeze": (
        "squeezenet1_1-b8a52dc0.pth",
        "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
    ),
}


def _import(module: str, extra: str) -> Any:
    try:
        return __import__(module)
    except ImportError as err:
        raise ImportError(
            f"{module} is not installed; install it with `pip install fp-metrics[{extra}]`"
        ) from err


def _check_images(x: torch.Tensor, name: str, lo: float, hi: float) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be an image tensor [B, 3, H, W], got {shape}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"{name} must be floating point with values in [{lo}, {hi}], got dtype {x.dtype}")
    if x.numel():
        mn, mx = float(x.detach().min()), float(x.detach().max())
        if mn < lo or mx > hi:
            raise ValueError(f"{name} values must lie in [{lo}, {hi}], got range [{mn:.4g}, {mx:.4g}]")


class LPIPSDistance(torch.nn.Module):
    """LPIPS distance ``x, y [B, 3, H, W]`` in ``[-1, 1]`` -> ``[B]`` (batched; differentiable).

    Args:
        net: ``"alex"``, ``"vgg"`` or ``"squeeze"``.
        trunk_weights: the torchvision trunk file (see :data:`LPIPS_TRUNK_FILES`) or a folder with it;
            by default looked up in ``$FP_WEIGHTS_DIR`` / ``~/.cache/fp`` and torch's hub checkpoint folder.
        pnet_rand: random trunk, no file needed (for tests).
        pretrained_linear: load the calibrated linear layers bundled with ``lpips`` (else random).
        batch_size: pairs per forward pass.
    """

    def __init__(
        self,
        net: str = "alex",
        *,
        trunk_weights: str | os.PathLike | None = None,
        pnet_rand: bool = False,
        pretrained_linear: bool = True,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        if net not in LPIPS_TRUNK_FILES:
            raise ValueError(f"net must be one of {sorted(LPIPS_TRUNK_FILES)}, got {net!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        lpips = _import("lpips", "lpips")
        linear_file = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"
        if pretrained_linear and not linear_file.is_file():
            raise WeightsNotFoundError(
                f"LPIPS linear layers: {linear_file} is missing from the lpips installation; reinstall "
                f"lpips>=0.1.4 (the file ships with the package) or pass pretrained_linear=False."
            )
        trunk_file = None
        if not pnet_rand:
            filename, url = LPIPS_TRUNK_FILES[net]
            trunk_file = find_weight_file(
                filename,
                url,
                trunk_weights,
                extra_dirs=[Path(torch.hub.get_dir()) / "checkpoints"],
                what=f"LPIPS {net} trunk (torchvision ImageNet weights)",
            )
        # Always build with a random trunk (lpips would otherwise ask torchvision to download it).
        with warnings.catch_warnings():  # torchvision's deprecation notice about lpips' `pretrained=` call
            warnings.simplefilter("ignore", UserWarning)
            self.model = lpips.LPIPS(
                pretrained=pretrained_linear,
                net=net,
                pnet_rand=True,
                verbose=False,
                model_path=str(linear_file) if pretrained_linear else None,
            ).eval()
        if trunk_file is not None:
            self._load_trunk(trunk_file)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.batch_size = batch_size

    def _load_trunk(self, file: Path) -> None:
        state = torch.load(file, map_location="cpu", weights_only=True)
        mapped = {}
        for key in self.model.net.state_dict():
            _slice, index, rest = key.split(".", 2)  # "slice2.3.weight" -> torchvision "features.3.weight"
            source = f"features.{index}.{rest}"
            if source not in state:
                raise ValueError(
                    f"{file} is not a torchvision trunk file for this network: {source} is missing"
                )
            mapped[key] = state[source]
        self.model.net.load_state_dict(mapped)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS of each pair: ``x, y [B, 3, H, W]`` in ``[-1, 1]`` -> ``[B]``."""
        _check_images(x, "x", -1.0, 1.0)
        _check_images(y, "y", -1.0, 1.0)
        if x.shape != y.shape:
            raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        device = next(self.model.parameters()).device
        out = [
            self.model(x[i : i + self.batch_size].to(device), y[i : i + self.batch_size].to(device)).flatten()
            for i in range(0, x.shape[0], self.batch_size)
        ]
        return torch.cat(out) if out else x.new_zeros(0)


class CLIPScore(torch.nn.Module):
    """CLIP score ``100 * max(cos(E_img(image), E_txt(text)), 0)`` per image-text pair.

    Args:
        model_name: an open_clip model name (``ViT-B-32`` ...) or any name registered with
            ``open_clip.add_model_config``.
        pretrained: ``None`` (random init), a local checkpoint file, or an open_clip tag (``"openai"``),
            which must be present as ``$FP_WEIGHTS_DIR/open_clip-<model_name>-<tag>.bin``.
        model, tokenizer: ready-made open_clip model and tokenizer (override ``model_name``/``pretrained``).
        batch_size: pairs per forward pass.
    """

    def __init__(
        self,
        model_name: str = "ViT-B-32",
        pretrained: str | os.PathLike | None = "openai",
        *,
        model: torch.nn.Module | None = None,
        tokenizer: Any = None,
        batch_size: int = 32,
    ) -> None:
        super().__init__()
        open_clip = _import("open_clip", "clip")
        if model is None:
            if model_name not in open_clip.list_models():
                raise ValueError(
                    f"unknown open_clip model {model_name!r}; known: {open_clip.list_models()[:8]}..."
                )
            checkpoint, tag_cfg = self._resolve_checkpoint(open_clip, model_name, pretrained)
            # A tag's own settings (QuickGELU for the OpenAI weights, its normalisation) must be applied by
            # hand, since open_clip only sees a file path here.
            preprocess = {
                k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg
            }
            model = open_clip.create_model(
                model_name,
                pretrained=checkpoint,
                force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
                force_preprocess_cfg=preprocess or None,
                pretrained_image=False,
                pretrained_text=False,
            )
        if not callable(getattr(model, "encode_image", None)) or not callable(
            getattr(model, "encode_text", None)
        ):
            raise ValueError(
                f"model must be an open_clip model with encode_image / encode_text, got {type(model)}"
            )
        self.model = model.eval()
        self.tokenizer = tokenizer if tokenizer is not None else open_clip.get_tokenizer(model_name)
        cfg = open_clip.get_model_preprocess_cfg(self.model)
        size = cfg.get("size", 224)
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        self.register_buffer(
            "mean", torch.tensor(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)).view(1, 3, 1, 1)
        )
        self.register_buffer(
            "std", torch.tensor(cfg.get("std", open_clip.OPENAI_DATASET_STD)).view(1, 3, 1, 1)
        )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size

    @staticmethod
    def _resolve_checkpoint(
        open_clip: Any, model_name: str, pretrained: str | os.PathLike | None
    ) -> tuple[str | None, dict[str, Any]]:
        """Local checkpoint path (or None for random init) and the open_clip config of the tag, if any."""
        if pretrained is None:
            return None, {}
        as_path = Path(pretrained).expanduser()
        if as_path.is_file():
            return str(as_path), {}
        tag = str(pretrained)
        cfg = open_clip.get_pretrained_cfg(model_name, tag)
        if not cfg:
            if os.sep in tag or tag.endswith((".bin", ".pt", ".pth", ".safetensors")):
                raise WeightsNotFoundError(f"CLIP checkpoint file {as_path} does not exist")
            tags = open_clip.list_pretrained_tags_by_model(model_name)
            raise ValueError(
                f"unknown pretrained tag {tag!r} for {model_name}; expected a file path or one of {tags}"
            )
        hub = cfg.get("hf_hub", "")
        if hub:
            repo, hub_file = os.path.split(hub)  # "org/name/" means the default file name
            hub_file = hub_file or "open_clip_pytorch_model.bin"
            source = f"https://huggingface.co/{repo}/resolve/main/{hub_file}"
        else:
            source = cfg.get("url", "(unknown source)")
        filename = f"open_clip-{model_name}-{tag}.bin"
        return str(find_weight_file(filename, source, None, what=f"open_clip {model_name} ({tag})")), dict(
            cfg
        )

    def _preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Resize the shorter side (bicubic), centre-crop, normalise: ``[B, 3, H, W]`` in [0, 1]."""
        th, tw = self.image_size
        h, w = images.shape[-2:]
        scale = max(th / h, tw / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        x = F.interpolate(images, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True)
        top, left = (nh - th) // 2, (nw - tw) // 2
        x = x[..., top : top + th, left : left + tw].clamp(0, 1)
        return (x - self.mean) / self.std

    def forward(self, images: torch.Tensor, texts: Sequence[str]) -> torch.Tensor:
        """CLIP score of each pair: ``images [B, 3, H, W]`` in ``[0, 1]``, ``B`` texts -> ``[B]``."""
        _check_images(images, "images", 0.0, 1.0)
        if isinstance(texts, str) or len(texts) != images.shape[0]:
            raise ValueError(f"texts must be a list of {images.shape[0]} strings (one per image)")
        device = self.mean.device
        scores = []
        with torch.no_grad():
            for i in range(0, images.shape[0], self.batch_size):
                img = self._preprocess(images[i : i + self.batch_size].to(device=device, dtype=torch.float32))
                tok = self.tokenizer(list(texts[i : i + self.batch_size])).to(device)
                e_img = F.normalize(self.model.encode_image(img).float(), dim=-1)
                e_txt = F.normalize(self.model.encode_text(tok).float(), dim=-1)
                scores.append(100 * (e_img * e_txt).sum(dim=-1).clamp_min(0))
        return torch.cat(scores) if scores else images.new_zeros(0)
