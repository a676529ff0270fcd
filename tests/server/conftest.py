"""Real `cloudfn serve` subprocesses for the HTTP tests (see serverproc.py)."""

from __future__ import annotations

import pytest
from serverproc import ServerProc, start_server


@pytest.fixture(scope="module")
def seed_server(tmp_path_factory, shared_cache):
    """Served without a token on loopback, as the seed's own clients expect."""
    server = start_server(
        tmp_path_factory.mktemp("seed"), "--no-auth", "--mode", "release", token=None, cache=shared_cache
    )
    yield server
    assert server.stop() == 0, server.stderr()


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory, shared_cache) -> ServerProc:
    """Served with the token it makes at its first start (no CLOUDFN_TOKEN)."""
    server = start_server(
        tmp_path_factory.mktemp("auth"),
        "--heartbeat",
        "0.2",
        token=None,
        cache=shared_cache,
        CLOUDFN_SERVER_MAX_BODY="65536",
    )
    yield server
    assert server.stop() == 0, server.stderr()
