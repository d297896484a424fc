"""Synthetic face-recognition sets from the face renderer: a skewed training set and disjoint test sets.

``render_recognition_sets(RecognitionSynthConfig.from_dict(params["recognition"]["synth"]), out_dir)``
writes, atomically::

    <out>/train/<identity>/<n>.jpg                     image folder (ImageFolderDataset)
    <out>/train_rec/train.rec  train.idx  property     the same images in insightface's RecordIO layout
    <out>/train_balanced/, train_balanced_rec/         with ``balanced_train``: the groups in equal shares
    <out>/rfw/test/data/<Group>/<name>/<name>_<idx:04d>.jpg
    <out>/rfw/test/txts/<Group>/<Group>_pairs.txt      RFW's layout, one group per skin-tone group
    <out>/bins/<set>.bin                               insightface's verification pickles (write_bin)
    <out>/identities.csv                               every identity: name, role, group, tone
    <out>/manifest.json                                settings and counts

**Identities.** Each identity is the renderer's person (``fp_pipeline.synth.population.sample_identity``:
face shape, skin tone, hair, eyes, nose, mouth ...) and each image one shot of it
(``sample_image_spec``: pose, expression, lighting, glasses, hat, jewellery, clothes, background, blur),
drawn by ``render_face`` at ``image_size`` with the head centred (aligned by construction). Training
identities get the renderer's skin-tone groups in their weights (default light : dark = 7 : 1, allotted by
largest remainder); the RFW-like set has ``eval_identities_per_group`` identities in *every* group
(balanced, as RFW); each ``.bin`` set has its own pool with the training mix. Identity indices are
consecutive and never reused, so the training, RFW and ``.bin`` identities are disjoint, and every image has
its own index (its own random streams).

**Pairs.** ``pairs`` per RFW group and ``bin_pairs`` per ``.bin`` set, in 10 folds; within a fold the first
half are genuine (two different images of one identity) and the rest impostor (two identities), as the
RFW and LFW pair lists are ordered. Everything is deterministic in ``seed``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from fp_core.atomic import atomic_output_dir, write_json
from fp_pipeline.synth.config import SynthConfig, SynthConfigError
from fp_pipeline.synth.population import Identity, allot_groups, rng_for, sample_identity, sample_image_spec
from fp_pipeline.synth.render import render_face

__all__ = [
    "MANIFEST",
    "RecognitionSynthConfig",
    "pair_plan",
    "render_recognition_sets",
]

MANIFEST = "manifest.json"
#: Random streams of this module (the renderer's own use 1-4).
STREAM_ROLES, STREAM_PAIRS = 11, 12
_N_FOLDS = 10


def _default_bin_sets() -> dict[str, dict[str, Any]]:
    return {
        "lfw": {},
        "cfp_fp": {"max_yaw": 0.2},
        "agedb_30": {"young_fraction": 0.4},
        "calfw": {"max_rotation_deg": 20.0},
        "cplfw": {"max_yaw": 0.2, "max_rotation_deg": 20.0},
    }


@dataclass(frozen=True)
class RecognitionSynthConfig:
    """The ``recognition.synth`` section of params.yaml.

    Attributes:
        seed: every random choice. image_size: side of the images (>= 32). supersample: the renderer's.
        jpeg_quality: of every stored image.
        train_identities, train_images_per_identity: the training set (identities in the renderer's
            skin-tone weights).
        eval_identities_per_group, eval_images_per_identity, pairs: the RFW-like set, per group.
        bin_identities, bin_images_per_identity, bin_pairs: each ``.bin`` set's pool and pair count.
        bin_sets: ``{name: renderer overrides}``, one ``.bin`` per name (e.g. ``cfp_fp: {max_yaw: 0.2}``
            for larger yaw, ``agedb_30: {young_fraction: 0.4}`` for older people); the overrides (keys of
            ``SynthConfig``) apply to that set's identities and shots.
        renderer: ``SynthConfig`` overrides for everything (e.g. ``skin_tone_groups``).
        balanced_train: also render ``train_balanced/`` and ``train_balanced_rec/``, a training set of the same
            size with the skin-tone groups in equal shares (the paper's BUPT-BalancedFace against the skewed
            CASIA-WebFace role), from new identities rendered after every other set, so the skewed sets are
            the same with or without it; ``recognition.data.train`` picks which one the runs train on.
    """

    seed: int = 0
    image_size: int = 32
    supersample: int = 2
    jpeg_quality: int = 95
    train_identities: int = 300
    train_images_per_identity: int = 8
    eval_identities_per_group: int = 50
    eval_images_per_identity: int = 4
    pairs: int = 600
    bin_identities: int = 60
    bin_images_per_identity: int = 4
    bin_pairs: int = 300
    bin_sets: dict[str, dict[str, Any]] = field(default_factory=_default_bin_sets)
    renderer: dict[str, Any] = field(default_factory=dict)
    balanced_train: bool = False

    def __post_init__(self) -> None:
        for name in ("train_identities", "eval_identities_per_group", "bin_identities"):
            if int(getattr(self, name)) < 2:
                raise SynthConfigError(
                    f"recognition.synth.{name}: need at least 2, got {getattr(self, name)}"
                )
        for name in ("train_images_per_identity", "eval_images_per_identity", "bin_images_per_identity"):
            if int(getattr(self, name)) < 2:
                raise SynthConfigError(
                    f"recognition.synth.{name}: genuine pairs need at least 2 images, got {getattr(self, name)}"
                )
        for name in ("pairs", "bin_pairs"):
            if int(getattr(self, name)) < 2 * _N_FOLDS:
                raise SynthConfigError(
                    f"recognition.synth.{name}: need at least {2 * _N_FOLDS} (10 folds), got {getattr(self, name)}"
                )
        for name in self.bin_sets:
            if not isinstance(name, str) or not name or "/" in name:
                raise SynthConfigError(f"recognition.synth.bin_sets: bad set name {name!r}")
        self.synth_config()  # the renderer validates its own settings

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RecognitionSynthConfig:
        """Build from params (missing keys take defaults; unknown keys fail, naming the key)."""
        if data is None:
            return cls()
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise SynthConfigError(
                f"recognition.synth: unknown key {unknown[0]!r} (known: {', '.join(known)})"
            )
        values = dict(data)
        if values.get("bin_sets") is not None:
            values["bin_sets"] = {str(k): dict(v or {}) for k, v in values["bin_sets"].items()}
        values["renderer"] = dict(values.get("renderer") or {})
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain-YAML/JSON form."""
        return dataclasses.asdict(self)

    def synth_config(self, overrides: Mapping[str, Any] | None = None) -> SynthConfig:
        """The renderer's settings: ``renderer`` and ``overrides`` over the size, seed and quality."""
        values = {
            **self.renderer,
            **dict(overrides or {}),
            "seed": self.seed,
            "image_size": self.image_size,
            "supersample": self.supersample,
            "jpeg_quality": self.jpeg_quality,
        }
        return SynthConfig.from_dict(values)


