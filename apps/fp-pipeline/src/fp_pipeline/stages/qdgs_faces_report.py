"""``qdgs-faces-report``: QDGS Table 1 and Fig. 4 on faces, and the pretraining verdicts of the recognition chain.

* Table 1: the share of each attribute bin (dark / light skin, feminine / masculine, long / short hair,
  old / young) in every Rand and QD set (``qdgs.faces.sets``, nested: set ``"15"`` is the first rows of set
  ``"50"``), estimated with the attribute classifiers of ``qdgs-faces-attributes`` (their held-out balanced
  accuracy is printed beside them), ± the binomial standard error ``sqrt(p (1 - p) / n)``; the train split's
  ground truth is the reference row. The paper's headline: dark-skinned share 9.4 % (Rand50) -> 25.2 % (QD50).
  The verdict on the dark share (largest sets) is "higher" / "lower" only beyond 2 s.e. of the difference.
* Fig. 4: samples of the largest Rand and QD sets, and density maps of their measures on the planes
  (skin, gender) and (hair, age).
* Recognition (Tables 2-4 with pretraining none / rand / qd): :func:`pretraining_verdicts` compares the dark
  group's RFW accuracy and the disparate impact of QD pretraining against rand and against none, per loss,
  beyond 2 s.e. over trials; the report includes them when ``qdgs.faces.report.recognition`` maps each source
  to its ``recognition-report/summary.json``-style metrics (see the docstring there); otherwise it says which
  are missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import typer

from fp_pipeline.config import section
from fp_pipeline.stages.qdgs_faces_common import (
    ATTRIBUTES_DIR,
    MEASURE_NAMES,
    METHODS,
    REPORT_DIR,
    RUNS_DIR,
    SOLUTIONS_DIR,
    VAE_DIR,
    faces_params,
    labelled_faces,
    read_solutions,
)
from fp_pipeline.stages.recognition_report import MeanSE, difference_verdict, mean_se
from fp_pipeline.tracking import save_figure, stage_run

__all__ = [
    "BINS",
    "figure_samples_and_density",
    "proportion",
    "proportion_verdict",
    "pretraining_verdicts",
    "report_stage",
    "table1_rows",
]

#: (label 1 bin, label 0 bin) per attribute, in the order of ``MEASURE_NAMES``
BINS: dict[str, tuple[str, str]] = {
    "skin": ("dark", "light"),
    "gender": ("feminine", "masculine"),
    "hair": ("long hair", "short hair"),
    "age": ("old", "young"),
}
_TITLE = {"qd": "QD", "rand": "Rand"}


def proportion(labels: Any) -> MeanSE:
    """Share of ones in ``labels [N]`` (0/1) with the binomial s.e. ``sqrt(p (1 - p) / n)``."""
    x = np.asarray(labels, dtype=np.float64)
    if x.size == 0:
        return MeanSE(math.nan, math.nan, 0)
    p = float(x.mean())
    return MeanSE(p, math.sqrt(p * (1 - p) / x.size), int(x.size))


def proportion_verdict(qd: MeanSE, rand: MeanSE, what: str = "dark-skinned share") -> str:
    """One sentence: is the QD set's share of ``what`` higher or lower than Rand's beyond 2 s.e.?"""
    diff, se, verdict = difference_verdict(qd, rand, "QD", "Rand")
    if verdict.startswith("no verdict"):
        return f"{what}: {verdict}"
    return f"{what}: QD {qd.mean:.1%} vs Rand {rand.mean:.1%} (difference {diff:+.1%} ± {se:.1%}): {verdict}"


def table1_rows(predicted: Mapping[str, Any], sets: Mapping[str, int]) -> dict[str, dict[str, MeanSE]]:
    """``{"Rand15": {"skin": MeanSE, ...}, ...}`` from ``predicted[method] [N, 4]`` 0/1 and the nested sizes."""
    rows: dict[str, dict[str, MeanSE]] = {}
    for method in METHODS:
        if method not in predicted:
            continue
        for name, size in sets.items():
            labels = np.asarray(predicted[method])[:size]
            rows[f"{_TITLE[method]}{name}"] = {
                attr: proportion(labels[:, j]) for j, attr in enumerate(MEASURE_NAMES)
            }
    return rows


def pretraining_verdicts(
    metrics: Mapping[str, Mapping[str, Sequence[Mapping[str, float]]]],
    *,
    dark: str = "dark",
    keys: Sequence[str] = ("rfw/{dark}", "rfw/disparate_impact"),
) -> list[str]:
    """Per loss, whether QD pretraining raised the dark group's accuracy and the disparate impact over rand
    and over none beyond 2 s.e. over trials. ``metrics[source][loss]`` is the list of per-trial eval metrics
    (``recognition-eval``'s ``metrics.json``); a comparison whose source is missing is reported as such."""
    lines = []
    losses = sorted({loss for per_loss in metrics.values() for loss in per_loss})
    for loss in losses:
        for key in (k.format(dark=dark) for k in keys):
            qd = metrics.get("qd", {}).get(loss)
            if not qd:
                lines.append(f"- {loss}, {key}: no QD-pretrained trials")
                continue
            qd_stat = mean_se([m.get(key, math.nan) for m in qd])
            for other in ("rand", "none"):
                rows = metrics.get(other, {}).get(loss)
                if not rows:
                    lines.append(f"- {loss}, {key}: QD vs {other}: no {other}-pretrained trials")
                    continue
                stat = mean_se([m.get(key, math.nan) for m in rows])
                diff, se, verdict = difference_verdict(qd_stat, stat, "QD", other)
                lines.append(
                    f"- {loss}, {key}: QD {qd_stat.text()} vs {other} {stat.text()} "
                    f"(difference {diff * 100:+.2f} ± {se * 100:.2f}): {verdict}"
                )
    return lines


def figure_samples_and_density(images: Mapping[str, Any], measures: Mapping[str, Any]) -> Any:
    """Fig. 4: per method a row of 8 samples, and density maps on (skin, gender) and (hair, age)."""
    from matplotlib.figure import Figure

    from fp_qdgs.export import to_uint8

    methods = [m for m in METHODS if m in images]
    fig = Figure(figsize=(12, 2.8 * len(methods)), constrained_layout=True)
    grid = fig.add_gridspec(len(methods), 10)
    everything = np.concatenate([np.asarray(measures[m]) for m in methods])
    lims = [(float(everything[:, j].min()), float(everything[:, j].max())) for j in range(4)]
    for r, method in enumerate(methods):
        pixels = to_uint8(images[method][:8]).permute(0, 2, 3, 1).numpy()
        sample_ax = fig.add_subplot(grid[r, :6])
        sample_ax.imshow(np.concatenate(list(pixels), axis=1) if len(pixels) else np.zeros((8, 8, 3)))
        sample_ax.axis("off")
        sample_ax.set_title(f"{_TITLE[method]}: samples")
        m = np.asarray(measures[method])
        for k, (i, j) in enumerate(((0, 1), (2, 3))):
            ax = fig.add_subplot(grid[r, 6 + 2 * k : 8 + 2 * k])
            ax.hist2d(m[:, i], m[:, j], bins=12, range=[lims[i], lims[j]], cmap="magma")
            ax.set_xlabel(f"{MEASURE_NAMES[i]} measure")
            ax.set_ylabel(f"{MEASURE_NAMES[j]} measure")
            ax.set_title(f"{_TITLE[method]}: density")
    return fig


def _decode(latents: Any) -> Any:
    import torch

    from fp_qdgs.faces import FaceDecoderGenerator, load_face_vae

    generator = FaceDecoderGenerator(load_face_vae(VAE_DIR))
    with torch.no_grad():
        return torch.cat([generator(latents[i : i + 128]) for i in range(0, len(latents), 128)])


def _table1_markdown(
    rows: dict[str, dict[str, MeanSE]], truth: dict[str, MeanSE], accuracy: dict
) -> list[str]:
    head = "| set | " + " | ".join(f"{BINS[a][0]} / {BINS[a][1]}" for a in MEASURE_NAMES) + " |"
    lines = [head, "|---" * (len(MEASURE_NAMES) + 1) + "|"]
    lines.append(
        "| train split (ground truth) | " + " | ".join(truth[a].text(digits=1) for a in MEASURE_NAMES) + " |"
    )
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(row[a].text(digits=1) for a in MEASURE_NAMES) + " |")
    acc = [accuracy[a]["balanced_accuracy"] for a in MEASURE_NAMES]
    lines.append(
        "| classifier held-out balanced accuracy | "
        + " | ".join("n/a" if v is None else f"{100 * v:.1f}" for v in acc)
        + " |"
    )
    return lines


