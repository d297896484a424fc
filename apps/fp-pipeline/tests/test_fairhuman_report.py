"""The FairHuman report: exact MPD-vs-LS verdicts on hand-made numbers, one-seed vs multi-seed standard errors,
Tables 2-5 from fake eval files in the schema, the missing-file error, and the whole stage's outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from fp_pipeline.config import ParamsError, load_params
from fp_pipeline.stages.fairhuman_report import (
    Estimate,
    Variant,
    compare,
    estimate,
    headline,
    load_variants,
    markdown_table,
    module_verdict,
    table2_rows,
    table3_rows,
    table4_rows,
    table5_rows,
)

UNAVAILABLE = {
    "hps_v2": "unavailable: place HPS_v2_compressed.pt at /w/HPS_v2_compressed.pt",
    "image_reward": "unavailable: place ImageReward.pt at /w/ImageReward.pt",
    "mediapipe": "unavailable: mediapipe is not installed",
}


def _metrics(**values: float) -> dict[str, float]:
    """A metrics.json in the schema: defaults, overridden by ``values``."""
    out = {
        "clip_score": 0.30,
        "clip_score_se": 0.01,
        "fd_global": 10.0,
        "fd_global_se": 0.5,
        "fd_face": 20.0,
        "fd_face_se": 0.5,
        "fd_hand": 30.0,
        "fd_hand_se": 0.5,
        "seconds_per_image": 0.2,
        "base_seconds_per_image": 0.1,
        "speed_ratio": 2.0,
        "extra_parameters": 1000.0,
        "extra_megabytes": 0.004,
        "train_loss_global": 0.1,
        "train_loss_face": 0.2,
        "train_loss_hand": 0.3,
        "weight_global": 1.0,
        "weight_face": 1.0,
        "weight_hand": 1.0,
    }
    return out | values


def _variant(name: str, runs: list[dict[str, float]], rank: int | None = 4) -> Variant:
    module, weighting = name.split("-")[0], name.split("-")[1]
    return Variant(
        name, module, weighting, rank if module == "lora" else None, tuple(runs), ({},) * len(runs)
    )


# -- estimates and verdicts on hand-made numbers --------------------------------------------------------------


def test_one_seed_uses_the_within_run_se_and_several_seeds_the_se_over_seeds() -> None:
    one = estimate([_metrics(fd_face=20.0, fd_face_se=0.7)], "fd_face")
    assert one == Estimate(20.0, 0.7, 1, "within-run")
    three = estimate([_metrics(fd_face=v, fd_face_se=0.01) for v in (1.0, 2.0, 3.0)], "fd_face")
    assert three.mean == pytest.approx(2.0) and three.se == pytest.approx(1.0 / math.sqrt(3))
    assert (three.n, three.kind) == (3, "seeds")
    assert estimate([{"fd_face": 5.0}], "fd_face").se is None  # no _se key: no standard error
    assert estimate([{"fd_face": 5.0, "fd_face_se": math.nan}], "fd_face").se is None
    assert one.cell() == "20 ± 0.7" and Estimate(3.0, None, 1, "within-run").cell() == "3"


def test_compare_says_improved_worsened_or_no_difference_at_two_standard_errors() -> None:
    ls = Estimate(12.0, 0.5, 1, "within-run")
    better = compare(Estimate(10.0, 0.5, 1, "within-run"), ls, higher_better=False)
    assert better["outcome"] == "improved"
    assert better["difference"] == pytest.approx(-2.0) and better["se"] == pytest.approx(math.sqrt(0.5))
    assert compare(Estimate(14.0, 0.5, 1, "within-run"), ls, higher_better=False)["outcome"] == "worsened"
    # |difference| 1.4 < 2 * sqrt(0.5) = 1.414: not detectable
    assert compare(Estimate(10.6, 0.5, 1, "within-run"), ls, higher_better=False)["outcome"] == (
        "no detectable difference"
    )
    # higher is better (CLIP score): a higher MPD is an improvement, a lower one worse
    clip_ls = Estimate(0.30, 0.01, 1, "within-run")
    assert (
        compare(Estimate(0.33, 0.01, 1, "within-run"), clip_ls, higher_better=True)["outcome"] == "improved"
    )
    assert (
        compare(Estimate(0.27, 0.01, 1, "within-run"), clip_ls, higher_better=True)["outcome"] == "worsened"
    )
    none = compare(Estimate(1.0, None, 1, "within-run"), ls, higher_better=False)
    assert none["outcome"] == "no verdict (no standard error)" and none["se"] is None


def test_module_verdict_holds_only_when_face_and_hand_improve_and_global_is_not_hurt() -> None:
    ls = _variant("lora-ls", [_metrics()])
    good = _variant("lora-mpd", [_metrics(fd_face=18.0, fd_hand=27.0, fd_global=10.5, clip_score=0.29)])
    verdict = module_verdict(good, ls)
    m = verdict["metrics"]
    assert [m[k]["outcome"] for k in ("fd_face", "fd_hand")] == ["improved", "improved"]
    # global 0.5 higher (2 s.e. = 1.41) and CLIP 0.01 lower (2 s.e. = 0.028): not hurt
    assert (m["fd_global"]["hurt"], m["clip_score"]["hurt"]) == (False, False)
    assert verdict["claim_holds"] is True
    text = headline("lora", verdict)
    assert text.startswith("**LoRA: yes**") and "FD face improved (MPD − LS = -2 ± 0.71, 2.8 s.e.)" in text
    assert "FD global not hurt" in text

    hurt = _variant("lora-mpd", [_metrics(fd_face=18.0, fd_hand=27.0, fd_global=12.0)])
    verdict = module_verdict(hurt, ls)
    assert verdict["metrics"]["fd_global"]["hurt"] is True and verdict["claim_holds"] is False
    assert headline("lora", verdict).startswith("**LoRA: no**")
    assert "FD global hurt: worse beyond 2 s.e." in headline("lora", verdict)

    only_face = module_verdict(_variant("lora-mpd", [_metrics(fd_face=18.0, fd_hand=31.0)]), ls)
    assert only_face["metrics"]["fd_hand"]["outcome"] == "no detectable difference"
    assert only_face["claim_holds"] is False


def test_the_same_means_can_be_a_difference_with_one_seed_and_none_with_several() -> None:
    # one seed: within-run s.e. 0.5 each, difference -2 -> improved
    one = module_verdict(
        _variant("controlnet-mpd", [_metrics(fd_face=18.0)]), _variant("controlnet-ls", [_metrics()])
    )
    assert one["metrics"]["fd_face"]["outcome"] == "improved"
    assert one["metrics"]["fd_face"]["mpd"]["se_kind"] == "within-run"
    # three seeds with the same means but seed-to-seed spread of 2: s.e. 2/sqrt(3) each, 2 s.e. of the
    # difference 2 * sqrt(8/3) = 3.27 > 2 -> no detectable difference
    mpd = _variant("controlnet-mpd", [_metrics(fd_face=v) for v in (16.0, 18.0, 20.0)])
    ls = _variant("controlnet-ls", [_metrics(fd_face=v) for v in (18.0, 20.0, 22.0)])
    several = module_verdict(mpd, ls)["metrics"]["fd_face"]
    assert several["outcome"] == "no detectable difference"
    assert several["se"] == pytest.approx(math.sqrt(8.0 / 3.0)) and several["mpd"]["se_kind"] == "seeds"


# -- tables from fake eval files -------------------------------------------------------------------------------

RUN = ["lora-global_only", "lora-ls", "lora-mpd", "controlnet-global_only", "controlnet-ls", "controlnet-mpd"]


def _variants_params(names: list[str]) -> dict[str, Any]:
    out = {}
    for name in names:
        parts = name.split("-")
        entry: dict[str, Any] = {"module": parts[0], "weighting": parts[1]}
        if len(parts) == 3:
            entry["lora_rank"] = int(parts[2][1:])
        out[name] = entry
    return out


def _write_fixture(root: Path, names: list[str], seeds: list[int], overrides: dict[str, Any]) -> Path:
    """params.yaml plus ``outputs/fairhuman/runs/<v>/eval/seed-<s>/{metrics,evaluation}.json`` and the base."""
    params = {"fairhuman": {"seeds": seeds, "run": names, "variants": _variants_params(names)}}
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    for name in names:
        module, weighting = name.split("-")[:2]
        rank = int(name.split("-r")[1]) if "-r" in name else (8 if module == "lora" else None)
        for i, seed in enumerate(seeds):
            folder = root / "outputs/fairhuman/runs" / name / "eval" / f"seed-{seed}"
            folder.mkdir(parents=True)
            values = overrides.get(name, {})
            metrics = _metrics(**{k: (v[i] if isinstance(v, list) else v) for k, v in values.items()})
            (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
            evaluation = {
                "variant": name,
                "module": module,
                "weighting": weighting,
                "seed": seed,
                "lora_rank": rank,
                "images": 16,
                "features": "CLIP-FD (embedded face CLIP)",
                "fd_floor": {"global": 1.5, "face": 2.5, "hand": 3.5},
                "unavailable": UNAVAILABLE,
            }
            (folder / "evaluation.json").write_text(json.dumps(evaluation), encoding="utf-8")
    base = {
        k: v
        for k, v in _metrics(fd_face=25.0, speed_ratio=1.0).items()
        if not k.startswith(("train_", "weight_"))
    }
    (root / "outputs/fairhuman/base-eval").mkdir(parents=True)
    (root / "outputs/fairhuman/base-eval/metrics.json").write_text(json.dumps(base), encoding="utf-8")
    return root / "params.yaml"


@pytest.fixture
def workdir(stage_workdir: Path) -> Path:
    return stage_workdir


def test_tables_from_fake_metrics_files(workdir: Path) -> None:
    names = [*RUN, "lora-dwa", "lora-nash_mtl"]
    overrides = {
        "lora-mpd": {"fd_face": [17.0, 19.0], "weight_face": 2.0},
        "controlnet-ls": {"speed_ratio": [3.0, 5.0], "extra_parameters": 5000.0},
        "controlnet-mpd": {"speed_ratio": [4.0, 4.0], "extra_parameters": 5000.0},
        "controlnet-global_only": {"extra_parameters": 5000.0},
    }
    params = load_params(_write_fixture(workdir, names, [0, 1], overrides))
    variants = load_variants(params)
    assert variants["lora-mpd"].lora_rank == 8 and variants["controlnet-mpd"].lora_rank is None
    base = json.loads(Path("outputs/fairhuman/base-eval/metrics.json").read_text())
    rows = table2_rows(variants, base, {"global": 1.5, "face": 2.5, "hand": 3.5})
    assert [r["row"] for r in rows] == [
        "base alone",
        "LoRA global only",
        "LoRA LS",
        "LoRA MPD",
        "ControlNet global only",
        "ControlNet LS",
        "ControlNet MPD",
        "real vs real (floor)",
    ]
    assert rows[0]["fd_face"] == Estimate(25.0, 0.5, 1, "within-run")  # the base alone: always within-run
    assert rows[3]["fd_face"].mean == pytest.approx(18.0) and rows[3]["fd_face"].se == pytest.approx(1.0)
    assert rows[3]["hps_v2"] == "unavailable" and rows[-1]["fd_hand"].mean == 3.5
    text = "\n".join(markdown_table(rows, {"fd_face": "FD face", "hps_v2": "HPS"}, "method"))
    assert "| LoRA MPD | 18 ± 1 | unavailable |" in text and "| real vs real (floor) | 2.5 | n/a |" in text

    table5 = table5_rows(variants)
    assert [r["row"] for r in table5] == [
        "LoRA global only",
        "LoRA LS",
        "LoRA DWA",
        "LoRA Nash-MTL",
        "LoRA MPD",
        "ControlNet global only",
        "ControlNet LS",
        "ControlNet MPD",
    ]
    assert table5[4]["weight_face"].mean == 2.0 and table5[4]["weight_face"].se == 0.0
    assert table3_rows(variants) == []  # one rank only

    table4 = {r["row"]: r for r in table4_rows(variants, base)}
    assert list(table4) == ["base alone", "LoRA (rank 8)", "ControlNet"]
    cn = table4["ControlNet"]
    # pooled over the 3 ControlNet variants x 2 seeds: speed ratios 2, 2, 3, 5, 4, 4
    assert cn["runs"] == 6 and cn["speed_ratio"].mean == pytest.approx(20.0 / 6.0)
    assert cn["speed_ratio"].kind == "runs" and cn["extra_parameters"].mean == 5000.0
    assert table4["base alone"]["seconds_per_image"].mean == pytest.approx(0.2)


def test_table3_appears_with_two_lora_ranks(workdir: Path) -> None:
    names = ["lora-ls", "lora-mpd", "lora-mpd-r64"]
    overrides = {"lora-mpd-r64": {"extra_parameters": 64000.0, "fd_hand": 25.0}}
    variants = load_variants(load_params(_write_fixture(workdir, names, [0], overrides)))
    rows = table3_rows(variants)
    assert [r["row"] for r in rows] == ["rank 8", "rank 64"]
    assert rows[1]["extra_parameters"].mean == 64000.0 and rows[1]["fd_hand"] == Estimate(
        25.0, 0.5, 1, "within-run"
    )
    assert [r["row"] for r in table5_rows(variants)] == [
        "LoRA LS",
        "LoRA MPD",
    ]  # rank rows stay out of Table 5


def test_a_missing_run_file_names_it_and_the_command(workdir: Path) -> None:
    params_path = _write_fixture(workdir, ["lora-ls", "lora-mpd"], [0, 1], {})
    missing = Path("outputs/fairhuman/runs/lora-mpd/eval/seed-1/metrics.json")
    missing.unlink()
    with pytest.raises(ParamsError, match=r"lora-mpd/eval/seed-1/metrics\.json is missing") as info:
        load_variants(load_params(params_path))
    assert "`fp fairhuman eval --variant lora-mpd --seed 1`" in str(info.value)
    Path("outputs/fairhuman/runs/lora-ls/eval/seed-0/metrics.json").write_text('{"clip_score": 1}')
    with pytest.raises(ParamsError, match="lacks"):
        load_variants(load_params(params_path))


def test_a_run_variant_must_be_defined(workdir: Path) -> None:
    params = load_params(_write_fixture(workdir, ["lora-ls"], [0], {}))
    params["fairhuman"]["run"] = ["lora-ls", "lora-uw"]
    with pytest.raises(ParamsError, match="'lora-uw'"):
        load_variants(params)


class _FakeRun:
    """Stands in for :class:`fp_pipeline.tracking.StageRun` (no MLflow store: the fast test)."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}
        self.artifacts: list[str] = []

    def __call__(self, metrics: dict[str, float], step: int) -> None:
        self.metrics.update(metrics)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self.artifacts.append(artifact_file)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.artifacts.append(str(path))


