"""``render_dataset``: the whole synthetic dataset, written atomically in the CelebAMask-HQ layout."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fp_core.atomic import atomic_output_dir, write_json
from fp_pipeline.synth.config import SynthConfig
from fp_pipeline.synth.layout import ATTRIBUTE_NAMES, MANIFEST_FILE, PARTS
from fp_pipeline.synth.population import plan_dataset, sample_image_spec
from fp_pipeline.synth.render import render_face
from fp_pipeline.synth.writer import (
    write_attribute_file,
    write_identity_file,
    write_image,
    write_mapping_file,
    write_masks,
    write_partition_file,
    write_skin_tone_file,
)

__all__ = ["render_dataset"]

SPLITS = ("train", "val", "test")


def render_dataset(
    config: SynthConfig, out_dir: str | os.PathLike[str], *, progress: bool = True
) -> dict[str, Any]:
    """Render every image of ``config`` into ``out_dir`` (replaced as a whole, atomically) and return the
    manifest, which is also written to ``out_dir/fp_synth_manifest.json``.

    A failure leaves a previous ``out_dir`` untouched. The same config gives byte-identical files.
    """
    if not isinstance(config, SynthConfig):
        raise TypeError(f"render_dataset needs a SynthConfig, got {type(config).__name__}")
    plan = plan_dataset(config)
    identities = plan.identities
    attribute_rows: list[list[int]] = []
    part_counts = dict.fromkeys(PARTS, 0)
    with atomic_output_dir(Path(out_dir)) as root:
        for index in tqdm(range(config.num_images), desc="synth", unit="img", disable=not progress):
            identity = identities[plan.image_identity[index]]
            face = render_face(config, identity, sample_image_spec(config, index, identity))
            write_image(root, index, face.image, config.jpeg_quality)
            write_masks(root, index, face.masks)
            attribute_rows.append(face.attributes)
            for part in face.masks:
                part_counts[part] += 1
        image_identities = [identities[k] for k in plan.image_identity]
        splits = [plan.split_of_image(i) for i in range(config.num_images)]
        write_attribute_file(root, attribute_rows)
        write_mapping_file(root, plan.orig_idx)
        write_partition_file(root, plan.orig_idx, splits)
        write_identity_file(root, plan.orig_idx, [ident.celeba_id for ident in image_identities])
        write_skin_tone_file(
            root,
            [ident.tone for ident in image_identities],
            [ident.group for ident in image_identities],
            config.group_names,
        )
        manifest = _manifest(
            config, plan.identity_split, splits, image_identities, attribute_rows, part_counts
        )
        write_json(root / MANIFEST_FILE, manifest)
    return manifest


def _manifest(
    config: SynthConfig,
    identity_split: tuple[str, ...],
    splits: list[str],
    image_identities: list,
    attribute_rows: list[list[int]],
    part_counts: dict[str, int],
) -> dict[str, Any]:
    names = config.group_names
    tone_counts = dict.fromkeys(names, 0)
    for identity in image_identities:
        tone_counts[names[identity.group]] += 1
    counts: dict[str, Any] = {
        "total": config.num_images,
        **{split: splits.count(split) for split in SPLITS},
        "identities": config.num_identities,
        "skin_tone": tone_counts,
        "attributes": {
            name: sum(row[k] == 1 for row in attribute_rows) for k, name in enumerate(ATTRIBUTE_NAMES)
        },
        "parts": part_counts,
    }
    return {
        "format": "CelebAMask-HQ",
        "generator": "fp_pipeline.synth",
        "seed": config.seed,
        "image_size": config.image_size,
        "config": config.to_dict(),
        "skin_tone_groups": names,
        "identities_per_split": {split: identity_split.count(split) for split in SPLITS},
        "label_convention": "l_* parts lie on the image's left half; the skin mask continues under the "
        "nose, eyes, brows, glasses, mouth and lips inside the face outline",
        "counts": counts,
    }
