"""Cluster fixtures: one nats-server for the module, workers and gateways per test."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clusterproc import start_test_nats  # noqa: E402


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory):
    server = start_test_nats(tmp_path_factory.mktemp("nats"))
    yield server
    server.stop()


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
