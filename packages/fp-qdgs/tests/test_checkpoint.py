from __future__ import annotations

import json

import numpy as np

from fp_qdgs import QDGSSampler, SamplerConfig, load_checkpoint
from fp_qdgs.checkpoint import archive_arrays, load_archive, save_archive
from fp_qdgs.toy import LinearSigmoidGenerator, SphereScorer


def _sampler(tmp_path=None):
    config = SamplerConfig(
        measure_dims=(6, 6), measure_ranges=((-10, 10), (-10, 10)), batch_size=8, iterations=4, x0_samples=16
    )
    return QDGSSampler(LinearSigmoidGenerator(), SphereScorer(20), config, checkpoint_dir=tmp_path)


def test_archives_round_trip_with_thresholds(tmp_path):
    sampler = _sampler(tmp_path)
    sampler.run()
    search, result, state, scorer_state = load_checkpoint(tmp_path)
    for saved, live in ((search, sampler.search_archive), (result, sampler.result_archive)):
        a, b = archive_arrays(saved), archive_arrays(live)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
        assert saved.stats.num_elites == live.stats.num_elites
        assert np.isclose(saved.stats.qd_score, live.stats.qd_score)
        assert float(saved.learning_rate) == float(live.learning_rate)
        assert float(saved.threshold_min) == float(live.threshold_min)
    # CMA-MAE thresholds lag the objectives; the result archive's equal them
    s = archive_arrays(search)
    assert np.all(s["threshold"] <= s["objective"]) and np.any(s["threshold"] < s["objective"])
    r = archive_arrays(result)
    np.testing.assert_array_equal(r["threshold"], r["objective"])
    assert state["iteration"] == 4 and scorer_state == {}


def test_files_are_npz_and_json_without_pickle(tmp_path):
    sampler = _sampler(tmp_path)
    sampler.run()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.npz", "search.npz", "state.json"]
    with np.load(tmp_path / "search.npz", allow_pickle=False) as data:
        assert set(data.files) == {"solution", "objective", "measures", "threshold", "index"}
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["config"]["measure_dims"] == [6, 6]
    assert not list(tmp_path.parent.glob(f".{tmp_path.name}.*"))  # no temporary left behind


def test_save_and_load_a_single_archive(tmp_path):
    sampler = _sampler()
    sampler.run()
    path = save_archive(sampler.search_archive, tmp_path / "a.npz")
    from fp_qdgs.checkpoint import archive_settings

    loaded = load_archive(path, archive_settings(sampler.search_archive))
    np.testing.assert_array_equal(
        archive_arrays(loaded)["threshold"], archive_arrays(sampler.search_archive)["threshold"]
    )
    # the restored archive keeps working: an add that beats a threshold goes in
    data = archive_arrays(loaded)
    info = loaded.add(data["solution"][:1], data["threshold"][:1] + 1.0, data["measures"][:1])
    assert info["status"][0] == 1
