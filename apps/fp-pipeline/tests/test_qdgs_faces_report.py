"""The QDGS faces report's numbers and verdicts on hand-made inputs, and the small helpers of the faces stages."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fp_pipeline.config import ParamsError
from fp_pipeline.stages.qdgs_faces import auto_ranges, throttled
from fp_pipeline.stages.qdgs_faces_common import FACES_PROMPTS, read_solutions, set_sizes, write_solutions
from fp_pipeline.stages.qdgs_faces_export import chunk_edges
from fp_pipeline.stages.qdgs_faces_report import (
    proportion,
    proportion_verdict,
    recognition_lines,
    recognition_runs,
    table1_rows,
)
from fp_pipeline.stages.recognition_report import RAISED, MeanSE


def test_proportion_is_the_share_with_the_binomial_standard_error() -> None:
    p = proportion([1, 0, 0, 0])
    assert p.mean == 0.25 and p.n == 4
    assert p.se == pytest.approx(math.sqrt(0.25 * 0.75 / 4))
    assert math.isnan(proportion([]).mean)


def test_the_paper_headline_shares_are_a_detectable_rise_at_real_scale() -> None:
    # 9.4 % of 50,000 against 25.2 % of 50,000: far beyond 2 s.e.
    rand, qd = (
        MeanSE(0.094, math.sqrt(0.094 * 0.906 / 50000), 50000),
        MeanSE(0.252, math.sqrt(0.252 * 0.748 / 50000), 50000),
    )
    assert proportion_verdict(qd, rand).endswith("QD higher than Rand")
    # the same shares on 40 images each: 2 s.e. of the difference is ~0.17 > 0.158
    small_rand = proportion([1] * 4 + [0] * 36)  # 10 %
    small_qd = proportion([1] * 10 + [0] * 30)  # 25 %
    assert proportion_verdict(small_qd, small_rand).endswith("no detectable difference")


def test_table1_rows_use_nested_prefixes_of_each_set() -> None:
    qd = np.array([[1, 0, 0, 0]] * 2 + [[0, 1, 1, 1]] * 2)
    rand = np.zeros((4, 4), dtype=int)
    rows = table1_rows({"qd": qd, "rand": rand}, {"15": 2, "50": 4})
    assert set(rows) == {"QD15", "QD50", "Rand15", "Rand50"}
    assert rows["QD15"]["skin"].mean == 1.0 and rows["QD15"]["gender"].mean == 0.0
    assert rows["QD50"]["skin"].mean == 0.5 and rows["QD50"]["age"].mean == 0.5
    assert rows["Rand50"]["skin"].mean == 0.0


def test_the_recognition_verdicts_come_from_the_runs_directory(tmp_path: Path) -> None:
    for source, dark in (("qd", [0.80, 0.81, 0.82]), ("rand", [0.70, 0.71, 0.72])):
        for trial, value in enumerate(dark):
            out = tmp_path / source / "arcface" / "eval" / str(trial)
            out.mkdir(parents=True)
            (out / "metrics.json").write_text(json.dumps({"rfw/dark": value, "rfw/disparate_impact": 0.9}))
    runs = recognition_runs(str(tmp_path))
    assert sorted(runs) == ["qd", "rand"] and len(runs["qd"]["arcface"]) == 3
    assert [r["rfw/dark"] for r in runs["qd"]["arcface"]] == [0.80, 0.81, 0.82]  # in trial order
    assert recognition_runs({"qd": tmp_path / "qd"})["qd"]["arcface"] == runs["qd"]["arcface"]  # the mapping
    assert recognition_runs(str(tmp_path / "absent")) == {}
    lines = recognition_lines(runs)
    assert "outputs/recognition-report/report.md" in lines[0]
    assert "- sources not run: none" in lines
    assert any(line.startswith("- ArcFace, rfw/dark: QD 81.00") and line.endswith(RAISED) for line in lines)
    assert recognition_lines({})[0].startswith("- not run")


def test_faces_prompts_are_the_papers_sentences_in_measure_order() -> None:
    assert FACES_PROMPTS.measure_names == ("skin", "gender", "hair", "age")
    assert FACES_PROMPTS.measures[0] == (("A person with dark skin",), ("A person with light skin",))
    assert FACES_PROMPTS.measures[3] == (("A person in their 20s",), ("A person in their 50s",))
    assert FACES_PROMPTS.objective[0] == ("A detailed photo of an individual with diverse features.",)


def test_set_sizes_are_sorted_and_checked() -> None:
    assert list(set_sizes({"sets": {"50": 120, "15": 40}})) == ["15", "50"]
    for bad in ({}, {"15": 0}, {"15": True}, {"15": 2.5}):
        with pytest.raises(ParamsError, match="qdgs.faces.sets"):
            set_sizes({"sets": bad})


def test_solutions_round_trip(tmp_path: Path) -> None:
    latents, measures, objectives = torch.randn(5, 3), torch.randn(5, 4), torch.randn(5)
    back = read_solutions(write_solutions(tmp_path / "s.npz", latents, measures, objectives))
    assert torch.equal(back["latents"], latents) and torch.equal(back["measures"], measures)
    assert torch.equal(back["objectives"], objectives)
    with pytest.raises(FileNotFoundError, match="faces-sample"):
        read_solutions(tmp_path / "missing.npz")


def test_auto_ranges_are_the_quantiles_and_widen_flat_measures() -> None:
    m = torch.stack([torch.linspace(0, 1, 101), torch.full((101,), 0.5)], dim=1)
    ranges = auto_ranges(m, (0.1, 0.9))
    assert ranges[0] == pytest.approx([0.1, 0.9])
    assert ranges[1] == pytest.approx([0.499, 0.501])
    with pytest.raises(ParamsError, match="quantiles"):
        auto_ranges(m, (0.9, 0.1))


def test_auto_chunk_edges_split_each_measure_into_thirds() -> None:
    m = torch.stack([torch.arange(9.0), 10 + 3 * torch.arange(9.0), torch.zeros(9)], dim=1)
    scaled, edges = chunk_edges("auto", m)
    assert edges == (-1.0, 1.0)
    bins = np.searchsorted(np.array(edges), scaled[:, :2].numpy(), side="left")
    for j in range(2):  # three per third for both measures despite their different scales
        assert np.bincount(bins[:, j], minlength=3).tolist() == [3, 3, 3]
    assert torch.equal(scaled[:, 2], m[:, 2].double())
    same, fixed = chunk_edges([-0.03, 0.03], m)
    assert fixed == (-0.03, 0.03) and torch.equal(same, m.double())
    with pytest.raises(ParamsError, match="edges"):
        chunk_edges("thirds", m)


def test_throttled_log_keeps_epoch_means_and_every_nth_step() -> None:
    calls = []
    log = throttled(lambda metrics, step: calls.append((dict(metrics), step)), every=2)
    for step in range(1, 5):
        log({"vae/loss": float(step)}, step)
    log({"epoch/vae/loss": 9.0, "vae/loss": 5.0}, 5)
    assert calls == [({"vae/loss": 2.0}, 2), ({"vae/loss": 4.0}, 4), ({"epoch/vae/loss": 9.0}, 5)]
