"""``qdgs-faces-export@<method>``: a sampled set as identities with 9 latent-walk variants each, for recognition.

1. Identities (:func:`fp_qdgs.faces.identity_labels`): 3 x 3 chunks over the first two measures (skin,
   gender) split at ``export.edges`` (the public code's ``(-0.03, 0.03)`` fits the real CLIP; ``auto`` splits at
   the terciles of the set's own measures, the scale of the embedded CLIP), K-means with ``k = ceil(n / 2)``
   inside each chunk.
2. Directions (:func:`fp_qdgs.faces.fit_directions`): least squares of the VAE's latent means of labelled
   faces (train split of ``data.root``) on two labels, ``export.direction_labels``, default ``[yaw, Smiling]``.
   ``Smiling`` is a CelebA attribute. The yaw is not in the dataset's files; for the synthetic data it is
   recovered exactly from ``fp_synth_manifest.json``: the renderer is deterministic, so re-planning the
   dataset from the manifest's config gives each image's ``ImageSpec.yaw`` (the sideways shift of the inner
   features). Real CelebAMask-HQ has neither the manifest nor a pose label: there give two attributes instead
   (e.g. ``[Mouth_Slightly_Open, Smiling]``) or shipped directions.
3. Variants (:func:`fp_qdgs.faces.lattice`): the 3 x 3 lattice ``{-s1, 0, s1} x {-s2, 0, s2}`` along the two
   unit directions (``export.steps``, latent units; the VAE's prior is ``N(0, I)``), 9 images per solution.
4. :func:`fp_qdgs.faces.write_identity_folder` at the recogniser's input size (``recognition.model.input_size``;
   the synthetic faces are aligned by construction, so only resized).

Set: ``export.set`` (null: the largest), cut with ``export.match_sizes`` to the size both methods reached, so
Rand and QD pretrain on equally many solutions (a QD archive can hold fewer elites than the set asks for; the
first rows of Rand's nested draws are a random subsample).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from fp_pipeline.config import ParamsError, section
from fp_pipeline.stages.qdgs_faces_common import (
    IDENTITIES_DIR,
    MEASURE_NAMES,
    METHODS,
    PLOTS_DIR,
    SOLUTIONS_DIR,
    VAE_DIR,
    common_set_sizes,
    faces_params,
    labelled_faces,
    read_solutions,
)
from fp_pipeline.tracking import save_figure, stage_run

__all__ = ["chunk_edges", "direction_labels", "export_set", "export_stage", "synth_yaw"]


def synth_yaw(root: Path, indices: Any) -> Any:
    """Yaw ``[N]`` float64 of the synthetic images ``indices`` of ``root`` (re-planned from its manifest), or
    None when ``root`` has no ``fp_synth_manifest.json`` (real data)."""
    import json

    import numpy as np

    from fp_pipeline.synth.config import SynthConfig
    from fp_pipeline.synth.population import plan_dataset, sample_image_spec

    manifest = root / "fp_synth_manifest.json"
    if not manifest.is_file():
        return None
    config = SynthConfig.from_dict(json.loads(manifest.read_text(encoding="utf-8"))["config"])
    plan = plan_dataset(config)
    out = []
    for index in np.asarray(indices, dtype=np.int64):
        if not 0 <= int(index) < config.num_images:
            raise ValueError(f"image {index} is not in {manifest} ({config.num_images} images)")
        identity = plan.identities[plan.image_identity[int(index)]]
        out.append(sample_image_spec(config, int(index), identity).yaw)
    return np.asarray(out, dtype=np.float64)


def direction_labels(root: Path, faces: dict[str, Any], names: list[str]) -> Any:
    """``[N, 2]`` float64 labels of :func:`labelled_faces` output ``faces``: ``yaw`` or CelebA attributes."""
    import numpy as np

    if len(names) != 2:
        raise ParamsError(f"qdgs.faces.export.direction_labels must name two labels, got {names}")
    columns = []
    for name in names:
        if name == "yaw":
            yaw = synth_yaw(root, faces["indices"])
            if yaw is None:
                raise ParamsError(
                    f"{root} has no fp_synth_manifest.json, so no yaw labels: set "
                    "qdgs.faces.export.direction_labels to two CelebA attributes (e.g. [Mouth_Slightly_Open, Smiling])"
                )
            columns.append(yaw)
        elif name in faces["attributes"]:
            columns.append(faces["attributes"][name].astype(np.float64))
        else:
            raise ParamsError(f"direction label {name!r} is neither 'yaw' nor an attribute of {root}")
    for name, column in zip(names, columns):
        if len(column) < 3 or float(np.ptp(column)) == 0.0:
            raise ParamsError(
                f"direction label {name!r} is constant over the {len(column)} train faces of {root}: it cannot "
                "give a direction; choose another in qdgs.faces.export.direction_labels"
            )
    return np.stack(columns, axis=1)


def chunk_edges(edges: Any, measures: Any) -> tuple[Any, tuple[float, ...]]:
    """``(measures for chunking [N, k], edges)`` from ``export.edges``: a list of increasing floats (measures
    as they are), or ``auto``: each of the first two measures rescaled so that its own terciles fall at
    ``-1`` and ``+1`` and the edges ``(-1, 1)``, so each splits into thirds of the set."""
    import torch

    m = torch.as_tensor(measures, dtype=torch.float64)
    if edges == "auto":
        t1, t2 = torch.quantile(m[:, :2], 1.0 / 3.0, dim=0), torch.quantile(m[:, :2], 2.0 / 3.0, dim=0)
        half = ((t2 - t1) / 2).clamp_min(1e-9)
        scaled = m.clone()
        scaled[:, :2] = (m[:, :2] - (t1 + t2) / 2) / half
        return scaled, (-1.0, 1.0)
    if not isinstance(edges, list) or not edges:
        raise ParamsError(f"qdgs.faces.export.edges must be 'auto' or a list of floats, got {edges!r}")
    return m, tuple(float(e) for e in edges)


def export_set(cfg: dict[str, Any], method: str, solutions_dir: Path = SOLUTIONS_DIR) -> tuple[str, int]:
    """``(set name, solutions to export)`` for ``method`` from ``qdgs.faces.export``: the set ``set`` (null: the
    largest), cut with ``match_sizes`` (default true) to the size both methods reached, so the Rand and QD
    identity sets come from equally many solutions (a QD archive may hold fewer elites than the set asks)."""
    import json

    reached = json.loads((solutions_dir / f"{method}.json").read_text(encoding="utf-8"))["sets"]
    name = str(cfg.get("set") or max(reached, key=lambda k: reached[k]))
    if name not in reached:
        raise ParamsError(f"qdgs.faces.export.set {name!r} is not one of the sets {sorted(reached)}")
    if not cfg.get("match_sizes", True):
        return name, int(reached[name])
    common = common_set_sizes(solutions_dir)
    if name not in common:
        raise ParamsError(f"qdgs.faces.export.set {name!r} is not a set of every method ({sorted(common)})")
    return name, int(common[name])


def _directions(vae: Any, root: Path, params: dict[str, Any], names: list[str]) -> tuple[Any, dict[str, Any]]:
    import torch

    from fp_qdgs.faces import fit_directions

    order = str(section(params, "data.label_order"))
    faces = labelled_faces(root, "train", vae.config.image_size, order)
    labels = direction_labels(root, faces, names)
    with torch.no_grad():
        means = torch.cat([vae.encode(faces["images"][i : i + 128])[0] for i in range(0, len(labels), 128)])
    directions = fit_directions(means, torch.as_tensor(labels))
    cosine = float(torch.dot(directions[0], directions[1]))
    return directions, {"labels": names, "faces": len(labels), "cosine_between_directions": cosine}


def _lattice_figure(images: Any, title: str) -> Any:
    """``images uint8 [R, 9, S, S, 3]``: one row of 9 variants per solution."""
    from matplotlib.figure import Figure

    rows = len(images)
    fig = Figure(figsize=(9 * 0.9, rows * 0.9 + 0.4), constrained_layout=True)
    axes = fig.subplots(rows, 9, squeeze=False)
    for r in range(rows):
        for v in range(9):
            axes[r, v].imshow(images[r, v])
            axes[r, v].axis("off")
    fig.suptitle(title)
    return fig


def export_stage(*, params_path: Path, method: str, progress: bool = True) -> Path:
    """Write ``outputs/qdgs-faces/identities/<method>`` from the method's largest set (module docstring)."""

    import torch

    from fp_qdgs.export import to_uint8
    from fp_qdgs.faces import (
        FaceDecoderGenerator,
        identity_labels,
        lattice,
        load_face_vae,
        write_identity_folder,
    )

    if method not in METHODS:
        raise ParamsError(f"--method must be one of {list(METHODS)}, got {method!r}")
    params, faces = faces_params(params_path)
    cfg = section(faces, "export", source="qdgs.faces")
    seed = int(faces["seed"])
    root = Path(section(params, "data.root"))
    size = int(section(params, "recognition.model.input_size"))
    name, count = export_set(cfg, method)
    solutions = read_solutions(SOLUTIONS_DIR / f"{method}.npz")
    latents, measures = solutions["latents"][:count], solutions["measures"][:count]
    vae = load_face_vae(VAE_DIR)
    generator = FaceDecoderGenerator(vae)
    chunked, edges = chunk_edges(cfg["edges"], measures)
    ids = identity_labels(latents, chunked, edges=edges, seed=seed)
    directions, fit = _directions(vae, root, params, list(cfg["direction_labels"]))
    steps = tuple(float(s) for s in cfg["steps"])
    walks = lattice(latents, directions, steps)  # [N, 9, d]

    def source(start: int, stop: int) -> Any:
        with torch.no_grad():
            z = walks[start:stop]
            images = generator(z.reshape(-1, z.shape[-1]))
        return to_uint8(images).permute(0, 2, 3, 1).reshape(stop - start, 9, *images.shape[2:], 3).numpy()

    out = IDENTITIES_DIR / method
    provenance = {
        "method": method,
        "set": name,
        "solutions": count,
        "match_sizes": bool(cfg.get("match_sizes", True)),
        "edges": cfg["edges"] if cfg["edges"] == "auto" else list(edges),
        "steps": list(steps),
        "directions": fit,
        "generator": str(VAE_DIR),
    }
    with stage_run(
        f"qdgs-faces-export@{method}", params={"qdgs.faces.export": cfg}, variant=method, seed=seed
    ) as run:
        write_identity_folder(
            source,
            ids,
            out,
            measures=measures,
            provenance=provenance,
            image_size=size,
            measure_names=MEASURE_NAMES,
        )
        shown = min(6, len(latents))
        save_figure(
            _lattice_figure(source(0, shown), f"{method}: 9 variants per solution"),
            PLOTS_DIR / f"variants-{method}.png",
            run,
        )
        run(
            {"identities": float(ids.max() + 1), "solutions": float(len(ids)), "images": float(9 * len(ids))},
            0,
        )
    typer.echo(f"qdgs-faces-export@{method}: {int(ids.max()) + 1} identities, {9 * len(ids)} images -> {out}")
    return out