def pair_plan(counts: list[int], num_pairs: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """``num_pairs`` pairs ``(identity_a, image_a, identity_b, image_b)`` over identities with ``counts[k]``
    images each, in 10 folds whose first half is genuine (``a == b``, different images), the rest impostor.
    """
    folds = np.array_split(np.arange(num_pairs), _N_FOLDS)
    pairs: list[tuple[int, int, int, int]] = []
    n = len(counts)
    for fold in folds:
        genuine = len(fold) // 2
        for position in range(len(fold)):
            if position < genuine:
                a = int(rng.integers(n))
                i, j = (int(v) for v in rng.choice(counts[a], size=2, replace=False))
                pairs.append((a, i, a, j))
            else:
                a, b = (int(v) for v in rng.choice(n, size=2, replace=False))
                pairs.append((a, int(rng.integers(counts[a])), b, int(rng.integers(counts[b]))))
    return pairs


class _Renderer:
    """Renders shots with consecutive, never reused image indices; returns JPEG bytes."""

    def __init__(self, config: RecognitionSynthConfig, progress: bool, total: int) -> None:
        from fp_recognition.data import encode_jpeg

        self.encode = encode_jpeg
        self.quality = config.jpeg_quality
        self.next_image = 0
        self.bar = tqdm(total=total, desc="recognition synth", unit="img", disable=not progress)

    def shots(self, config: SynthConfig, identity: Identity, count: int) -> list[bytes]:
        out = []
        for _ in range(count):
            spec = sample_image_spec(config, self.next_image, identity)
            out.append(self.encode(render_face(config, identity, spec).image, self.quality))
            self.next_image += 1
            self.bar.update(1)
        return out


def _name(index: int) -> str:
    return f"id{index:06d}"


def _shuffled_groups(weights: list[float], count: int, rng: np.random.Generator) -> list[int]:
    """``count`` group ids in the proportions of ``weights`` (largest remainder), shuffled."""
    per_group = allot_groups(weights, count)
    groups = np.repeat(np.arange(len(per_group)), per_group)
    rng.shuffle(groups)
    return [int(g) for g in groups]


class _People:
    """Hands out identities with consecutive, never reused indices and records each as an identities.csv row."""

    def __init__(self, base: SynthConfig) -> None:
        self.base = base
        self.names = base.group_names
        self.rows = ["name,role,group,tone"]
        self.count = 0

    def new(self, group: int, role: str, traits: SynthConfig | None = None) -> Identity:
        identity = sample_identity(traits or self.base, self.count, group, self.count + 1)
        self.rows.append(f"{_name(identity.index)},{role},{self.names[group]},{identity.tone:.4f}")
        self.count += 1
        return identity


def _training_set(
    people: _People, renderer: _Renderer, groups: list[int], role: str, per_identity: int
) -> tuple[dict[str, list[bytes]], dict[str, Any]]:
    """One identity per entry of ``groups``, ``per_identity`` shots each: ``(identity name -> JPEGs, counts)``."""
    train: dict[str, list[bytes]] = {}
    per_group = dict.fromkeys(people.names, 0)
    for group in groups:
        identity = people.new(group, role)
        train[_name(identity.index)] = renderer.shots(people.base, identity, per_identity)
        per_group[people.names[group]] += 1
    return train, {"identities": per_group, "images": sum(len(v) for v in train.values())}


def _write_training_set(root: Path, name: str, train: dict[str, list[bytes]]) -> None:
    """``root/<name>/<identity>/<n>.jpg`` and the same images as ``root/<name>_rec`` (RecordIO)."""
    from fp_recognition.data import write_record_dataset

    for identity, images in train.items():
        folder = root / name / identity
        folder.mkdir(parents=True)
        for n, jpeg in enumerate(images):
            (folder / f"{n}.jpg").write_bytes(jpeg)
    write_record_dataset(train, root / f"{name}_rec")


def _render_rfw(
    root: Path, config: RecognitionSynthConfig, people: _People, renderer: _Renderer
) -> dict[str, Any]:
    """The RFW-like set under ``root/rfw``: ``eval_identities_per_group`` identities in every group, with
    ``pairs`` pairs per group; returns its counts."""
    from fp_recognition.data import rfw_image_path, rfw_pairs_path

    pair_counts: dict[str, int] = {}
    for g, group_name in enumerate(people.names):
        members = [people.new(g, "rfw") for _ in range(config.eval_identities_per_group)]
        for identity in members:
            shots = renderer.shots(people.base, identity, config.eval_images_per_identity)
            for idx, jpeg in enumerate(shots, start=1):
                path = rfw_image_path(root / "rfw", group_name, _name(identity.index), idx)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(jpeg)
        plan = pair_plan(
            [config.eval_images_per_identity] * len(members),
            config.pairs,
            rng_for(config.seed, STREAM_PAIRS, g),
        )
        lines = []
        for a, i, b, j in plan:
            na, nb = _name(members[a].index), _name(members[b].index)
            lines.append(f"{na}\t{i + 1}\t{j + 1}" if a == b else f"{na}\t{i + 1}\t{nb}\t{j + 1}")
        pairs_file = rfw_pairs_path(root / "rfw", group_name)
        pairs_file.parent.mkdir(parents=True, exist_ok=True)
        pairs_file.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        pair_counts[group_name] = len(plan)
    return {"identities_per_group": config.eval_identities_per_group, "pairs": pair_counts}


def _render_bins(
    root: Path,
    config: RecognitionSynthConfig,
    people: _People,
    renderer: _Renderer,
    roles: np.random.Generator,
) -> dict[str, Any]:
    """One ``root/bins/<set>.bin`` per ``bin_sets`` entry, each its own pool in the training mix; its counts."""
    from fp_recognition.data import write_bin

    weights = [g.weight for g in people.base.skin_tone_groups]
    pair_counts: dict[str, int] = {}
    for s, (set_name, overrides) in enumerate(config.bin_sets.items()):
        shot_config = config.synth_config(overrides)
        mix = _shuffled_groups(weights, config.bin_identities, roles)
        pool_people = [people.new(g, f"bin:{set_name}", shot_config) for g in mix]
        pool = [renderer.shots(shot_config, p, config.bin_images_per_identity) for p in pool_people]
        plan = pair_plan(
            [len(images) for images in pool],
            config.bin_pairs,
            rng_for(config.seed, STREAM_PAIRS, len(people.names) + s),
        )
        images = [img for a, i, b, j in plan for img in (pool[a][i], pool[b][j])]
        write_bin(root / "bins" / f"{set_name}.bin", images, [a == b for a, _, b, _ in plan])
        pair_counts[set_name] = len(plan)
    return {"identities": config.bin_identities, "pairs": pair_counts}


def render_recognition_sets(
    config: RecognitionSynthConfig, out_dir: str | os.PathLike[str], *, progress: bool = True
) -> dict[str, Any]:
    """Render every set of ``config`` into ``out_dir`` (replaced atomically) and return the manifest."""
    base = config.synth_config()
    train_images = config.train_identities * config.train_images_per_identity
    total = (
        train_images * (2 if config.balanced_train else 1)
        + len(base.group_names) * config.eval_identities_per_group * config.eval_images_per_identity
        + len(config.bin_sets) * config.bin_identities * config.bin_images_per_identity
    )
    renderer = _Renderer(config, progress, total)
    roles = rng_for(config.seed, STREAM_ROLES)
    people = _People(base)
    skewed = [g.weight for g in base.skin_tone_groups]
    per_identity = config.train_images_per_identity

    counts: dict[str, Any] = {}
    with atomic_output_dir(Path(out_dir)) as root:
        groups = _shuffled_groups(skewed, config.train_identities, roles)
        train, counts["train"] = _training_set(people, renderer, groups, "train", per_identity)
        _write_training_set(root, "train", train)
        counts["rfw"] = _render_rfw(root, config, people, renderer)
        counts["bins"] = _render_bins(root, config, people, renderer, roles)
        if config.balanced_train:  # last: every identity above keeps its index
            groups = _shuffled_groups([1.0] * len(skewed), config.train_identities, roles)
            balanced, counts["train_balanced"] = _training_set(
                people, renderer, groups, "train_balanced", per_identity
            )
            _write_training_set(root, "train_balanced", balanced)
        renderer.bar.close()

        (root / "identities.csv").write_text("".join(r + "\n" for r in people.rows), encoding="utf-8")
        manifest = {
            "generator": "fp_pipeline.synth.recognition",
            "config": config.to_dict(),
            "groups": people.names,
            "images_rendered": renderer.next_image,
            "identities": people.count,
            "counts": counts,
            "layout": {
                "train": "train/<identity>/<n>.jpg",
                "train_rec": "train_rec/train.rec, train.idx, property",
                "train_balanced": "train_balanced/ and train_balanced_rec/ (balanced_train: true)",
                "rfw": "rfw/test/data/<Group>/<name>/<name>_<idx:04d>.jpg, rfw/test/txts/<Group>/<Group>_pairs.txt",
                "bins": "bins/<set>.bin",
            },
        }
        write_json(root / MANIFEST, manifest)
    return manifest
