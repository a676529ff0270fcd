"""The two platforms the conformance suite runs against: LocalPlatform in process, and
RemotePlatform talking to a real `cloudfn serve` subprocess on a free loopback port.

The served platform is shared by the session (starting one costs a second or two), so every
test works on functions with names of its own and never assumes an empty platform.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
from serverproc import start_server  # noqa: E402

from core.local import LocalPlatform  # noqa: E402
from core.remote import RemotePlatform  # noqa: E402


@pytest.fixture(scope="session")
def served(tmp_path_factory, shared_cache):
    server = start_server(tmp_path_factory.mktemp("conformance-server"), "--mode", "release", cache=shared_cache)
    yield server
    code = server.stop()
    assert code == 0, server.stderr()


@pytest.fixture(params=["local", "remote"])
async def platform(request, config):
    if request.param == "local":
        p = LocalPlatform(config, install_examples=False)
    else:
        served = request.getfixturevalue("served")
        p = RemotePlatform(served.url, served.token)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
