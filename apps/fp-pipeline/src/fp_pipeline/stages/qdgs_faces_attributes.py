"""``qdgs-faces-attributes``: small classifiers of the four attribute bins, for the proportions of Table 1.

The paper estimates the share of each attribute bin in the Rand and QD sets with attribute classifiers; here
they are trained on the renderer's ground truth: the four trait labels of
:func:`fp_pipeline.stages.face_captions.trait_labels` (label 1: dark skin, feminine, long hair, old, i.e. the
second prompt of each ``FACE_PROMPT_PAIRS`` entry) of the train split of ``data.root`` at the generator's
image size. With ``attributes.on: reconstructions`` (the default) they are trained and tested on the face VAE's
reconstructions ``decode(mean(encode(x)))`` of those faces, which keep the ground-truth labels and look like the
generator's samples (blurred): classifiers trained on the sharp renders called nearly every VAE sample "old"
(measured, toy scale); ``on: images`` trains on the renders. One small CNN with four logits (two stride-2 convolutions, global average pooling, a linear
layer), binary cross-entropy per attribute with ``pos_weight = negatives / positives`` (so the 1-in-8 dark
faces count as much as the light ones; unknown labels are masked out), Adam. Held-out accuracy and balanced
accuracy per attribute on the val + test splits go to ``accuracy.json`` (the report prints them beside the
proportions: a proportion is only as good as its classifier).

Files: ``outputs/qdgs-faces-attributes/{model.safetensors, manifest.json, accuracy.json}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import section
from fp_pipeline.stages.qdgs_faces_common import (
    ATTRIBUTES_DIR,
    MEASURE_NAMES,
    VAE_DIR,
    faces_params,
    labelled_faces,
)
from fp_pipeline.tracking import stage_run

__all__ = ["ATTRIBUTES_KIND", "AttributeNet", "attributes_stage", "load_attribute_net", "predict_attributes"]

ATTRIBUTES_KIND = "qdgs-face-attributes"
WEIGHTS_FILE = "model.safetensors"


def _net(width: int) -> Any:
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(2 * width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, len(MEASURE_NAMES)),
    )


class AttributeNet:
    """``images [B, 3, S, S]`` in ``[0, 1]`` -> four logits ``[B, 4]`` (order of ``MEASURE_NAMES``)."""

    def __init__(self, width: int = 16, image_size: int = 32) -> None:
        self.width, self.image_size = int(width), int(image_size)
        self.module = _net(self.width)

    def logits(self, images: Any) -> Any:
        import torch.nn.functional as F

        if images.shape[-1] != self.image_size:
            images = F.interpolate(images, size=(self.image_size, self.image_size), mode="bilinear")
        return self.module(images * 2 - 1)


def _loss(logits: Any, labels: Any, pos_weight: Any) -> Any:
    import torch.nn.functional as F

    known = labels >= 0
    per = F.binary_cross_entropy_with_logits(
        logits, labels.clamp_min(0).float(), pos_weight=pos_weight, reduction="none"
    )
    return (per * known).sum() / known.sum().clamp_min(1)


def train_attribute_net(
    images: Any, labels: Any, cfg: dict[str, Any], seed: int
) -> tuple[AttributeNet, list[float]]:
    """Train on ``images [N, 3, S, S]``, ``labels [N, 4]`` (-1 unknown); return the net and epoch losses."""
    import torch

    from fp_core.seeds import torch_generator

    torch.manual_seed(seed)
    net = AttributeNet(int(cfg["width"]), images.shape[-1])
    known = (labels >= 0).float()
    pos = ((labels == 1).float() * known).sum(0)
    neg = ((labels == 0).float() * known).sum(0)
    pos_weight = (neg / pos.clamp_min(1)).clamp(0.1, 50.0)
    optimizer = torch.optim.Adam(net.module.parameters(), lr=float(cfg["lr"]))
    batch, losses = int(cfg["batch_size"]), []
    for epoch in range(int(cfg["epochs"])):
        order = torch.randperm(len(images), generator=torch_generator(seed, "attributes", epoch))
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            x = images[idx]
            x = torch.where(
                torch.rand(len(x), 1, 1, 1) < 0.5, x.flip(-1), x
            )  # the attributes are mirror-free
            loss = _loss(net.logits(x), labels[idx], pos_weight)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(images))
    net.module.eval()
    return net, losses


def predict_attributes(net: AttributeNet, images: Any, batch: int = 256) -> Any:
    """Hard labels ``[N, 4]`` int64 (logit > 0) of ``images [N, 3, S, S]``."""
    import torch

    with torch.no_grad():
        parts = [net.logits(images[i : i + batch]) > 0 for i in range(0, len(images), batch)]
    return torch.cat(parts).long() if parts else torch.zeros(0, len(MEASURE_NAMES), dtype=torch.long)


def accuracy_table(predicted: Any, labels: Any) -> dict[str, dict[str, float | None]]:
    """Per attribute: ``accuracy``, ``balanced_accuracy`` (mean of the two class recalls; None when a class is
    absent), ``images`` and ``share_label_1`` over the known labels."""
    out = {}
    for j, name in enumerate(MEASURE_NAMES):
        known = labels[:, j] >= 0
        y, p = labels[known, j], predicted[known, j]
        recalls = [float((p[y == c] == c).float().mean()) for c in (0, 1) if bool((y == c).any())]
        out[name] = {
            "accuracy": float((p == y).float().mean()) if len(y) else None,
            "balanced_accuracy": sum(recalls) / 2 if len(recalls) == 2 else None,
            "images": float(len(y)),
            "share_label_1": float(y.float().mean()) if len(y) else None,
        }
    return out


def save_attribute_net(net: AttributeNet, directory: Path, extra: dict[str, Any]) -> Path:
    from safetensors.torch import save_file

    from fp_core.atomic import atomic_output_dir
    from fp_core.manifest import write_manifest

    state = {k: v.detach().cpu().contiguous() for k, v in net.module.state_dict().items()}
    with atomic_output_dir(directory) as tmp:
        save_file(state, str(tmp / WEIGHTS_FILE))
        write_manifest(
            tmp,
            ATTRIBUTES_KIND,
            version=1,
            weights=WEIGHTS_FILE,
            width=net.width,
            image_size=net.image_size,
            attributes=list(MEASURE_NAMES),
            extra=extra,
        )
    return directory


def load_attribute_net(directory: Path = ATTRIBUTES_DIR) -> AttributeNet:
    """The classifiers :func:`attributes_stage` wrote (``ManifestError`` naming the file otherwise)."""
    from safetensors.torch import load_file

    from fp_core.manifest import read_manifest

    manifest = read_manifest(
        directory, ATTRIBUTES_KIND, required=("weights", "width", "image_size"), max_version=1
    )
    net = AttributeNet(int(manifest["width"]), int(manifest["image_size"]))
    net.module.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
    net.module.eval()
    return net


def reconstruct(vae: Any, images: Any, batch: int = 128) -> Any:
    """``decode(mean of encode(images))`` ``[N, 3, S, S]``: the faces as the VAE generator draws them."""
    import torch

    with torch.no_grad():
        return torch.cat(
            [vae.decode(vae.encode(images[i : i + batch])[0]) for i in range(0, len(images), batch)]
        )


def _stack_labels(faces: dict[str, Any]) -> Any:
    import torch

    return torch.stack([faces["labels"][name] for name in MEASURE_NAMES], dim=1)


def attributes_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Train the attribute classifiers on the train split; write them and their held-out accuracy."""
    from fp_core.atomic import write_json

    params, faces_cfg = faces_params(params_path)
    cfg = section(faces_cfg, "attributes", source="qdgs.faces")
    seed = int(faces_cfg["seed"])
    root, order = Path(section(params, "data.root")), str(section(params, "data.label_order"))
    size = int(section(faces_cfg, "generator.image_size", source="qdgs.faces"))
    train = labelled_faces(root, "train", size, order)
    held = labelled_faces(root, ("val", "test"), size, order)
    if cfg.get("on", "reconstructions") == "reconstructions":
        from fp_qdgs.faces import load_face_vae

        vae = load_face_vae(VAE_DIR)
        train["images"], held["images"] = reconstruct(vae, train["images"]), reconstruct(vae, held["images"])
    with stage_run(
        "qdgs-faces-attributes", params={"qdgs.faces.attributes": cfg}, seed=seed, dataset=root
    ) as run:
        net, losses = train_attribute_net(train["images"], _stack_labels(train), cfg, seed)
        for epoch, loss in enumerate(losses):
            run({"attributes/loss": loss}, epoch)
        table = accuracy_table(predict_attributes(net, held["images"]), _stack_labels(held))
        run({f"heldout/{n}/{k}": v for n, row in table.items() for k, v in row.items() if v is not None}, 0)
        save_attribute_net(
            net, ATTRIBUTES_DIR, {"train_images": len(train["images"]), "final_loss": losses[-1]}
        )
        write_json(
            ATTRIBUTES_DIR / "accuracy.json",
            {
                "split": "val+test",
                "on": cfg.get("on", "reconstructions"),
                "label_1": ["dark", "feminine", "long hair", "old"],
                "attributes": table,
            },
        )
    typer.echo(
        "qdgs-faces-attributes: held-out balanced accuracy "
        + ", ".join(f"{n} {r['balanced_accuracy']}" for n, r in table.items())
    )
    return ATTRIBUTES_DIR
