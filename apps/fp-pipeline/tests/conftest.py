"""Fixtures the stage tests share: the working directory the stages write into (the in-process `fp` CLI is
``stage_cli.run_fp``, on the pytest pythonpath)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def stage_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``tmp_path`` as the working directory, with MLflow in ``tmp_path/mlflow.db`` and empty weight folders
    (``$FP_WEIGHTS_DIR``, ``$TORCH_HOME``), so nothing reads the user's caches; write ``params.yaml`` there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "no-weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    return tmp_path
