"""The embedded CLIP: a small open_clip model trained here on captioned synthetic images, and its zero-shot test.

Offline there is no pretrained CLIP, and a random one makes every QDGS measure meaningless, so the pipeline
trains a small ``open_clip.CLIP`` from a custom config (:class:`EmbeddedCLIPConfig`) on rendered images with
captions (:func:`fp_qdgs.shapes.render.make_clip_training_set` for the shapes; the faces bring their own) and
saves it with :func:`fp_metrics.clip_models.save_clip`, in open_clip's layout; every consumer loads it by path
with :func:`fp_metrics.clip_models.load_clip`.

Training (:func:`train_clip`): symmetric InfoNCE over the batch's image-text similarities
``logits = s * <image_i, text_j>`` with CLIP's learnable temperature ``s = exp(logit_scale)``, clamped to
``<= 100`` after every step as CLIP does. The targets are **soft over identical captions**: image ``i``'s target
is uniform over the texts ``j`` of the batch whose caption equals caption ``i`` (the same in the text->image
direction), so a duplicate caption is never a negative of itself. Captions that differ in wording but fit the
same image (``"a red shape"``, ``"a red triangle"``) are still negatives of each other; since the caption of an
image is drawn at random from its templates, the loss is minimised when ``s * <image, text>`` follows
``log P(text | image content)`` up to a constant, which is what zero-shot prompting needs. The in-batch
retrieval accuracy counts image ``i`` as right when its most similar text has caption ``i``.

AdamW (no weight decay on gains, biases and the temperature, as open_clip does), linear warmup then cosine decay
to 0, gradient clipping, all through :class:`fp_core.training.TrainingHarness`, so a killed run resumes from its
latest checkpoint. Images are preprocessed per batch (:func:`fp_metrics.clip_models.preprocess_images`: the
same resize, crop and OpenAI normalisation as at load time). Captions are tokenised once, up front.

The default config (3.5 M parameters, 3.2 M of them the token embedding; timings and zero-shot accuracies in
``docs/qdgs.md``): a ViT with 64 px input, 8 px patches and 4 layers 64 wide (4 heads), a 2-layer text
transformer 64 wide over 24 tokens, 64-d embeddings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fp_core.logging import LogFn, null_log
from fp_core.sampling import EpochPermutation
from fp_core.seeds import derive_seed
from fp_core.training import HarnessConfig, TrainingHarness
from fp_metrics.clip_models import OPENAI_MEAN, OPENAI_STD, LoadedCLIP, preprocess_images

__all__ = [
    "DEFAULT_TOKENIZER",
    "CLIPTrainConfig",
    "EmbeddedCLIPConfig",
    "ZeroShotEncoder",
    "as_loaded_clip",
    "build_embedded_clip",
    "contrastive_loss",
    "train_clip",
    "zero_shot_accuracy",
    "zero_shot_accuracy_from_embeddings",
]

#: the open_clip model whose bundled BPE tokenizer encodes the captions (no download)
DEFAULT_TOKENIZER = "ViT-B-32"
_VOCAB_SIZE = 49408  # open_clip's SimpleTokenizer


@dataclass(frozen=True)
class EmbeddedCLIPConfig:
    """A small open_clip CLIP: ViT image tower, transformer text tower (``docs/qdgs.md`` for the timing)."""

    image_size: int = 64
    patch_size: int = 8
    vision_width: int = 64
    vision_layers: int = 4
    vision_heads: int = 4
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    context_length: int = 24
    embed_dim: int = 64

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}"
            )
        for width, heads, tower in (
            (self.vision_width, self.vision_heads, "vision"),
            (self.text_width, self.text_heads, "text"),
        ):
            if width % heads:
                raise ValueError(f"{tower}_width {width} is not a multiple of {tower}_heads {heads}")

    def model_cfg(self) -> dict[str, Any]:
        """The open_clip ``model_cfg`` (``embed_dim``, ``vision_cfg``, ``text_cfg``) of this config."""
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {
                "image_size": self.image_size,
                "patch_size": self.patch_size,
                "width": self.vision_width,
                "layers": self.vision_layers,
                "head_width": self.vision_width // self.vision_heads,
            },
            "text_cfg": {
                "context_length": self.context_length,
                "vocab_size": _VOCAB_SIZE,
                "width": self.text_width,
                "heads": self.text_heads,
                "layers": self.text_layers,
            },
        }


def build_embedded_clip(config: EmbeddedCLIPConfig, seed: int = 0) -> torch.nn.Module:
    """A freshly initialised ``open_clip.CLIP`` of ``config`` (initialised from ``(seed, "embedded-clip")``).

    The model carries its ``model_cfg`` as ``fp_model_cfg`` (what :func:`fp_metrics.clip_models.save_clip`
    writes). The global torch RNG is left as it was.
    """
    import open_clip

    cfg = config.model_cfg()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "embedded-clip", "init"))
        model = open_clip.CLIP(**cfg)
    model.fp_model_cfg = cfg
    return model


@dataclass(frozen=True)
class CLIPTrainConfig:
    """How :func:`train_clip` trains (the harness settings keep their conventional names)."""

    epochs: int
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 20
    seed: int = 0
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    mixed_precision: str = "no"
    cpu: bool = False
    max_grad_norm: float | None = 1.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError(
                f"epochs must be >= 1 and batch_size >= 2, got {self.epochs} and {self.batch_size}"
            )
        if not self.lr > 0 or self.weight_decay < 0 or self.warmup_steps < 0:
            raise ValueError(
                f"lr must be > 0, weight_decay and warmup_steps >= 0; got {self.lr}, {self.weight_decay}, "
                f"{self.warmup_steps}"
            )


def contrastive_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, caption_ids: torch.Tensor, scale: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE with soft targets over identical captions, and the in-batch retrieval accuracy.

    ``image_emb, text_emb [B, D]`` (unit rows), ``caption_ids [B]`` (equal ids = identical captions), ``scale``
    the temperature ``s``. Returns ``(loss [], accuracy [])``: the mean of the image->text and text->image
    cross-entropies against targets uniform over identical captions, and the share of images whose most
    similar text has their caption.
    """
    logits = scale * image_emb @ text_emb.T
    same = caption_ids[:, None] == caption_ids[None, :]
    targets = same.to(logits.dtype) / same.sum(dim=1, keepdim=True)
    loss_images = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    loss_texts = -(targets * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()  # `same` is symmetric
    hits = same.gather(1, logits.argmax(dim=1, keepdim=True)).float().mean()
    return (loss_images + loss_texts) / 2, hits.detach()


def _optimizer(model: torch.nn.Module, config: CLIPTrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        exempt = p.ndim < 2 or "ln" in name or "bias" in name or "logit_scale" in name
        (no_decay if exempt else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def _schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _check_inputs(images: torch.Tensor, captions: Sequence[str]) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor [N, 3, H, W] in [0, 1], got {shape}")
    if isinstance(captions, str) or len(captions) != images.shape[0]:
        raise ValueError(f"captions must be a list of {images.shape[0]} strings (one per image)")


def _image_size(model: torch.nn.Module) -> int:
    cfg = getattr(model, "fp_model_cfg", None)
    if cfg is not None:
        return int(cfg["vision_cfg"]["image_size"])
    size = model.visual.image_size
    return int(size if isinstance(size, int) else size[0])


def _forward(model: torch.nn.Module, images: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = model(images, tokens)
    if isinstance(out, dict):
        return out["image_features"], out["text_features"], out["logit_scale"]
    return out[0], out[1], out[2]


def _loader(
    images: torch.Tensor, captions: Sequence[str], tokenizer: Callable, config: CLIPTrainConfig
) -> DataLoader:
    tokens = tokenizer(list(captions))
    ids: dict[str, int] = {}
    caption_ids = torch.as_tensor([ids.setdefault(c, len(ids)) for c in captions], dtype=torch.int64)
    dataset = TensorDataset(images, tokens, caption_ids)
    if len(dataset) < config.batch_size:
        raise ValueError(f"{len(dataset)} images are fewer than one batch of {config.batch_size}")
    sampler = EpochPermutation(len(dataset), config.seed, "clip", "order")
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=True)


def train_clip(
    model: torch.nn.Module,
    images: torch.Tensor,
    captions: Sequence[str],
    config: CLIPTrainConfig,
    *,
    checkpoint_dir: str | os.PathLike[str],
    tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
    log: LogFn = null_log,
    tracking_id: str | None = None,
    progress: bool = True,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.nn.Module:
    """Train ``model`` (an open_clip CLIP) on ``images [N, 3, H, W]`` in ``[0, 1]`` and their ``captions``.

    See the module docstring for the loss, optimiser and schedule. ``tokenizer`` defaults to open_clip's
    ``ViT-B-32`` tokenizer at the model's context length; ``augment(images [B, 3, H, W]) -> [B, 3, H', W']``
    runs on each batch before preprocessing (its randomness should come from the global torch RNG, which the
    checkpoints restore). Logs ``train/loss``, ``train/logit_scale`` (the temperature ``s``),
    ``train/batch_accuracy`` and ``train/lr`` every step. Checkpoints go to ``checkpoint_dir``, and the newest
    one there is resumed from. Returns the trained model (unwrapped, in eval mode).
    """
    import open_clip

    _check_inputs(images, captions)
    if tokenizer is None:
        tokenizer = open_clip.get_tokenizer(DEFAULT_TOKENIZER, context_length=int(model.context_length))
    loader = _loader(images, captions, tokenizer, config)
    run_config = {
        "train": asdict(config),
        "model_cfg": getattr(model, "fp_model_cfg", None),
        "num_images": int(images.shape[0]),
        "augment": augment is not None,
    }
    harness = TrainingHarness(
        HarnessConfig.from_settings(config, checkpoint_dir, progress=progress),
        run_config=run_config,
        log=log,
        tracking_id=tracking_id,
    )
    optimizer = _optimizer(model, config)
    scheduler = _schedule(optimizer, config.warmup_steps, config.epochs * len(loader))
    model, optimizer, loader, scheduler = harness.prepare(model, optimizer, loader, scheduler)
    harness.resume()
    size, params = _image_size(harness.unwrap(model)), [p for p in model.parameters() if p.requires_grad]
    for epoch in harness.epochs(config.epochs):
        model.train()
        for batch in harness.batches(loader, epoch):
            x, tokens, caption_ids = batch
            if augment is not None:
                x = augment(x)
            with harness.autocast():
                image_emb, text_emb, scale = _forward(model, preprocess_images(x, size), tokens)
                loss, accuracy = contrastive_loss(
                    image_emb.float(), text_emb.float(), caption_ids, scale.float()
                )
            harness.check_finite({"loss": loss}, batch)
            harness.backward(loss)
            harness.step(optimizer, params, batch, scheduler=scheduler)
            with torch.no_grad():
                harness.unwrap(model).logit_scale.clamp_(0, math.log(100))
            harness.log_step(
                {
                    "train/loss": float(loss.detach()),
                    "train/logit_scale": float(scale.detach()),
                    "train/batch_accuracy": float(accuracy),
                    "train/lr": float(optimizer.param_groups[0]["lr"]),
                }
            )
    return harness.unwrap(model).eval()


class ZeroShotEncoder(Protocol):
    """What :func:`zero_shot_accuracy` needs: :class:`~fp_metrics.clip_models.LoadedCLIP`'s two encoders."""

    def encode_images(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor: ...

    def encode_texts(self, prompts: Sequence[str]) -> torch.Tensor: ...


def as_loaded_clip(
    model: torch.nn.Module, tokenizer: Callable[[list[str]], torch.Tensor] | None = None
) -> LoadedCLIP:
    """Wrap an open_clip model (e.g. one :func:`train_clip` returned) as a :class:`LoadedCLIP`, not frozen.

    Preprocessing: the model's input size and OpenAI's mean / std (what :func:`train_clip` trains with);
    ``tokenizer`` defaults to open_clip's ``ViT-B-32`` one at the model's context length.
    """
    if tokenizer is None:
        import open_clip

        tokenizer = open_clip.get_tokenizer(DEFAULT_TOKENIZER, context_length=int(model.context_length))
    return LoadedCLIP(model, tokenizer, _image_size(model), OPENAI_MEAN, OPENAI_STD, name="in-memory")


def zero_shot_accuracy_from_embeddings(
    image_emb: torch.Tensor, prompt_emb: torch.Tensor, labels: torch.Tensor
) -> float:
    """Share of images whose most cosine-similar prompt is their label's: ``[N, D], [2, D], [N] -> float``.

    A tie (equal similarity to both prompts) counts as prompt 0.
    """
    if image_emb.dim() != 2 or prompt_emb.shape != (2, image_emb.shape[1]):
        raise ValueError(
            f"expected image embeddings [N, D] and two prompt embeddings [2, D], got {tuple(image_emb.shape)} "
            f"and {tuple(prompt_emb.shape)}"
        )
    labels = torch.as_tensor(labels).reshape(-1).to(image_emb.device)
    if labels.shape[0] != image_emb.shape[0] or not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError(
            f"labels must be {image_emb.shape[0]} values in {{0, 1}}, got {labels.tolist()[:8]}..."
        )
    sims = F.normalize(image_emb.float(), dim=1) @ F.normalize(prompt_emb.float(), dim=1).T
    predicted = (sims[:, 1] > sims[:, 0]).long()
    return float((predicted == labels.long()).float().mean())


@torch.no_grad()
def zero_shot_accuracy(
    clip: ZeroShotEncoder | torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    prompts: tuple[str, str],
    batch_size: int = 256,
    *,
    tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
) -> float:
    """Zero-shot accuracy on ``images [N, 3, H, W]`` in ``[0, 1]`` with ``labels [N]`` in ``{0, 1}``.

    Label 0 means ``prompts[0]`` is right. ``clip`` is a :class:`LoadedCLIP` (or anything with its two
    encoders) or an open_clip model (wrapped by :func:`as_loaded_clip` with ``tokenizer``; evaluated in eval
    mode, its training mode restored after).
    """
    if len(prompts) != 2:
        raise ValueError(f"prompts must be a pair of strings, got {prompts!r}")
    if isinstance(clip, torch.nn.Module):
        was_training = clip.training
        clip.eval()
        try:
            return zero_shot_accuracy(as_loaded_clip(clip, tokenizer), images, labels, prompts, batch_size)
        finally:
            clip.train(was_training)
    image_emb = clip.encode_images(images, batch_size=batch_size)
    return zero_shot_accuracy_from_embeddings(image_emb, clip.encode_texts(list(prompts)), labels)
