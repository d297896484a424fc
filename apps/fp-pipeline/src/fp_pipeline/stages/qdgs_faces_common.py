"""What the QDGS faces stages (issue 13) share: paths, the paper's prompts, params checks and the face data.

Layout (all under ``outputs/``)::

    qdgs-faces-vae/                         the face VAE generator (safetensors + config + manifest)
    qdgs-faces-attributes/                  the attribute classifiers (safetensors + manifest + accuracy.json)
    qdgs-faces/solutions/<method>.npz, .json  the sampled set: latents, measures, objectives (no pickle)
    qdgs-faces/archives/<method>.npz, .json the result archive (QD) or the random draws binned the same way
    qdgs-faces/runs/<method>.json           the sampler's metrics (DVC metrics)
    qdgs-faces/plots/                       VAE samples, archive heatmaps, sample grids, variant lattices
    qdgs-faces/identities/<method>/         the identity-folder export (``<id>/<n>.jpg``, recogniser input size)
    qdgs-faces-report/                      report.md, summary.json, Fig. 4
    checkpoints/qdgs-faces-<name>/          resumable checkpoints, outside the DVC outputs
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from fp_pipeline.config import ParamsError, load_params, section

__all__ = [
    "ARCHIVE_DIR",
    "ATTRIBUTES_DIR",
    "FACES_PROMPTS",
    "IDENTITIES_DIR",
    "MEASURE_NAMES",
    "METHODS",
    "PLOTS_DIR",
    "REPORT_DIR",
    "ROOT",
    "RUNS_DIR",
    "SOLUTIONS_DIR",
    "VAE_DIR",
    "checkpoint_dir",
    "common_set_sizes",
    "faces_params",
    "labelled_faces",
    "read_solutions",
    "sample_grid",
    "set_sizes",
    "write_solutions",
]

ROOT = Path("outputs/qdgs-faces")
VAE_DIR = Path("outputs/qdgs-faces-vae")
ATTRIBUTES_DIR = Path("outputs/qdgs-faces-attributes")
SOLUTIONS_DIR = ROOT / "solutions"
ARCHIVE_DIR = ROOT / "archives"
RUNS_DIR = ROOT / "runs"
PLOTS_DIR = ROOT / "plots"
IDENTITIES_DIR = ROOT / "identities"
REPORT_DIR = Path("outputs/qdgs-faces-report")
CHECKPOINT_ROOT = Path("outputs/checkpoints")
#: QDGS (CMA-MAEGA archive) and the paper's random baseline (plain prior draws)
METHODS: tuple[str, str] = ("qd", "rand")
MEASURE_NAMES: tuple[str, ...] = ("skin", "gender", "hair", "age")


def _faces_prompts() -> Any:
    from fp_qdgs.shapes.scorer import PromptSet

    # The paper's sentences. Each measure is angle(first) - angle(second): negative = nearer the first
    # prompt, so skin < 0 is darker, gender < 0 more feminine, hair < 0 longer, age < 0 younger. The embedded
    # face CLIP's captions use the same words (fp_pipeline.stages.face_captions.FACE_PROMPT_PAIRS).
    return PromptSet(
        objective=(
            ("A detailed photo of an individual with diverse features.",),
            ("An obscure, fake, or discolored photo of a person.",),
        ),
        measures=(
            (("A person with dark skin",), ("A person with light skin",)),
            (("A feminine person",), ("A masculine person",)),
            (("A person with long hair",), ("A person with short hair",)),
            (("A person in their 20s",), ("A person in their 50s",)),
        ),
        measure_names=MEASURE_NAMES,
    )


FACES_PROMPTS = _faces_prompts()


def sample_grid(images: Any, title: str, cols: int = 8) -> Any:
    """A figure of ``images [N, 3, H, W]`` in ``[0, 1]``, ``cols`` per row."""
    from matplotlib.figure import Figure

    from fp_qdgs.export import to_uint8

    pixels = to_uint8(images).permute(0, 2, 3, 1).numpy()
    cols = max(1, min(cols, len(pixels)))
    rows = max(1, -(-len(pixels) // cols))
    fig = Figure(figsize=(1.3 * cols, 1.3 * rows + 0.4), constrained_layout=True)
    axes = fig.subplots(rows, cols, squeeze=False).reshape(-1)
    for ax in axes:
        ax.axis("off")
    for ax, image in zip(axes, pixels):
        ax.imshow(image)
    fig.suptitle(title)
    return fig


def checkpoint_dir(name: str) -> Path:
    """``outputs/checkpoints/qdgs-faces-<name>``."""
    return CHECKPOINT_ROOT / f"qdgs-faces-{name}"


def faces_params(params_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(params, params["qdgs"]["faces"])`` with ``qdgs.faces.torch_threads`` applied when > 0, else
    ``qdgs.torch_threads`` / ``runtime.torch_threads`` (two OpenMP threads on the shared 2-core box made the
    face VAE's step 60x slower than one: measured 1.2 s against 18 ms per batch of 32)."""
    import torch

    from fp_pipeline.stages.qdgs_common import torch_threads

    params = load_params(params_path)
    torch_threads(params)
    faces = section(params, "qdgs.faces")
    threads = int(faces.get("torch_threads", 0) or 0)
    if threads > 0:
        torch.set_num_threads(threads)
    return params, faces