def _recognition_metrics(faces: dict[str, Any]) -> dict[str, dict[str, list[dict[str, float]]]]:
    """``qdgs.faces.report.recognition``: source -> directory of ``<loss>-<trial>/eval/metrics.json`` runs."""
    out: dict[str, dict[str, list[dict[str, float]]]] = {}
    for source, directory in ((faces.get("report") or {}).get("recognition") or {}).items():
        for path in sorted(Path(directory).glob("*/eval/metrics.json")):
            loss = path.parent.parent.name.rsplit("-", 1)[0]
            out.setdefault(str(source), {}).setdefault(loss, []).append(json.loads(path.read_text()))
    return out


def report_stage(*, params_path: Path) -> Path:
    """Write ``outputs/qdgs-faces-report`` (report.md, summary.json, Fig. 4)."""
    from fp_core.atomic import write_json, write_text
    from fp_pipeline.stages.qdgs_faces_attributes import load_attribute_net, predict_attributes

    params, faces = faces_params(params_path)
    net = load_attribute_net(ATTRIBUTES_DIR)
    accuracy = json.loads((ATTRIBUTES_DIR / "accuracy.json").read_text(encoding="utf-8"))["attributes"]
    images, measures, predicted, sets, runs = {}, {}, {}, {}, {}
    for method in METHODS:
        solutions = read_solutions(SOLUTIONS_DIR / f"{method}.npz")
        sets[method] = json.loads((SOLUTIONS_DIR / f"{method}.json").read_text(encoding="utf-8"))["sets"]
        runs[method] = json.loads((RUNS_DIR / f"{method}.json").read_text(encoding="utf-8"))
        images[method] = _decode(solutions["latents"])
        measures[method] = solutions["measures"].numpy()
        predicted[method] = predict_attributes(net, images[method]).numpy()
    common = {name: min(sets[m][name] for m in METHODS) for name in sets["qd"] if name in sets["rand"]}
    rows = table1_rows(predicted, common)
    root, order = Path(section(params, "data.root")), str(section(params, "data.label_order"))
    train = labelled_faces(root, "train", net.image_size, order)["labels"]
    truth = {a: proportion(train[a][train[a] >= 0].numpy()) for a in MEASURE_NAMES}
    largest = max(common, key=lambda k: common[k])
    dark = proportion_verdict(rows[f"QD{largest}"]["skin"], rows[f"Rand{largest}"]["skin"])
    recognition = _recognition_metrics(faces)
    auto = json.loads((SOLUTIONS_DIR / "qd.json").read_text(encoding="utf-8")).get("auto_ranges", False)
    lines = [
        "# QDGS on faces",
        "",
        f"Generator: the face VAE ({VAE_DIR}) on the train split of {root}. Sets are nested draws; sizes "
        f"{common} (the paper's 15 / 50 are thousands). Coverage: "
        + ", ".join(
            f"{m} {runs[m]['coverage']:.3f} at {int(runs[m]['evaluations'])} evaluations" for m in METHODS
        )
        + " (Rand is the paper's plain prior draws, binned into the same cells; it is not run at equal "
        "evaluations). Measure ranges: "
        + ("measured from prior draws (auto)" if auto else "from params")
        + ".",
        "",
        "## Table 1: attribute proportions (%, ± binomial s.e.), estimated by the attribute classifiers",
        "",
        *_table1_markdown(rows, truth, accuracy),
        "",
        f"- {dark} (the paper: 9.4 % Rand50 -> 25.2 % QD50).",
        "",
        "## Recognition pretraining (Tables 2-4): QD vs rand and vs none",
        "",
        *(
            pretraining_verdicts(recognition)
            or [
                "- not run: train and evaluate with each recognition.pretrain.use in (none, rand, qd), keep each "
                "outputs/recognition/runs, and map the sources to those directories in "
                "qdgs.faces.report.recognition"
            ]
        ),
    ]
    summary = {
        "table1": {name: {a: s.mean for a, s in row.items()} for name, row in rows.items()},
        "ground_truth": {a: s.mean for a, s in truth.items()},
        "dark_share_verdict": dark,
        "coverage": {m: runs[m]["coverage"] for m in METHODS},
    }
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    with stage_run("qdgs-faces-report", params={"qdgs.faces.sets": faces.get("sets")}) as run:
        save_figure(
            figure_samples_and_density(images, measures), REPORT_DIR / "fig4-samples-density.png", run
        )
        write_text(REPORT_DIR / "report.md", "\n".join(lines) + "\n")
        write_json(REPORT_DIR / "summary.json", summary)
        run({f"dark_share/{name}": row["skin"].mean for name, row in rows.items()}, 0)
        run.log_artifact(REPORT_DIR / "report.md")
    typer.echo(f"qdgs-faces-report: {dark}")
    return REPORT_DIR
