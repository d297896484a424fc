"""The report over seeds: mean ± s.e. cells, paired verdicts by the 2-s.e. rule, no verdict from one seed,
no credit for a collapsed variant, and the JSON summary."""

from __future__ import annotations

import math

import pytest

from fp_parsing.report import (
    BETTER,
    NO_CREDIT,
    NO_DIFFERENCE,
    ONE_SEED,
    VERDICT_RULE,
    WORSE,
    aggregate,
    aggregate_curves,
    aggregate_groups,
    compare_with_baseline,
    markdown_table,
    paired_verdict,
    render_report,
    seed_stat,
    summary,
)


def _run(miou: float, variance: float, drop: float, **extra: float) -> dict[str, float]:
    return {
        "miou": miou,
        "dice": miou + 0.1,
        "foreground_f1": miou + 0.15,
        "pixel_accuracy": 0.95,
        "fairness/variance_mean": variance,
        "fairness/Male/variance": variance,
        "fairness/Male/worst_miou": miou - 0.02,
        "robustness/blur/miou": miou - drop,
        "robustness/miou": miou - drop,
        "robustness/drop": drop,
        "robustness/kept": (miou - drop) / miou,
        "iou/background": 0.9,
        "iou/skin": miou,
        **extra,
    }


RUNS = {
    "single": {0: _run(0.80, 0.0010, 0.10), 1: _run(0.82, 0.0012, 0.12), 2: _run(0.78, 0.0011, 0.11)},
    # variance lower on every seed by about 0.0004: detectable; mIoU differences 0, -0.02, +0.01: not
    "linear": {0: _run(0.80, 0.0006, 0.08), 1: _run(0.80, 0.00081, 0.13), 2: _run(0.79, 0.00069, 0.09)},
    # mIoU higher by 0.01 on every seed but one: paired differences 0.01, 0.01, 0.012
    "mpd": {0: _run(0.81, 0.0015, 0.10), 1: _run(0.83, 0.0016, 0.12), 2: _run(0.792, 0.0011, 0.11)},
}


def test_markdown_table() -> None:
    assert markdown_table(["a", "b"], [["1", "2"]]) == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_seed_stat_mean_and_standard_error() -> None:
    stat = seed_stat({0: 1.0, 1: 2.0, 2: 4.0, 3: None, 4: float("nan")})
    assert stat.n == 3 and stat.mean == pytest.approx(7 / 3)
    # sample variance ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3; s.e. = sqrt(7/3 / 3)
    assert stat.se == pytest.approx(math.sqrt(7 / 9))
    assert stat.cell(2) == "2.33 ± 0.88"
    one = seed_stat({5: 0.5})
    assert one.n == 1 and math.isnan(one.se) and one.cell(2) == "0.50"
    assert seed_stat({}).cell() == "—"
    assert stat.as_dict() == {"mean": pytest.approx(7 / 3), "se": pytest.approx(math.sqrt(7 / 9)), "n": 3,
                              "per_seed": {"0": 1.0, "1": 2.0, "2": 4.0}}  # fmt: skip


def test_paired_verdict_rule() -> None:
    base = {0: 0.5, 1: 0.6, 2: 0.7}
    # the seeds vary a lot but every paired difference is +0.01: detectable although the means overlap
    up = paired_verdict({0: 0.51, 1: 0.61, 2: 0.71}, base, higher_is_better=True)
    assert (
        up.verdict == BETTER
        and up.stat.mean == pytest.approx(0.01)
        and up.stat.se == pytest.approx(0, abs=1e-12)
    )
    assert paired_verdict({0: 0.51, 1: 0.61, 2: 0.71}, base, higher_is_better=False).verdict == WORSE
    # differences +0.03, -0.01, +0.01: mean 0.01, s.e. 0.0115 -> |mean| < 2 s.e.
    noisy = paired_verdict({0: 0.53, 1: 0.59, 2: 0.71}, base)
    assert noisy.verdict == NO_DIFFERENCE
    assert noisy.stat.se == pytest.approx(math.sqrt(((0.02**2) * 2 + 0) / 2 / 3))
    # only the shared seeds pair up; one shared seed gives no verdict however large the difference
    assert paired_verdict({0: 0.9, 7: 0.1}, base).verdict == ONE_SEED
    assert sorted(paired_verdict({0: 0.9, 1: 0.9, 7: 0.1}, base).differences) == [0, 1]
    assert "no verdict" in paired_verdict({9: 0.9}, base).verdict


def test_comparisons_are_paired_differences_from_the_baseline() -> None:
    linear, mpd = compare_with_baseline(RUNS, "single")
    assert linear.variant == "linear" and not linear.collapsed
    assert linear.verdicts["fairness/variance_mean"].verdict == BETTER
    assert linear.verdicts["fairness/variance_mean"].stat.mean == pytest.approx(-0.0004)
    assert linear.verdicts["miou"].verdict == NO_DIFFERENCE
    assert mpd.verdicts["miou"].verdict == BETTER
    assert mpd.verdicts["fairness/variance_mean"].verdict == NO_DIFFERENCE  # +0.0005, +0.0004, 0
    assert mpd.miou_change == pytest.approx((0.01 + 0.01 + 0.012) / 3)
    with pytest.raises(KeyError, match="baseline"):
        compare_with_baseline(RUNS, "nope")


