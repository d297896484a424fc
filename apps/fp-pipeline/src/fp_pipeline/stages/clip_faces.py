"""``clip-faces``: the embedded CLIP trained on the faces of ``data/`` and captions of what was drawn.

The train split's images (resized to the CLIP's input size) are paired with the captions of
:mod:`fp_pipeline.stages.face_captions` (several per image, each a training pair), built from the dataset's
annotation files: the 40-attribute file and, on the synthetic data, ``fp_skin_tone.txt``. The model is written
to ``outputs/clip-faces`` (:func:`fp_metrics.clip_models.save_clip`); its zero-shot accuracy on every QDGS
faces prompt pair, on the **test split's** images (never trained on), goes to
``outputs/clip-faces-zero-shot.json`` (DVC metrics) with the chance level (0.5 for a balanced pair; the
majority share of each pair is written too, since the test labels are not balanced: 7:1 light:dark).
Pix2PixHD's FD (:mod:`fp_pipeline.stages.gan`) uses this CLIP's image features; QDGS faces scores with it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import load_params, section
from fp_pipeline.stages.face_captions import FACE_PROMPT_PAIRS, captions_for, face_traits, trait_labels
from fp_pipeline.stages.gan_common import CLIP_FACES_DIR, ZERO_SHOT_FILE, checkpoint_dir, torch_threads
from fp_pipeline.tracking import stage_run

__all__ = ["clip_faces_stage", "face_set", "zero_shot_report"]


def face_set(
    root: Path, split: str, image_size: int, label_order: str
) -> tuple[Any, list[dict[str, int | None]], list[Any]]:
    """``(images [N, 3, S, S] in [0, 1], labels per image, traits per image)`` of ``split`` of ``root``."""
    import numpy as np
    import torch
    from PIL import Image

    from fp_parsing.data import CelebAMaskHQ

    ds = CelebAMaskHQ(root, split=split, label_order=label_order)
    names = list(ds.attribute_names)
    groups = ds.skin_tone_groups
    images, traits = [], []
    for k, index in enumerate(ds.indices):
        with Image.open(root / "CelebA-HQ-img" / f"{int(index)}.jpg") as image:
            pixels = image.convert("RGB").resize((image_size, image_size), Image.Resampling.BICUBIC)
            images.append(torch.from_numpy(np.asarray(pixels).copy()).permute(2, 0, 1))
        attributes = dict(zip(names, (int(v) for v in ds.attributes[k])))
        tone = int(ds.skin_tones[k])
        traits.append(face_traits(attributes, groups[tone] if groups is not None and tone >= 0 else None))
    stacked = torch.stack(images).float() / 255.0 if images else torch.zeros(0, 3, image_size, image_size)
    return stacked, [trait_labels(t) for t in traits], traits


def zero_shot_report(clip: Any, images: Any, labels: list[dict[str, int | None]]) -> dict[str, Any]:
    """Per prompt pair: accuracy, images used, share of label 1 and the majority baseline; a pair whose
    labels are unknown (no skin-tone file) or all equal is reported as unavailable with the reason."""
    import torch

    from fp_qdgs.embedded_clip import zero_shot_accuracy_from_embeddings

    image_emb = clip.encode_images(images)
    out: dict[str, Any] = {}
    for pair, prompts in FACE_PROMPT_PAIRS.items():
        keep = [i for i, row in enumerate(labels) if row[pair] is not None]
        y = torch.tensor([labels[i][pair] for i in keep], dtype=torch.long)
        if not keep or int(y.min()) == int(y.max()):
            reason = (
                "no labels (the dataset has no skin-tone file)"
                if not keep
                else "only one class in the test split"
            )
            out[pair] = {
                "accuracy": None,
                "unavailable": reason,
                "images": len(keep),
                "prompts": list(prompts),
            }
            continue
        accuracy = zero_shot_accuracy_from_embeddings(image_emb[keep], clip.encode_texts(list(prompts)), y)
        share = float(y.float().mean())
        balanced = 0.5 * (
            zero_shot_accuracy_from_embeddings(
                image_emb[keep][y == 0], clip.encode_texts(list(prompts)), y[y == 0]
            )
            + zero_shot_accuracy_from_embeddings(
                image_emb[keep][y == 1], clip.encode_texts(list(prompts)), y[y == 1]
            )
        )
        out[pair] = {
            "accuracy": accuracy,
            "balanced_accuracy": balanced,
            "images": len(keep),
            "share_label_1": share,
            "majority": max(share, 1 - share),
            "prompts": list(prompts),
        }
    return out


def _training_pairs(images: Any, traits: list[Any], seed: int) -> tuple[Any, list[str]]:
    """Each image repeated once per caption: ``(images [M, 3, S, S], captions [M])``."""
    import torch

    rows, captions = [], []
    for i, t in enumerate(traits):
        for caption in captions_for(t, seed=seed, index=i):
            rows.append(i)
            captions.append(caption)
    return images[torch.tensor(rows, dtype=torch.long)], captions


def _verdicts(report: dict[str, Any], margin: float) -> dict[str, str]:
    """``"above chance"`` when the balanced accuracy is at least ``0.5 + margin``, ``"below chance"`` at most
    ``0.5 - margin``, else ``"near chance"``."""
    out = {}
    for pair, row in report.items():
        if row.get("accuracy") is None:
            out[pair] = f"unavailable: {row['unavailable']}"
        else:
            value = row["balanced_accuracy"]
            out[pair] = (
                "above chance"
                if value >= 0.5 + margin
                else "below chance (the prompts are inverted on these images)"
                if value <= 0.5 - margin
                else "near chance"
            )
    return out


def clip_faces_stage(*, params_path: Path, progress: bool = True) -> Path:
    """Train the embedded face CLIP on the train split and write its zero-shot accuracy on the test split."""
    from fp_core.atomic import write_json
    from fp_metrics.clip_models import load_clip, save_clip
    from fp_qdgs.embedded_clip import CLIPTrainConfig, EmbeddedCLIPConfig, build_embedded_clip, train_clip

    params = load_params(params_path)
    torch_threads(params, "clip_faces")
    cfg = section(params, "clip_faces")
    seed = int(cfg["seed"])
    root, order = Path(section(params, "data.root")), str(section(params, "data.label_order"))
    model_cfg = EmbeddedCLIPConfig(**(cfg.get("model") or {}))
    train_cfg = CLIPTrainConfig(seed=seed, **(cfg.get("train") or {}))
    images, _, traits = face_set(root, "train", model_cfg.image_size, order)
    pair_images, captions = _training_pairs(images, traits, seed)
    with stage_run("clip-faces", params={"clip_faces": cfg}, seed=seed, dataset=root) as run:
        model = train_clip(
            build_embedded_clip(model_cfg, seed=seed),
            pair_images,
            captions,
            train_cfg,
            checkpoint_dir=checkpoint_dir("clip-faces"),
            log=run,
            tracking_id=run.run_id,
            progress=progress,
        )
        save_clip(
            model,
            CLIP_FACES_DIR,
            context_length=model_cfg.context_length,
            extra={
                "trained_on": f"{root} train split + face captions",
                "images": len(images),
                "pairs": len(captions),
                "seed": seed,
            },
        )
        shutil.rmtree(checkpoint_dir("clip-faces"), ignore_errors=True)  # saved: the next run trains afresh
        clip = load_clip(CLIP_FACES_DIR)
        test_images, test_labels, _ = face_set(root, "test", model_cfg.image_size, order)
        report = zero_shot_report(clip, test_images, test_labels)
        verdicts = _verdicts(report, float(cfg.get("chance_margin", 0.1)))
        flat = {f"zero_shot/{p}": r["accuracy"] for p, r in report.items() if r.get("accuracy") is not None}
        flat |= {
            f"zero_shot/{p}_balanced": r["balanced_accuracy"]
            for p, r in report.items()
            if r.get("accuracy") is not None
        }
        run(flat, 0)
        write_json(
            ZERO_SHOT_FILE,
            {
                "clip": f"embedded ({CLIP_FACES_DIR})",
                "chance": 0.5,
                "split": "test",
                "pairs": report,
                "verdict": verdicts,
                **flat,
                "note": "accuracy: share of test images whose closer prompt is their label's; balanced_accuracy: the "
                "mean of the two classes' accuracies (chance 0.5 even for unbalanced labels); "
                "'near chance' means balanced accuracy within chance_margin of 0.5",
            },
        )
        run.log_artifact(ZERO_SHOT_FILE)
    typer.echo(f"clip-faces: zero-shot { ({p: round(v, 3) for p, v in flat.items()}) }; {verdicts}")
    return CLIP_FACES_DIR
