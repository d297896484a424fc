"""Offline weight lookup: the Hugging Face cache and ``$FP_WEIGHTS_DIR``, never the network."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fp_core.weights import WeightsNotFoundError, find_weight_file, hub_cache_dir, hub_file, weights_dir

REPO = "org/name"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every socket connection fails, and HF_HUB_OFFLINE is unset: the lookup itself must not connect."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("FP_WEIGHTS_DIR", str(tmp_path / "fp"))
    return tmp_path


def _fake_hub(cache: Path, filename: str = "model.safetensors", *, ref: str | None = "main") -> Path:
    """The hub cache layout: ``models--org--name/snapshots/<commit>/<file>`` and ``refs/<ref>``."""
    repo = cache / "models--org--name"
    file = repo / "snapshots" / COMMIT / filename
    file.parent.mkdir(parents=True)
    file.write_bytes(b"weights")
    if ref is not None:
        (repo / "refs").mkdir()
        (repo / "refs" / ref).write_text(COMMIT)
    return file


def test_the_hub_cache_location_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / ".cache" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache_dir() == tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "explicit"))
    assert hub_cache_dir() == tmp_path / "explicit"


def test_a_file_is_found_in_the_hub_cache_through_refs_main(caches: Path) -> None:
    file = _fake_hub(caches / "hub")
    assert hub_file(REPO, "model.safetensors") == file
    assert hub_file(REPO, "model.safetensors", revision=COMMIT) == file


def test_a_pinned_commit_needs_no_ref(caches: Path) -> None:
    file = _fake_hub(caches / "hub", "sub/config.json", ref=None)
    assert hub_file(REPO, "sub/config.json", revision=COMMIT) == file
    with pytest.raises(WeightsNotFoundError):  # "main" cannot be resolved without refs/main
        hub_file(REPO, "sub/config.json")


def test_hf_home_is_used_when_hf_hub_cache_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    file = _fake_hub(tmp_path / "hf" / "hub")
    assert hub_file(REPO, "model.safetensors") == file


def test_the_fp_weights_dir_is_the_fallback(caches: Path) -> None:
    file = caches / "fp" / REPO / "model.safetensors"
    file.parent.mkdir(parents=True)
    file.write_bytes(b"weights")
    assert weights_dir() == caches / "fp"
    assert hub_file(REPO, "model.safetensors", revision="v1") == file


def test_a_missing_file_names_both_places_the_revision_and_the_command(caches: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as caught:
        hub_file(REPO, "model.safetensors", revision="v1", what="the CLIP image tower")
    message = str(caught.value)
    assert message.startswith("the CLIP image tower: model.safetensors of the Hugging Face repo org/name")
    assert "at revision v1" in message
    assert "`hf download org/name model.safetensors --revision v1`" in message
    assert str(caches / "hub" / "models--org--name" / "refs" / "v1") in message
    assert str(caches / "fp" / REPO / "model.safetensors") in message
    assert "HF_HUB_OFFLINE" not in message
    assert isinstance(caught.value, FileNotFoundError)


def test_a_missing_pinned_commit_names_its_snapshot(caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as caught:
        hub_file(REPO, "model.safetensors", revision=COMMIT)
    message = str(caught.value)
    assert str(caches / "hub" / "models--org--name" / "snapshots" / COMMIT / "model.safetensors") in message
    assert "(HF_HUB_OFFLINE is set)" in message


def test_find_weight_file_keeps_its_behaviour(caches: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="https://example.org/w.pt"):
        find_weight_file("w.pt", "https://example.org/w.pt")
    (caches / "fp").mkdir()
    (caches / "fp" / "w.pt").write_bytes(b"x")
    assert find_weight_file("w.pt", "https://example.org/w.pt") == caches / "fp" / "w.pt"
    assert find_weight_file("w.pt", "u", path=caches / "fp") == caches / "fp" / "w.pt"
