"""Every dvc.yaml stage lists what its command reads: the source of each fp package the command imports
(transitively) and the app module holding its stage function. A stage that misses one would not rerun when
that code changes, and `dvc repro` would report stale results as up to date."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = {
    "fp_pipeline": "apps/fp-pipeline/src/fp_pipeline",
    **{
        path.name: str(path.relative_to(ROOT))
        for path in (ROOT / "packages").glob("fp-*/src/fp_*")
        if path.is_dir()
    },
}
LIBRARIES = sorted(name for name in SOURCE_DIRS if name != "fp_pipeline")


@cache
def _graph():
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph(*SOURCE_DIRS)


def _command_target(argv: list[str]) -> tuple[str, str]:
    """``fp parsing train ...`` -> (stage module, stage function) that the typer command calls."""
    import typer.main

    from fp_pipeline.cli import app

    group = typer.main.get_group(app)
    command = group
    for word in argv[1:]:
        if word.startswith("-") or not hasattr(command, "commands") or word not in command.commands:
            break
        command = command.commands[word]
    source = inspect.getsource(command.callback)
    match = re.search(r"from (fp_pipeline\.stages\.\w+) import (\w+)", source)
    assert match, f"command {' '.join(argv)} does not call a stage function"
    return match.group(1), match.group(2)


def _imports_of_function(module_name: str, function: str) -> set[str]:
    """Modules imported at the top of ``module_name`` and inside ``function``."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    nodes = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            nodes += [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in SOURCE_DIRS}


def _packages_read(module_name: str, function: str) -> tuple[set[str], set[str]]:
    """(fp libraries, app modules) the stage function reads, following imports transitively."""
    graph = _graph()
    modules = {m for m in _imports_of_function(module_name, function) if m in graph.modules}
    closure = set(modules)
    for name in modules:
        closure |= graph.find_upstream_modules(name)
    libraries = {m.split(".")[0] for m in closure} - {"fp_pipeline"}
    app_modules = {m for m in closure | {module_name} if m.startswith("fp_pipeline.")}
    return libraries, app_modules


def _stages() -> list[tuple[str, dict]]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
    return list(spec["stages"].items())


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


def _module_path(module: str) -> str:
    package, _, rest = module.partition(".")
    base = SOURCE_DIRS[package]
    candidate = ROOT / base / (rest.replace(".", "/") + ".py")
    if candidate.is_file():
        return str(candidate.relative_to(ROOT))
    return str((ROOT / base / rest.replace(".", "/")).relative_to(ROOT))


IGNORED_APP_MODULES = {"fp_pipeline.config", "fp_pipeline.tracking", "fp_pipeline.cli", "fp_pipeline.errors"}


@pytest.mark.parametrize(("name", "stage"), _stages(), ids=[name for name, _ in _stages()])
def test_stage_deps_cover_the_code_it_runs(name: str, stage: dict) -> None:
    argv = stage["cmd"].split()
    assert argv[0] == "fp", f"{name}: expected an `fp ...` command, got {stage['cmd']!r}"
    module, function = _command_target(argv)
    libraries, app_modules = _packages_read(module, function)
    deps = [str(dep) for dep in stage.get("deps", [])]
    missing = [SOURCE_DIRS[lib] for lib in sorted(libraries) if not _covered(SOURCE_DIRS[lib], deps)]
    missing += [
        _module_path(m)
        for m in sorted(app_modules - IGNORED_APP_MODULES)
        if not m.endswith("__init__") and not _covered(_module_path(m), deps)
    ]
    assert not missing, f"dvc.yaml stage {name} reads code it does not list in deps: {missing}"


def test_the_check_sees_a_missing_dependency() -> None:
    libraries, app_modules = _packages_read("fp_pipeline.stages.parsing_train", "train_stage")
    assert {"fp_parsing", "fp_gradagg", "fp_metrics", "fp_core"} <= libraries
    assert "fp_pipeline.stages.parsing_train" in app_modules
    assert not _covered("packages/fp-metrics/src/fp_metrics", ["packages/fp-parsing/src/fp_parsing"])
