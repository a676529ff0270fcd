"""Fixtures for the execution layer: real workers of real runtimes, nothing mocked."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from core.executors import ExecutionService, ExecutionSettings

GO_MISSING = shutil.which("go") is None
NODE_MISSING = shutil.which("node") is None


def pytest_collection_modifyitems(config, items):
    for item in items:
        if GO_MISSING and item.get_closest_marker("go"):
            item.add_marker(pytest.mark.skip(reason="the Go toolchain is not installed (apt-get install golang-go)"))
        if NODE_MISSING and "nodejs" in item.name:
            item.add_marker(pytest.mark.skip(reason="Node.js is not installed (apt-get install nodejs)"))


@pytest.fixture(scope="session")
def go_cache(tmp_path_factory) -> Path:
    # Built Go binaries (and Go's own build cache) are keyed by code: one cache for the run.
    return tmp_path_factory.mktemp("executor-cache")


@pytest.fixture
def settings(tmp_path, go_cache) -> ExecutionSettings:
    return ExecutionSettings(work_dir=tmp_path / "work", cache_dir=go_cache)


@pytest.fixture
async def service(settings):
    svc = ExecutionService(settings)
    yield svc
    await svc.close()


@pytest.fixture
async def make_service(tmp_path, go_cache):
    """Services with other settings; all closed at the end of the test."""
    made: list[ExecutionService] = []

    def make(**kw: Any) -> ExecutionService:
        kw.setdefault("work_dir", tmp_path / f"work{len(made)}")
        kw.setdefault("cache_dir", go_cache)
        svc = ExecutionService(ExecutionSettings(**kw))
        made.append(svc)
        return svc

    yield make
    for svc in made:
        await svc.close()