def test_report_cells_are_mean_and_standard_error() -> None:
    text = render_report(RUNS, figures=[("Fig. 5", "figures/robustness.png")])
    stats = aggregate(RUNS)
    assert stats["single"]["miou"].mean == pytest.approx(0.80)
    assert stats["single"]["miou"].se == pytest.approx(math.sqrt(0.0004 / 3))
    assert "3 seeds per variant" in text
    assert f"| single | 3 | 0.8000 ± {stats['single']['miou'].se:.4f} |" in text
    assert "| variant | Male |" in text and "Worst-group" in text
    assert "## Per-class IoU (cf. Table III)" in text and "| skin | 0.8000 ± 0.0115 |" in text
    assert VERDICT_RULE in text
    # linear's paired mIoU differences 0, -0.02, +0.01: mean -0.0033, s.e. 0.0088
    assert "| linear | no detectable difference (-0.0033 ± 0.0088) |" in text
    assert "1 of 2 multi-objective variants lowered the mean group variance (linear)" in text
    assert "![Fig. 5](figures/robustness.png)" in text


def test_one_seed_gives_no_verdict() -> None:
    runs = {v: {0: by_seed[0]} for v, by_seed in RUNS.items()}
    text = render_report(runs)
    assert "1 seed per variant" in text
    assert "| single | 1 | 0.8000 | 0.9000 |" in text  # no ± with one seed
    (linear, _) = compare_with_baseline(runs)
    assert all(v.verdict == ONE_SEED for v in linear.verdicts.values())
    assert "0 of 2 multi-objective variants lowered the mean group variance" in text


def test_a_collapsed_variant_gets_no_credit() -> None:
    runs = {
        "single": {s: _run(0.30 + 0.01 * s, 0.001, 0.05) for s in range(3)},
        "mpd": {s: _run(0.07 + 0.001 * s, 0.00001, 0.001) for s in range(3)},
        "linear": {s: _run(0.29 + 0.01 * s, 0.0005 + 0.00001 * s, 0.04) for s in range(3)},
    }
    mpd, linear = compare_with_baseline(runs)
    assert mpd.collapsed and not linear.collapsed
    assert mpd.verdicts["fairness/variance_mean"].verdict == NO_CREDIT
    assert mpd.verdicts["robustness/drop"].verdict == NO_CREDIT
    assert mpd.verdicts["miou"].verdict == WORSE
    assert "Its accuracy collapsed" in mpd.sentence()
    text = render_report(runs)
    assert "1 of 2 multi-objective variants lowered the mean group variance (linear)" in text
    assert "Its accuracy collapsed" in text
    assert summary(runs)["verdicts"]["mpd"]["collapsed"] is True


def test_summary_holds_means_standard_errors_and_per_seed_values() -> None:
    result = summary(RUNS)
    assert result["baseline"] == "single" and result["rule"] == VERDICT_RULE
    assert result["seeds"] == {"single": [0, 1, 2], "linear": [0, 1, 2], "mpd": [0, 1, 2]}
    miou = result["variants"]["single"]["miou"]
    assert miou["per_seed"] == {"0": 0.80, "1": 0.82, "2": 0.78} and miou["n"] == 3
    assert miou["mean"] == pytest.approx(0.80) and miou["se"] == pytest.approx(math.sqrt(0.0004 / 3))
    verdict = result["verdicts"]["linear"]["fairness/variance_mean"]
    assert verdict["verdict"] == BETTER and verdict["seeds"] == [0, 1, 2]
    assert verdict["mean_difference"] == pytest.approx(-0.0004)


def test_curves_and_group_bars_over_seeds() -> None:
    curves = aggregate_curves(
        {
            0: {"blur": {"severity": [0.0, 1.0], "miou": [0.8, 0.4]}},
            1: {"blur": {"severity": [0.0, 1.0], "miou": [0.7, 0.6]}},
        }
    )
    assert curves["blur"]["miou"] == pytest.approx([0.75, 0.5])
    assert curves["blur"]["miou_se"] == pytest.approx([0.05, 0.1])
    with pytest.raises(ValueError, match="different severities"):
        aggregate_curves(
            {0: {"blur": {"severity": [0, 1], "miou": [1, 1]}}, 1: {"blur": {"severity": [0], "miou": [1]}}}
        )
    means, ses = aggregate_groups({0: {"Male=present": 0.6}, 1: {"Male=present": 0.8, "Male=absent": 0.5}})
    assert means == pytest.approx({"Male=present": 0.7, "Male=absent": 0.5})
    assert ses == pytest.approx({"Male=present": 0.1, "Male=absent": 0.0})
