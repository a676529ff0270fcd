"""The platforms the conformance suite runs against: LocalPlatform in process (on the embedded
store, and on PostgreSQL: "local-pg"), RemotePlatform talking to a real `cloudfn serve`
subprocess on a free loopback port (and to a cluster's gateway), and the console tests' in-memory
FakePlatform ("fake": without an executor, so the tests marked `executes` skip there).

The served platform is shared by the session (starting one costs a second or two), so every
test works on functions with names of its own and never assumes an empty platform.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deps"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "console"))
from clusterproc import start_gateway, start_test_nats, start_worker  # noqa: E402
from console_fakes import FakePlatform  # noqa: E402
from deps_packages import make_wheel  # noqa: E402
from serverproc import start_server  # noqa: E402

from core.config import load_config  # noqa: E402
from core.local import LocalPlatform  # noqa: E402
from core.remote import RemotePlatform  # noqa: E402


@pytest.fixture(scope="session")
def deps_wheels(tmp_path_factory) -> Path:
    """Dependencies come from this folder only (no index, no network), for both platforms."""
    d = tmp_path_factory.mktemp("conformance-wheels")
    make_wheel(d, "confpkg", "1.0", {"confpkg/__init__.py": "VALUE = 'conf'\n"})
    d.chmod(0o755)  # the sandbox user runs installs
    for f in d.iterdir():
        f.chmod(0o644)
    return d


def deps_env(wheels: Path) -> dict[str, str]:
    return {"CLOUDFN_RUNTIME_PYPI_INDEX_URL": "none", "CLOUDFN_RUNTIME_PYPI_FIND_LINKS": str(wheels)}


@pytest.fixture(scope="session")
def served(tmp_path_factory, shared_cache, deps_wheels):
    server = start_server(
        tmp_path_factory.mktemp("conformance-server"), "--mode", "release", cache=shared_cache, **deps_env(deps_wheels)
    )
    yield server
    code = server.stop()
    assert code == 0, server.stderr()


@pytest.fixture(scope="session")
def cluster_gateway(tmp_path_factory, shared_cache, deps_wheels, postgres_server):
    """A gateway of a two-worker cluster (issue 18): nats-server, `cloudfn worker` x2, `cloudfn serve`
    on PostgreSQL (its registry, history, alerts and secrets), as `cloudfn cluster up` runs it."""
    root = tmp_path_factory.mktemp("conformance-cluster")
    database = postgres_server.create_database()
    nats = start_test_nats(root)
    workers = [
        start_worker(root / f"w{i}", nats, f"conf{i}", cache=shared_cache, **deps_env(deps_wheels)) for i in range(2)
    ]
    gateway = start_gateway(
        root / "gw",
        nats,
        cache=shared_cache,
        CLOUDFN_STORAGE_URL=postgres_server.url(database),
        **deps_env(deps_wheels),
    )
    yield gateway
    code = gateway.stop()
    for w in workers:
        w.stop()
    nats.stop()
    postgres_server.drop_database(database)
    assert code == 0, gateway.stderr()


# Why the console tests' in-memory fake skips a test, by the test's marker.
FAKE_LACKS = {
    "executes": "the fake platform has no executor by design (it never runs a function's code)",
    "key_file": "the fake platform holds no secrets key, so it has no key file to name",
}


@pytest.fixture(params=["local", "remote", "local-pg", "cluster", "fake"])
async def platform(request, data_dir, deps_wheels):
    if request.param == "fake":
        for marker, why in FAKE_LACKS.items():
            if request.node.get_closest_marker(marker):
                pytest.skip(why)
        p = FakePlatform(seed=False)
    elif request.param.startswith("local"):
        flags = {
            "storage.data_dir": str(data_dir),
            "runtime.pypi_index_url": "none",
            "runtime.pypi_find_links": str(deps_wheels),
        }
        if request.param == "local-pg":  # the registry, alerts and history in PostgreSQL (tests/pgserver.py)
            flags["storage.url"] = request.getfixturevalue("pg_url")
        p = LocalPlatform(load_config(flags=flags), install_examples=False)
    else:
        served = request.getfixturevalue("served" if request.param == "remote" else "cluster_gateway")
        p = RemotePlatform(served.url, served.token)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def name() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"