def set_sizes(faces: dict[str, Any]) -> dict[str, int]:
    """``qdgs.faces.sets``: set name (``"15"``, ``"50"``) -> solutions, positive ints; sorted by size."""
    raw = section(faces, "sets", source="qdgs.faces")
    if not isinstance(raw, dict) or not raw:
        raise ParamsError(f"qdgs.faces.sets must be a non-empty mapping name -> size, got {raw!r}")
    out = {}
    for name, size in raw.items():
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ParamsError(f"qdgs.faces.sets.{name} must be a positive int, got {size!r}")
        out[str(name)] = size
    return dict(sorted(out.items(), key=lambda kv: kv[1]))


def common_set_sizes(solutions_dir: Path = SOLUTIONS_DIR) -> dict[str, int]:
    """Set name -> the size every method reached (the smallest), from ``<method>.json`` in ``solutions_dir``.

    A QD archive can hold fewer elites than a set asks for (``sets`` in the json is what each method
    reached); comparing the methods at this common size keeps Rand and QD like for like (the paper's QD50
    against Rand50). Names missing from a method are left out.
    """
    import json

    reached = {}
    for method in METHODS:
        path = solutions_dir / f"{method}.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `fp qdgs faces-sample --method {method}` first")
        reached[method] = json.loads(path.read_text(encoding="utf-8"))["sets"]
    names = [name for name in reached[METHODS[0]] if all(name in reached[m] for m in METHODS)]
    return {name: min(int(reached[m][name]) for m in METHODS) for name in names}


def write_solutions(path: Path, latents: Any, measures: Any, objectives: Any) -> Path:
    """``latents [N, d]``, ``measures [N, k]``, ``objectives [N]`` to an ``.npz`` (atomically, no pickle)."""
    import numpy as np

    from fp_core.atomic import write_bytes

    buffer = io.BytesIO()
    np.savez(
        buffer,
        latents=np.asarray(latents, dtype=np.float32),
        measures=np.asarray(measures, dtype=np.float32),
        objectives=np.asarray(objectives, dtype=np.float32),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(path, buffer.getvalue())
    return path


def read_solutions(path: Path) -> dict[str, Any]:
    """Inverse of :func:`write_solutions`: ``{"latents", "measures", "objectives"}`` as float32 tensors."""
    import numpy as np
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `fp qdgs faces-sample` for it first")
    with np.load(path, allow_pickle=False) as data:
        out = {key: torch.from_numpy(data[key].copy()) for key in ("latents", "measures", "objectives")}
    n = len(out["latents"])
    if len(out["measures"]) != n or len(out["objectives"]) != n:
        raise ValueError(f"{path}: latents, measures and objectives have different lengths")
    return out


def labelled_faces(
    root: Path, split: str | tuple[str, ...], image_size: int, label_order: str
) -> dict[str, Any]:
    """The faces of ``split`` (one or several) of ``root``: ``images [N, 3, S, S]`` in ``[0, 1]``, the four
    trait ``labels`` (``{name: [N] int, -1 unknown}``), the dataset ``indices [N]`` and the CelebA
    ``attributes`` (``{name: [N] int in {0, 1}}``)."""
    import numpy as np
    import torch

    from fp_parsing.data import CelebAMaskHQ
    from fp_pipeline.stages.clip_faces import face_set

    splits = (split,) if isinstance(split, str) else tuple(split)
    images, labels, indices, attributes = [], [], [], []
    for name in splits:
        imgs, labs, _ = face_set(root, name, image_size, label_order)
        ds = CelebAMaskHQ(root, split=name, label_order=label_order)
        images.append(imgs)
        labels += labs
        indices.append(np.asarray(ds.indices, dtype=np.int64))
        attributes.append(
            {
                n: (np.asarray(ds.attributes)[:, j] == 1).astype(np.int64)
                for j, n in enumerate(ds.attribute_names)
            }
        )
    if not labels:
        raise ValueError(f"{root} has no images in split(s) {splits}")
    traits = {
        t: torch.tensor([-1 if row[t] is None else int(row[t]) for row in labels], dtype=torch.long)
        for t in MEASURE_NAMES
    }
    return {
        "images": torch.cat(images),
        "labels": traits,
        "indices": np.concatenate(indices),
        "attributes": {n: np.concatenate([a[n] for a in attributes]) for n in attributes[0]},
    }
