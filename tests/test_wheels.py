"""`uv build --all-packages` builds a wheel per package, and each wheel imports alone in a clean venv.

"Alone" means: a fresh virtual environment with only that wheel, its declared third-party dependencies
(from the package index / uv cache) and its workspace dependencies taken from their own wheels.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv")
MEMBERS = sorted([*ROOT.glob("packages/fp-*/pyproject.toml"), *ROOT.glob("apps/fp-*/pyproject.toml")])


def _project(pyproject: Path) -> dict:
    return tomllib.loads(pyproject.read_text())["project"]


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if UV is None:
        pytest.skip("uv is not on PATH")
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [UV, "build", "--all-packages", "--wheel", "--out-dir", str(out), "--quiet"], cwd=ROOT, check=True
    )
    return out


def test_every_member_builds_a_wheel(wheel_dir: Path) -> None:
    built = {path.name.split("-")[0] for path in wheel_dir.glob("*.whl")}
    expected = {_project(path)["name"].replace("-", "_") for path in MEMBERS}
    assert expected == built
    assert len(expected) == 8
    assert "fp_core" in built


# The app pulls every package plus mlflow and dvc; the per-library checks are the ones that matter here.
LIBRARIES = [path for path in MEMBERS if "packages" in path.parts]


@pytest.mark.parametrize("pyproject", LIBRARIES, ids=[path.parent.name for path in LIBRARIES])
def test_each_library_wheel_imports_alone(wheel_dir: Path, tmp_path: Path, pyproject: Path) -> None:
    project = _project(pyproject)
    name = project["name"]
    module = name.replace("-", "_")
    venv = tmp_path / "venv"
    subprocess.run([UV, "venv", "--quiet", "--python", "3.11", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Workspace dependencies come from their own wheels, named explicitly so no index can substitute them.
    needed = {name} | _transitive_fp({name})
    wheels = [str(next(wheel_dir.glob(f"{dep.replace('-', '_')}-*.whl"))) for dep in sorted(needed)]
    install = subprocess.run(
        [UV, "pip", "install", "--quiet", "--python", str(python), *wheels],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    # Nothing from the workspace beyond what the package declares may be present.
    frozen = subprocess.run(
        [UV, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout
    installed_fp = {
        line.split("==")[0].split(" @ ")[0] for line in frozen.splitlines() if line.startswith("fp-")
    }
    assert installed_fp == needed
    check = subprocess.run(
        [str(python), "-c", f"import {module}; print({module}.__all__)"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
    # mlflow / dvc never come with a library; diffusers only with fp-diffusion, which builds on it.
    forbidden = ("mlflow", "dvc==") if name == "fp-diffusion" else ("mlflow", "dvc==", "diffusers")
    assert not any(line.startswith(forbidden) for line in frozen.splitlines())


def test_fp_core_is_checked_alone() -> None:
    """fp-core is one of the libraries checked above and declares no workspace dependency: its clean venv
    holds fp-core alone, so importing it there proves it needs no other fp package."""
    core = next(path for path in LIBRARIES if path.parent.name == "fp-core")
    assert _transitive_fp({"fp-core"}) == set()
    assert not [dep for dep in _project(core).get("dependencies", []) if dep.startswith("fp-")]


def _transitive_fp(names: set[str]) -> set[str]:
    found: set[str] = set()
    by_name = {_project(path)["name"]: _project(path) for path in MEMBERS}
    stack = list(names)
    while stack:
        current = by_name[stack.pop()]
        for dep in current.get("dependencies", []):
            dep_name = dep.split("[")[0]
            if dep_name.startswith("fp-") and dep_name not in found:
                found.add(dep_name)
                stack.append(dep_name)
    return found
