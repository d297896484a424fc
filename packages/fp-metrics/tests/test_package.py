import importlib
import inspect
import json
import subprocess
import sys

import fp_metrics

MODULES = [
    "classification",
    "features",
    "generative",
    "groups",
    "perceptual",
    "segmentation",
    "soft",
    "verification",
]


def test_import_pulls_in_no_optional_dependency():
    code = (
        "import json, sys, fp_metrics; "
        "print(json.dumps(sorted(m for m in ('lpips', 'open_clip', 'sklearn', 'cleanfid', 'torchvision') "
        "if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_all_exports_resolve_and_are_documented():
    assert len(fp_metrics.__all__) == len(set(fp_metrics.__all__))
    for name in fp_metrics.__all__:
        obj = getattr(fp_metrics, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_every_public_module_name_is_exported_by_the_package():
    for module_name in MODULES:
        module = importlib.import_module(f"fp_metrics.{module_name}")
        for name in module.__all__:
            assert name in fp_metrics.__all__, f"fp_metrics.{module_name}.{name} is not in fp_metrics.__all__"
            assert getattr(fp_metrics, name) is getattr(module, name)
