from __future__ import annotations

from pathlib import Path

import pytest

from fp_pipeline.config import ParamsError, deep_merge, flatten, load_params, section


def test_load_params_names_the_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match=r"nope\.yaml not found"):
        load_params(tmp_path / "nope.yaml")


def test_load_params_rejects_a_non_mapping(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ParamsError, match="must hold a mapping"):
        load_params(path)


def test_section_walks_dotted_keys_and_names_the_missing_one() -> None:
    params = {"parsing": {"train": {"epochs": 3}}}
    assert section(params, "parsing.train.epochs") == 3
    with pytest.raises(ParamsError, match=r"'parsing\.eval'"):
        section(params, "parsing.eval.batch_size")


def test_section_returns_a_copy() -> None:
    params = {"a": {"b": [1]}}
    section(params, "a")["b"].append(2)
    assert params == {"a": {"b": [1]}}


def test_deep_merge_merges_mappings_and_replaces_the_rest() -> None:
    base = {"schedule": {"kind": "constant", "start": [1, 0, 0]}, "epochs": 3, "list": [1, 2]}
    merged = deep_merge(base, {"schedule": {"kind": "linear"}, "list": [3]})
    assert merged == {"schedule": {"kind": "linear", "start": [1, 0, 0]}, "epochs": 3, "list": [3]}
    assert base["schedule"]["kind"] == "constant"


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": None}}, "e": {}}) == {"a.b": 1, "a.c.d": None, "e": {}}
