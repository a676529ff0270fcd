"""Shared fixtures. Every test gets its own XDG folders, so a developer's own cloudfn config
and data never leak into a run (nor the run into them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pgserver import pg_url, postgres_server  # noqa: F401  (fixtures for every test folder)

from core.config import load_config

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    # Compiled Go binaries are keyed by code, so one cache serves the whole run.
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def isolated_xdg(tmp_path, monkeypatch, shared_cache):
    for var, sub in (("XDG_CONFIG_HOME", "xdg-config"), ("XDG_DATA_HOME", "xdg-data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache))
    for var in (
        "CLOUDFN_CONFIG",
        "CLOUDFN_DATA_DIR",
        "DATA_DIR",
        "FUNCTIONS_DIR",
        "PORT",
        "LOG_LEVEL",
        "GIN_MODE",
        "CLOUDFN_STORAGE_URL",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def config(data_dir):
    return load_config(flags={"storage.data_dir": str(data_dir)})


def has(tool: str) -> bool:
    return shutil.which(tool) is not None


@pytest.fixture
def cli(data_dir, capsys):
    """`cloudfn --data-dir DATA_DIR ARGS` in process: (exit code, stdout, stderr)."""
    from cloudfn_tui.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["--data-dir", str(data_dir), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
