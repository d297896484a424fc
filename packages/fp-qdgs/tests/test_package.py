from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import fp_qdgs

FORBIDDEN = {
    "fp_parsing",
    "fp_recognition",
    "fp_diffusion",
    "fp_pipeline",
    "mlflow",
    "dvc",
    "matplotlib.pyplot",
}
SRC = Path(fp_qdgs.__file__).parent


def _modules():
    yield "fp_qdgs"
    for info in pkgutil.walk_packages([str(SRC)], prefix="fp_qdgs."):
        yield info.name


def test_every_module_declares_all_and_exports_exist():
    for name in _modules():
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), name
        for symbol in module.__all__:
            assert hasattr(module, symbol), f"{name}.{symbol}"


def test_no_forbidden_imports_and_matplotlib_only_inside_functions():
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in FORBIDDEN and n not in FORBIDDEN, f"{path.name} imports {n}"
        for node in tree.body:  # module level: no matplotlib (it is not a dependency)
            if isinstance(node, ast.Import | ast.ImportFrom):
                mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                assert not (mod or "").startswith("matplotlib"), path.name