def test_report_stage_writes_the_report_summary_and_figures(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib

    from fp_pipeline.stages import fairhuman_report
    from fp_pipeline.stages.fairhuman_report import report_stage

    fake = _FakeRun()
    monkeypatch.setattr(fairhuman_report, "stage_run", lambda *a, **k: contextlib.nullcontext(fake))
    overrides = {
        "lora-mpd": {"fd_face": 18.0, "fd_hand": 27.0, "weight_face": 3.0},  # claim holds (one seed)
        "controlnet-mpd": {"fd_face": 18.0, "fd_global": 12.0},  # face better, hand same, global hurt
    }
    report = report_stage(params_path=_write_fixture(workdir, RUN, [0], overrides), progress=False)
    text = report.read_text(encoding="utf-8")
    assert "one training seed (0)" in text and "HPS v2: unavailable: place HPS_v2_compressed.pt" in text
    assert "**LoRA: yes**" in text and "**ControlNet: no**" in text
    assert "Only one LoRA rank was run" in text and "## Table 4" in text
    summary = json.loads((workdir / "outputs/fairhuman-report/summary.json").read_text(encoding="utf-8"))
    assert summary["se_kind"] == "within-run" and summary["fd_floor"] == {
        "global": 1.5,
        "face": 2.5,
        "hand": 3.5,
    }
    cn = summary["verdicts"]["controlnet"]
    assert cn["claim_holds"] is False and cn["metrics"]["fd_global"]["hurt"] is True
    assert cn["metrics"]["fd_hand"]["outcome"] == "no detectable difference"
    assert summary["verdicts"]["lora"]["claim_holds"] is True
    row = next(r for r in summary["tables"]["table2"] if r["row"] == "LoRA MPD")
    assert row["fd_face"] == {"mean": 18.0, "se": 0.5, "n": 1, "se_kind": "within-run"}
    for name in ("fd.png", "weights.png"):
        assert (workdir / "outputs/fairhuman-report/figures" / name).stat().st_size > 1000
    assert fake.metrics == {"claim_holds_lora": 1.0, "claim_holds_controlnet": 0.0}
    assert "plots/fd.png" in fake.artifacts
    Path("outputs/fairhuman/base-eval/metrics.json").unlink()
    with pytest.raises(ParamsError, match="base-eval/metrics.json is missing"):
        report_stage(params_path=workdir / "params.yaml", progress=False)


@pytest.mark.slow
def test_report_stage_is_one_tracked_mlflow_run(workdir: Path) -> None:
    import mlflow

    from fp_pipeline.stages.fairhuman_report import report_stage

    report_stage(params_path=_write_fixture(workdir, RUN, [0, 1], {}), progress=True)
    runs = mlflow.search_runs(experiment_names=["fp"], output_format="list")
    assert [r.info.run_name for r in runs] == ["fairhuman-report"]
    assert runs[0].data.tags["fp.paper"] == "fairhuman"
    assert runs[0].data.metrics == {"claim_holds_lora": 0.0, "claim_holds_controlnet": 0.0}
