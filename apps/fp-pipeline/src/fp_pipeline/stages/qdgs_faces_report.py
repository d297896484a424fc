"""``qdgs-faces-report``: QDGS Table 1 and Fig. 4 on faces, and the pretraining verdicts of the recognition chain.

* Table 1: the share of each attribute bin (dark / light skin, feminine / masculine, long / short hair,
  old / young) in every Rand and QD set (``qdgs.faces.sets``, nested: set ``"15"`` is the first rows of set
  ``"50"``), estimated with the attribute classifiers of ``qdgs-faces-attributes`` (their held-out balanced
  accuracy is printed beside them), ± the binomial standard error ``sqrt(p (1 - p) / n)``; the train split's
  ground truth is the reference row. The paper's headline: dark-skinned share 9.4 % (Rand50) -> 25.2 % (QD50).
  The verdict on the dark share (largest sets) is "higher" / "lower" only beyond 2 s.e. of the difference.
* Fig. 4: samples of the largest Rand and QD sets, and density maps of their measures on the planes
  (skin, gender) and (hair, age).
* Recognition (Tables 2-4 with pretraining none / rand / qd, in ``outputs/recognition-report``): the verdicts
  of :func:`fp_pipeline.stages.recognition_report.pretraining_verdicts` (QD vs rand and vs none, per loss, on
  the dark group's RFW accuracy and the disparate impact, beyond 2 s.e. over trials), read from
  ``qdgs.faces.report.recognition``: the recognition runs directory (default ``outputs/recognition/runs``,
  ``<source>/<loss>-<trial>/eval/metrics.json``); the report says which sources are missing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
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
    common_set_sizes,
    faces_params,
    labelled_faces,
    read_solutions,
)
from fp_pipeline.stages.recognition_report import MeanSE, difference_verdict, pretraining_verdicts, read_runs
from fp_pipeline.tracking import save_figure, stage_run

__all__ = [
    "BINS",
    "figure_samples_and_density",
    "proportion",
    "proportion_verdict",
    "recognition_lines",
    "recognition_runs",
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


#: default of ``qdgs.faces.report.recognition``: where ``recognition-eval@<source>-<loss>`` write
RECOGNITION_RUNS = Path("outputs/recognition/runs")
#: the recognition report that renders Tables 2-4 (``recognition-report``)
RECOGNITION_REPORT = Path("outputs/recognition-report/report.md")


def recognition_runs(setting: Any) -> dict[str, dict[str, list[dict[str, float]]]]:
    """``runs[source][loss]`` (trials' eval metrics) from ``qdgs.faces.report.recognition``: a runs directory
    (``<source>/<loss>/eval/<trial>/metrics.json``, default :data:`RECOGNITION_RUNS`), or a mapping
    ``source -> directory of <loss>/eval/<trial>/metrics.json``; what is not there is left out."""
    if setting is None or setting == {}:
        setting = RECOGNITION_RUNS
    if isinstance(setting, str | Path):
        return read_runs(Path(setting))[0] if Path(setting).is_dir() else {}
    if not isinstance(setting, Mapping):
        raise ValueError(f"qdgs.faces.report.recognition: expected a directory or a mapping, got {setting!r}")
    out: dict[str, dict[str, list[dict[str, float]]]] = {}
    for source, directory in setting.items():
        found = [p for p in Path(directory).glob("*/eval/*/metrics.json") if p.parent.name.isdigit()]
        for path in sorted(found, key=lambda p: (p.parents[2].name, int(p.parent.name))):
            loss = path.parents[2].name
            out.setdefault(str(source), {}).setdefault(loss, []).append(json.loads(path.read_text()))
    return out


def recognition_lines(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The report's recognition section: the pretraining verdicts of ``runs`` and where Tables 2-4 are."""
    verdicts = pretraining_verdicts(runs)
    if not verdicts:
        return [
            "- not run: `dvc repro recognition-eval` (sources recognition.pretrain.run = none, rand, qd) writes "
            "the runs qdgs.faces.report.recognition points to"
        ]
    missing = sorted({"none", "rand", "qd"} - set(runs))
    note = [f"- sources not run: {', '.join(missing)}"] if missing else []
    return [
        f"Tables 2-4 (mean ± s.e. over trials) are in {RECOGNITION_REPORT} (`fp recognition report`).",
        "",
        *note,
        *(f"- {v.text}" for v in verdicts),
    ]


def report_stage(*, params_path: Path) -> Path:
    """Write ``outputs/qdgs-faces-report`` (report.md, summary.json, Fig. 4)."""
    from fp_core.atomic import write_json, write_text
    from fp_pipeline.stages.qdgs_faces_attributes import load_attribute_net, predict_attributes

    params, faces = faces_params(params_path)
    net = load_attribute_net(ATTRIBUTES_DIR)
    accuracy = json.loads((ATTRIBUTES_DIR / "accuracy.json").read_text(encoding="utf-8"))["attributes"]
    images, measures, predicted, runs = {}, {}, {}, {}
    for method in METHODS:
        solutions = read_solutions(SOLUTIONS_DIR / f"{method}.npz")
        runs[method] = json.loads((RUNS_DIR / f"{method}.json").read_text(encoding="utf-8"))
        images[method] = _decode(solutions["latents"])
        measures[method] = solutions["measures"].numpy()
        predicted[method] = predict_attributes(net, images[method]).numpy()
    common = common_set_sizes(SOLUTIONS_DIR)
    rows = table1_rows(predicted, common)
    root, order = Path(section(params, "data.root")), str(section(params, "data.label_order"))
    train = labelled_faces(root, "train", net.image_size, order)["labels"]
    truth = {a: proportion(train[a][train[a] >= 0].numpy()) for a in MEASURE_NAMES}
    largest = max(common, key=lambda k: common[k])
    dark = proportion_verdict(rows[f"QD{largest}"]["skin"], rows[f"Rand{largest}"]["skin"])
    recognition = recognition_runs((faces.get("report") or {}).get("recognition"))
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
        *recognition_lines(recognition),
    ]
    summary = {
        "table1": {name: {a: s.mean for a, s in row.items()} for name, row in rows.items()},
        "ground_truth": {a: s.mean for a, s in truth.items()},
        "dark_share_verdict": dark,
        "coverage": {m: runs[m]["coverage"] for m in METHODS},
        "recognition_verdicts": [v.text for v in pretraining_verdicts(recognition)],
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
