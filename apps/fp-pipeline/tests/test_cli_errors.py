"""User errors end a command with one ``fp: error:`` line and exit 2; bugs and ``--debug`` keep tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from fp_pipeline import cli
from fp_pipeline.errors import FpError, is_user_error, one_line

DATA_TESTS = Path(__file__).resolve().parents[3] / "packages" / "fp-parsing" / "tests"


def _params(tmp_path: Path, root: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(f"data:\n  root: {root}\n  image_size: 8\n  label_order: zllrunning\n")
    return path


def test_a_bad_params_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    result = CliRunner().invoke(cli.app, ["data", "check", "--params", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"fp: error: params file {bad} is not valid YAML")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_a_missing_dataset_root_is_one_line(tmp_path: Path) -> None:
    params = _params(tmp_path, tmp_path / "nowhere")
    result = CliRunner().invoke(cli.app, ["data", "check", "--params", str(params), "--no-progress"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"fp: error: dataset root {tmp_path / 'nowhere'} does not exist or is not a folder; expected a "
        "directory in the CelebAMask-HQ layout (see docs/data.md)\n"
    )


def test_debug_shows_the_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = _params(tmp_path, tmp_path / "nowhere")
    result = CliRunner().invoke(cli.app, ["--debug", "data", "check", "--params", str(params)])
    assert result.exit_code == 1 and isinstance(result.exception, FileNotFoundError)
    monkeypatch.setenv("FP_DEBUG", "1")
    result = CliRunner().invoke(cli.app, ["data", "check", "--params", str(params)])
    assert isinstance(result.exception, FileNotFoundError)


def test_a_bug_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_: object) -> None:
        raise TypeError("a bug")

    import fp_pipeline.stages.data as data_stages

    monkeypatch.setattr(data_stages, "check_stage", broken)
    result = CliRunner().invoke(cli.app, ["data", "check"])
    assert isinstance(result.exception, TypeError) and "fp: error" not in result.output


def test_which_errors_are_the_users() -> None:
    from fp_core.weights import WeightsNotFoundError
    from fp_parsing.data import DataFormatError
    from fp_parsing.train import ConfigError
    from fp_pipeline.config import ParamsError

    for error in (
        ParamsError("p"),
        ConfigError("c"),
        DataFormatError("d"),
        WeightsNotFoundError("w"),
        FileNotFoundError("f"),
        FpError("x"),
    ):
        assert is_user_error(error), error
    for error in (ValueError("v"), TypeError("t"), KeyError("k"), KeyboardInterrupt()):
        assert not is_user_error(error), error
    assert one_line(ValueError("first\n\n  second ")) == "first; second"


def test_every_command_gets_the_handling() -> None:
    """A command added later is covered too: the handling lives in the root group."""
    extra = typer.Typer()

    @extra.command("boom")
    def boom() -> None:
        raise FpError("nothing to do\nhere")

    cli.app.add_typer(extra, name="extra-for-test")
    try:
        result = CliRunner().invoke(cli.app, ["extra-for-test", "boom"])
    finally:
        cli.app.registered_groups.pop()
    assert result.exit_code == 2 and result.stderr == "fp: error: nothing to do; here\n"


def _fp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("fp")
    assert script.is_file(), f"the fp console script is not installed beside {sys.executable}"
    return subprocess.run(
        [str(script), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120
    )


def test_console_script_bad_params(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    done = _fp("data", "check", "--params", str(missing), env={"FP_DEBUG": ""})
    assert done.returncode == 2
    assert done.stderr == (
        f"fp: error: params file {missing} not found: run from the repository root or pass --params PATH\n"
    )


def test_console_script_missing_root_and_debug(tmp_path: Path) -> None:
    params = _params(tmp_path, tmp_path / "nowhere")
    done = _fp("data", "check", "--params", str(params), "--no-progress", env={"FP_DEBUG": ""})
    assert done.returncode == 2 and done.stderr.startswith("fp: error: dataset root")
    assert "Traceback" not in done.stderr
    debug = _fp("data", "check", "--params", str(params), env={"FP_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "FileNotFoundError" in debug.stderr


def test_check_lists_the_problems_and_fails(tmp_path: Path) -> None:
    sys.path.insert(0, str(DATA_TESTS))
    from layout_tree import write_tree

    root = write_tree(tmp_path / "celebamask")
    broken = root / "CelebA-HQ-img" / "2.jpg"
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    params = _params(tmp_path, root)
    result = CliRunner().invoke(cli.app, ["data", "check", "--params", str(params), "--no-progress"])
    assert result.exit_code == 2
    assert f"{broken}: image does not decode" in result.stdout
    assert "train: 3 images, 3 decoded" in result.stdout and "val: 1 images, 0 decoded" in result.stdout
    assert result.stderr == f"fp: error: 1 problem(s) in {root} (listed above)\n"
    (root / "CelebA-HQ-img" / "3.jpg").unlink()
    write_tree(tmp_path / "clean")
    clean = CliRunner().invoke(
        cli.app, ["data", "check", "--params", str(params), "--root", str(tmp_path / "clean")]
    )
    assert clean.exit_code == 0, clean.output
