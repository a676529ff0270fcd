"""Auth (issue 7, item 6): every route of the server but the two health routes answers 401
without the token and with every wrong form of it (the routes are enumerated from the app
itself, so a new route is covered without touching this file), and the token never shows:
not in the data directory's logs, history or stores, not in the server's own output, not in
error bodies, /api/v1/info, the event stream, nor in `cloudfn info` (local, attached, remote).

tests/server/test_http.py checks four header forms on a hand-picked list of routes; this is
every route, more forms, and the leak checks.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serverproc import REPO, ServerProc, start_server  # noqa: E402

from core.server import ServerSettings, create_app  # noqa: E402
from core.server.app import HEALTH_PATHS  # noqa: E402
from core.server.endpoint_openapi import METHODS as ENDPOINT_METHODS  # noqa: E402
from core.server.endpoint_openapi import PATHS as ENDPOINT_PATHS  # noqa: E402

pytestmark = pytest.mark.slow

PRINTS = "def handler(event, context):\n    print('hello from', context.get('function_name'))\n    return event\n"
FAILS = "def handler(event, context):\n    raise ValueError('no ' + str(event))\n"


def app_routes() -> set[tuple[str, str]]:
    """(method, path) of every route the application has, documented or not."""
    app = create_app(object(), ServerSettings(token="x"))  # routes only: the platform is never called
    out = set()
    for route in app.routes:
        for method in getattr(route, "methods", None) or ():
            out.add((method, route.path))
    # The functions' endpoints are served by the guard, before the app's routes.
    out |= {(m.upper(), p) for p in ENDPOINT_PATHS for m in ENDPOINT_METHODS}
    return out


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "dummy-1", path)


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_cache) -> ServerProc:
    """The token made at the first start, debug mode and debug logging: the most the server
    ever writes, for the leak checks."""
    s = start_server(
        tmp_path_factory.mktemp("auth"),
        "--mode",
        "debug",
        "--heartbeat",
        "0.2",
        token=None,
        cache=shared_cache,
        CLOUDFN_MONITOR_LOG_LEVEL="debug",
    )
    assert s.token and len(s.token) >= 32
    yield s
    if s.proc.poll() is None:
        assert s.stop() == 0, s.stderr()


def wrong_forms(token: str) -> list[tuple[str, dict[str, str]]]:
    return [
        ("no header", {}),
        ("empty", {"authorization": ""}),
        ("scheme only", {"authorization": "Bearer"}),
        ("wrong token", {"authorization": "Bearer wrong"}),
        ("a prefix of it", {"authorization": f"Bearer {token[:-1]}"}),
        ("it plus a character", {"authorization": f"Bearer {token}x"}),
        ("without the scheme", {"authorization": token}),
        ("as Basic", {"authorization": "Basic " + base64.b64encode(f"cloudfn:{token}".encode()).decode()}),
        ("as a cookie", {"cookie": f"token={token}; authorization=Bearer%20{token}"}),
        ("in another header", {"x-api-key": token, "x-auth-token": token}),
    ]


def test_every_route_but_health_answers_401_without_the_right_token(server):
    routes = app_routes()
    with server.client() as c:
        spec = c.get("/openapi.json").json()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented <= routes, documented - routes  # the document lists nothing the app lacks
    guarded = sorted((m, p) for m, p in routes if p not in HEALTH_PATHS)
    guarded.append(("GET", "/api/v1/no-such-route"))  # no route discovery without the token either
    assert {p for _, p in routes if p in HEALTH_PATHS} == set(HEALTH_PATHS)
    bodies = []
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for method, path in guarded:
            for why, headers in wrong_forms(server.token):
                r = c.request(
                    method, concrete(path), headers=headers, json={} if method in ("POST", "PUT", "PATCH") else None
                )
                assert r.status_code == 401, (method, path, why, r.status_code, r.text)
                assert r.headers["www-authenticate"].startswith("Bearer")
                if method != "HEAD":
                    assert r.json()["type"] == "Unauthorized", (method, path, why)
                    bodies.append(r.text)
        for path in sorted(HEALTH_PATHS):
            assert c.get(path).status_code == 200
    assert not any(server.token in b for b in bodies)
    print(
        f"\nauth: {len(guarded)} routes ({len(documented) - len(HEALTH_PATHS)} documented operations, the "
        f"undocumented docs routes, an unknown path) x {len(wrong_forms(server.token))} wrong forms -> "
        f"{len(guarded) * len(wrong_forms(server.token))} x 401; health answers without a token"
    )


def _cli(server: ServerProc, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in server.env.items() if k != "CLOUDFN_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", *args],
        env={**base, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_token_never_shows(server, tmp_path):
    token = server.token
    seen: list[str] = []  # every text a client got back
    with server.client() as c:
        with c.stream("GET", "/api/v1/events") as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            # Work that writes to every store and log: functions, invocations (output, errors),
            # a throttle-free failure, errors of each kind, alert rules, saved events.
            for body in (
                {"name": "leak-ok", "runtime": "python", "code": PRINTS},
                {"name": "leak-fail", "runtime": "python", "code": FAILS},
            ):
                r = c.post("/api/v1/functions", json=body)
                assert r.status_code == 201, r.text
                seen.append(r.text)
            for ref, event in (("leak-ok", {"a": 1}), ("leak-fail", "boom")):
                r = c.post(f"/api/v1/functions/{ref}/invoke", json={"event": event, "context": {"k": "v"}})
                assert r.status_code == 200, r.text
                seen.append(r.text)
            requests = [
                ("POST", "/api/v1/functions", {"name": "leak-ok", "runtime": "python", "code": PRINTS}),  # 409
                ("POST", "/api/v1/functions", {"name": "Bad Name", "runtime": "cobol"}),  # 422
                ("GET", "/api/v1/functions/nope", None),  # 404
                ("POST", "/api/v1/functions/leak-ok/invoke", {"bogus": 1}),  # 422
                ("GET", "/api/v1/invocations?since=yesterday", None),  # 422
                ("DELETE", "/api/v1/nowhere", None),  # 404
                ("PUT", "/api/v1/functions/leak-ok/saved-events/sample", {"event": {"x": 1}}),
                ("POST", "/api/v1/alerts/rules", {"name": "leak", "metric": "failures", "threshold": 100}),
                ("GET", "/api/v1/info", None),
                ("GET", "/api/metrics", None),
                ("GET", "/metrics", None),
                ("GET", "/api/v1/invocations?limit=1000", None),
                ("GET", "/api/v1/logs?level=debug&limit=10000", None),
                ("GET", "/api/v1/alerts", None),
                ("GET", "/api/v1/alerts/history", None),
                ("GET", "/openapi.json", None),
            ]
            for method, path, body in requests:
                r = c.request(method, path, json=body)
                assert r.status_code < 500, (method, path, r.text)
                seen.append(r.text)
            r = c.post("/api/v1/functions", content=b"{broken", headers={"content-type": "application/json"})
            assert r.status_code == 400
            seen.append(r.text)
            # Read the stream until the failed invocation's own finish is in it.
            stream_text = []
            for line in lines:
                stream_text.append(line)
                if line.startswith("data: ") and '"leak-fail"' in line and '"status":"failed"' in line:
                    break
            seen.append("\n".join(stream_text))
    assert all(token not in text for text in seen), "the token is in an answer"
    assert any("invocation.finished" in line for line in stream_text)

    # `cloudfn info`: attached to the serving data directory (the token read from its file),
    # remote with --token, remote with CLOUDFN_TOKEN; text and JSON.
    outputs = []
    for args, env in (
        (("--data-dir", str(server.data_dir), "info"), {}),
        (("--data-dir", str(server.data_dir), "info", "--json"), {}),
        (("--remote", server.url, "--token", token, "info"), {}),
        (("--remote", server.url, "info", "--json"), {"CLOUDFN_TOKEN": token}),
        (("--data-dir", str(tmp_path / "other"), "info"), {"CLOUDFN_TOKEN": token}),  # local, token in env
    ):
        r = _cli(server, *args, **env)
        assert r.returncode == 0, (args, r.stderr)
        outputs.append(r.stdout + r.stderr)
    assert json.loads(_cli(server, "--data-dir", str(server.data_dir), "info", "--json").stdout)["mode"] == "remote"
    assert all(token not in out for out in outputs), "`cloudfn info` shows the token"

    # The stores and logs on disk, after the server has flushed them at its exit, and its output.
    assert server.stop() == 0, server.stderr()
    scanned = 0
    for path in sorted(server.data_dir.rglob("*")):
        if path.is_file() and path.name != "server.token":
            assert token.encode() not in path.read_bytes(), f"the token is in {path}"
            scanned += 1
    assert any(p.is_file() for p in (server.data_dir / "logs").rglob("*"))
    assert any(p.is_file() for p in (server.data_dir / "history").rglob("*"))
    access = server.stdout()  # uvicorn's access log
    log = server.stderr()
    assert "GET /api/v1/info" in access and "401" in access, access[-2000:]  # it did log every request
    assert token not in log and token not in access and token not in server.announce
    print(
        f"\ntoken leaks: none in {len(seen)} answers (errors, info, metrics, history, logs, SSE), "
        f"{len(outputs)} `cloudfn info` outputs, {scanned} files of the data directory, the server's "
        f"output and its access log ({len(access.splitlines())} lines)"
    )
