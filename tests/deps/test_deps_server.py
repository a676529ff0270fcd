"""Dependencies over HTTP against a real `cloudfn serve` (as root here): the routes' guards, the
422 BuildError body, and a hostile install under the real server not reaching its token."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from deps_packages import make_hostile_sdist, readable  # noqa: E402
from serverproc import start_server  # noqa: E402

CODE = "import tinypkg\n\ndef handler(event, context):\n    return tinypkg.VALUE\n"


def env_for(wheels: Path) -> dict[str, str]:
    return {
        "CLOUDFN_RUNTIME_PYPI_INDEX_URL": "none",
        "CLOUDFN_RUNTIME_PYPI_FIND_LINKS": str(wheels),
        "CLOUDFN_RUNTIME_PREWARM": "0",
    }


@pytest.fixture
def hostile_links(tmp_path, wheels) -> Path:
    """The test wheels plus an sdist whose build backend reports what it can reach."""
    links = tmp_path / "links"
    links.mkdir()
    for w in wheels.iterdir():
        (links / w.name).write_bytes(w.read_bytes())
    return links


def test_routes_need_the_token_and_a_build_error_is_a_422_with_the_log(tmp_path, hostile_links, shared_cache):
    server = start_server(tmp_path / "srv", cache=shared_cache, **env_for(readable(hostile_links)))
    try:
        with server.client() as c:
            r = c.post(
                "/api/v1/functions",
                json={"name": "d", "runtime": "python", "code": CODE, "dependencies": "tinypkg==1.0\n"},
            )
            assert r.status_code == 201, r.text
            assert c.post("/api/v1/functions/d/invoke", json={}).json()["result"] == "tiny 1.0"
            body = c.get("/api/v1/functions/d/dependencies").json()
            assert body["packages"] == [{"name": "tinypkg", "version": "1.0"}]
            r = c.put("/api/v1/functions/d", json={"dependencies": "reqeusts\n"})
            assert r.status_code == 422 and r.json()["type"] == "BuildError", r.text
            assert "reqeusts" in r.json()["error"] and "reqeusts was not found" in r.json()["log"]
            assert c.get("/api/v1/functions/d").json()["function"]["version"] == 1
            r = c.post(
                "/api/v1/functions",
                json={
                    "name": "e",
                    "runtime": "nodejs",
                    "code": "x",
                    "dependencies": json.dumps({"dependencies": {"p": "github:a/b"}}),
                },
            )
            assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["dependencies"], r.text
            r = c.post("/api/v1/functions", json={"name": "f", "runtime": "python", "code": "x", "dependencies": 5})
            assert r.status_code == 422 and r.json()["errors"][0]["field"] == "dependencies", r.text
        import httpx

        for method, path in (
            ("GET", "/api/v1/functions/d/dependencies"),
            ("POST", "/api/v1/functions/d/dependencies/rebuild"),
        ):
            assert httpx.request(method, server.url + path, timeout=30).status_code == 401
        assert (
            "/api/v1/functions/{ref}/dependencies/rebuild"
            in httpx.get(server.url + "/openapi.json", headers=server.headers(), timeout=30).json()["paths"]
        )
    finally:
        assert server.stop() == 0, server.stderr()


def test_without_a_token_a_web_page_cannot_trigger_a_rebuild(tmp_path, wheels, shared_cache):
    server = start_server(tmp_path / "srv", "--no-auth", token=None, cache=shared_cache, **env_for(wheels))
    try:
        import httpx

        with httpx.Client(base_url=server.url, timeout=60) as c:
            assert (
                c.post(
                    "/api/v1/functions",
                    json={"name": "d", "runtime": "python", "code": CODE, "dependencies": "tinypkg==1.0\n"},
                ).status_code
                == 201
            )
            before = c.get("/api/v1/functions/d/dependencies").json()["installed_at"]
            r = c.post("/api/v1/functions/d/dependencies/rebuild", headers={"origin": "http://evil.example"})
            assert r.status_code == 403 and r.json()["type"] == "ForbiddenOrigin"
            r = c.post(
                "/api/v1/functions/d/dependencies/rebuild",
                content=b"x=1",
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert r.status_code == 415
            assert c.get("/api/v1/functions/d/dependencies").json()["installed_at"] == before  # nothing ran
            r = c.post("/api/v1/functions/d/dependencies/rebuild")  # the user's own client may
            assert r.status_code == 200 and r.json()["installed_at"] != before
    finally:
        assert server.stop() == 0, server.stderr()


def test_a_hostile_source_build_under_the_real_server_cannot_reach_its_token(tmp_path, hostile_links, shared_cache):
    root = tmp_path / "srv"
    token_file = root / "data" / "server.token"
    make_hostile_sdist(
        hostile_links, "evilpkg", [str(token_file), str(root / "data" / "registry.json"), "/proc/self/environ"]
    )
    server = start_server(root, token=None, cache=shared_cache, **env_for(readable(hostile_links)))
    try:
        assert token_file.exists() and server.token
        with server.client() as c:
            r = c.post(
                "/api/v1/functions",
                json={
                    "name": "evil",
                    "runtime": "python",
                    "code": CODE,
                    "dependencies": "evilpkg\n",
                    "source_builds": True,
                },
            )
            assert r.status_code == 422 and r.json()["type"] == "BuildError", r.text
            log = r.json()["log"]
            assert "HOSTILE-REPORT" in log  # its code ran (source builds were asked for)...
            report = json.loads(log.rsplit("HOSTILE-REPORT ", 1)[1].split(" END", 1)[0])
            assert server.token not in log  # ...and saw no token, file or variable
            assert report["uid"] != 0
            assert report["files"][str(token_file)] in ("FileNotFoundError", "PermissionError")
            assert report["files"][str(root / "data" / "registry.json")] in ("FileNotFoundError", "PermissionError")
            assert "CLOUDFN" not in report["files"]["/proc/self/environ"]
            assert c.get("/api/v1/functions/evil").status_code == 404
    finally:
        assert server.stop() == 0, server.stderr()
