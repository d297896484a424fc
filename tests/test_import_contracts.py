"""The layering contracts in the root pyproject bind: the real tree passes, each kind of violation fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
SOURCES = {
    "fp_pipeline": ROOT / "apps/fp-pipeline/src/fp_pipeline",
    **{path.name: path for path in (ROOT / "packages").glob("fp-*/src/fp_*") if path.is_dir()},
}


def _lint(pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="250")
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture()
def source_copy(tmp_path: Path) -> Path:
    """A copy of every package's source on one directory that shadows the installed workspace."""
    for name, path in SOURCES.items():
        shutil.copytree(path, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_all_eight_packages_are_covered() -> None:
    assert set(SOURCES) == {
        "fp_pipeline",
        "fp_parsing",
        "fp_recognition",
        "fp_qdgs",
        "fp_diffusion",
        "fp_metrics",
        "fp_gradagg",
        "fp_core",
    }


def test_the_real_tree_keeps_every_contract() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_unmodified_copy_keeps_every_contract(source_copy: Path) -> None:
    result = _lint(source_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("importer", "imported", "broken_contract"),
    [
        ("fp_metrics", "fp_parsing", "Layers"),  # bottom importing the middle
        ("fp_gradagg", "fp_pipeline", "Layers"),  # bottom importing the app
        ("fp_metrics", "fp_gradagg", "Layers"),  # the two bottom packages are independent
        ("fp_qdgs", "fp_recognition", "Layers"),  # middle siblings are independent
        ("fp_parsing", "fp_diffusion", "Layers"),
        ("fp_parsing", "fp_pipeline", "Layers"),  # a library importing the app
        ("fp_parsing", "mlflow", "Libraries never import"),  # tracking only in the app
        ("fp_metrics", "dvc", "Libraries never import"),
        ("fp_core", "fp_metrics", "Layers"),  # fp-core is below every other package
        ("fp_core", "fp_parsing", "Layers"),
        ("fp_core", "mlflow", "Libraries never import"),
    ],
)
def test_a_deliberate_violation_breaks_the_check(
    source_copy: Path, importer: str, imported: str, broken_contract: str
) -> None:
    (source_copy / importer / "_violation.py").write_text(f"import {imported}  # deliberate\n")
    result = _lint(source_copy)
    assert result.returncode != 0, f"{importer} -> {imported} was not caught:\n{result.stdout}"
    broken = [line for line in result.stdout.splitlines() if line.rstrip().endswith("BROKEN")]
    assert any(line.startswith(broken_contract) for line in broken), result.stdout
    assert f"{importer}._violation -> {imported}" in result.stdout
