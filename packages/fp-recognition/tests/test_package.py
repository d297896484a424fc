import ast
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import fp_recognition

FORBIDDEN = ("fp_parsing", "fp_qdgs", "fp_diffusion", "fp_pipeline", "mlflow", "dvc", "mxnet", "torchvision")


def _modules():
    yield fp_recognition
    for info in pkgutil.walk_packages(fp_recognition.__path__, "fp_recognition."):
        yield importlib.import_module(info.name)


def test_every_module_has_all_and_a_docstring():
    for module in _modules():
        assert module.__doc__, f"{module.__name__} has no docstring"
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.__all__ names missing {name}"


def test_public_api_documented():
    assert len(fp_recognition.__all__) == len(set(fp_recognition.__all__))
    for name in fp_recognition.__all__:
        obj = getattr(fp_recognition, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_sources_import_no_forbidden_package():
    root = Path(fp_recognition.__file__).parent
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


@pytest.mark.slow  # a fresh interpreter importing torch: ~10 s on shared CPUs
def test_import_pulls_in_no_forbidden_package():
    code = (
        "import json, sys, fp_recognition; "
        f"print(json.dumps(sorted(m for m in {FORBIDDEN!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
