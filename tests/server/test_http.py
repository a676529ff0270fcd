"""HTTP specifics of `cloudfn serve`: auth, status codes and error bodies, body limit, the event
stream, CORS, OpenAPI, throttling, the loopback rule, attaching, and RemotePlatform's messages."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import stat
import subprocess
import sys
import threading

import httpx
import pytest
from serverproc import REPO, server_env, start_server

from core.errors import InvalidInput, NotFound, Unavailable
from core.remote import RemotePlatform, Unauthorized

PY = "def handler(event, context):\n    return {'ok': True}\n"


# -- auth ---------------------------------------------------------------------------------------
def test_token_is_made_at_first_start_and_kept_0600(auth_server):
    path = auth_server.data_dir / "server.token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(auth_server.token) >= 32
    assert auth_server.token not in auth_server.announce and auth_server.token not in auth_server.stderr()


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/functions"),
        ("POST", "/api/v1/functions"),
        ("GET", "/api/v1/functions/x"),
        ("POST", "/api/v1/functions/x/invoke"),
        ("DELETE", "/api/v1/functions/x"),
        ("GET", "/api/metrics"),
        ("GET", "/metrics"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/invocations"),
        ("GET", "/api/v1/logs"),
        ("GET", "/api/v1/alerts/rules"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
        ("GET", "/api/v1/info"),
    ],
)
def test_every_route_but_health_needs_the_token(auth_server, method, path):
    for headers in (
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": auth_server.token},
        {"authorization": f"Basic {auth_server.token}"},
    ):
        r = httpx.request(method, auth_server.url + path, headers=headers, timeout=10)
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["type"] == "Unauthorized"


def test_health_needs_no_token_and_the_right_token_works(auth_server):
    assert httpx.get(auth_server.url + "/api/health").status_code == 200
    assert httpx.get(auth_server.url + "/api/v1/health").status_code == 200
    with auth_server.client() as c:
        assert c.get("/api/v1/functions").status_code == 200
        assert c.get("/api/v1/functions", headers={"authorization": f"bearer {auth_server.token}"}).status_code == 200


def test_a_server_with_its_access_log_on_keeps_answering(tmp_path, shared_cache):
    """Without `--mode release` every request writes an access-log line to stdout, its query
    string included: 1,000 of these lines are over 500 KB, past a pipe's 64 KiB, so a harness
    that stops reading stdout after the "serving on" line stalls the server here."""
    server = start_server(tmp_path / "srv", cache=shared_cache)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as c:
            for _ in range(1000):
                assert c.get("/api/health", params={"pad": "x" * 500}).status_code == 200
    finally:
        assert server.stop() == 0, server.stderr()
    assert server.stdout().count("GET /api/health") == 1001  # start_server's own health check too


# -- status codes and error bodies --------------------------------------------------------------
def test_invalid_input_names_every_field_422(auth_server):
    with auth_server.client() as c:
        r = c.post(
            "/api/v1/functions", json={"name": "Bad/Name", "runtime": "cobol", "code": "", "timeout": -1, "memory": 1}
        )
        assert r.status_code == 422
        body = r.json()
        assert body["type"] == "InvalidInput" and body["what"] == "function"
        assert {e["field"] for e in body["errors"]} == {"name", "runtime", "code", "timeout", "memory"}
        assert all(e["message"] for e in body["errors"]) and "runtime" in body["error"]


def test_framework_validation_errors_use_the_same_shape(auth_server):
    with auth_server.client() as c:
        r = c.get("/api/v1/invocations", params={"limit": "many", "offset": "x", "since": "yesterday"})
        assert r.status_code == 422
        body = r.json()
        assert body["type"] == "InvalidInput" and {e["field"] for e in body["errors"]} == {"limit", "offset", "since"}


def test_malformed_json_is_400_and_not_an_object_is_422(auth_server):
    with auth_server.client() as c:
        r = c.post("/api/v1/functions", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "body"
        assert "line 1" in r.json()["errors"][0]["message"]
        r = c.post("/api/v1/functions", json=[1, 2])
        assert r.status_code == 422 and r.json()["errors"] == [
            {"field": "body", "message": "must be a JSON object, got list"}
        ]
        r = c.post("/api/v1/functions/hello-python/invoke", json={"name": "World"})
        assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["name"]


def test_404_409_and_unknown_routes(auth_server):
    with auth_server.client() as c:
        r = c.get("/api/v1/functions/no-such-fn")
        assert r.status_code == 404 and r.json()["type"] == "NotFound" and "no-such-fn" in r.json()["error"]
        assert c.post("/api/v1/functions/no-such-fn/invoke", json={}).status_code == 404
        body = {"name": "dup-fn", "runtime": "python", "code": PY}
        assert c.post("/api/v1/functions", json=body).status_code == 201
        r = c.post("/api/v1/functions", json=body)
        assert r.status_code == 409 and r.json()["type"] == "Conflict"
        r = c.get("/api/v1/nowhere")
        assert r.status_code == 404 and "no route" in r.json()["error"]


def test_body_too_large_is_413(auth_server):
    big = b'{"event": "' + b"x" * 70_000 + b'"}'  # the fixture's limit is 64 KiB
    with auth_server.client() as c:
        r = c.post("/api/v1/functions/hello-python/invoke", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["type"] == "BodyTooLarge" and "65536" in r.json()["error"]

        def chunks():  # no content-length: counted as it streams
            for _ in range(10):
                yield b"x" * 10_000

        r = c.post("/api/v1/functions", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post("/api/v1/functions/hello-python/invoke", json={"event": "x" * 1000}).status_code == 200


# -- versions, rollback, history, saved events, logs, alerts over HTTP ----------------------------
def test_v1_routes_answer_their_documented_shapes(auth_server):
    with auth_server.client() as c:
        assert (
            c.post("/api/v1/functions", json={"name": "shape-fn", "runtime": "python", "code": PY}).status_code == 201
        )
        assert c.put("/api/v1/functions/shape-fn", json={"timeout": 5}).status_code == 200
        assert c.patch("/api/v1/functions/shape-fn", json={"memory": 256}).json()["function"]["version"] == 3
        v = c.get("/api/v1/functions/shape-fn/versions").json()
        assert v["count"] == 3 and [x["version"] for x in v["versions"]] == [1, 2, 3]
        r = c.post("/api/v1/functions/shape-fn/rollback", json={"version": 1})
        assert r.status_code == 200 and r.json()["function"]["version"] == 4 and r.json()["function"]["timeout"] == 30
        r = c.post("/api/v1/functions/shape-fn/rollback", json={"version": "one", "extra": 1})
        assert r.status_code == 422 and {e["field"] for e in r.json()["errors"]} == {"version", "extra"}
        inv = c.post("/api/v1/functions/shape-fn/invoke", json={"event": {"a": 1}}).json()
        h = c.get("/api/v1/functions/shape-fn/invocations").json()
        assert h["count"] == 1 and h["invocations"][0]["id"] == inv["invocation_id"]
        assert c.get(f"/api/v1/invocations/{inv['invocation_id']}").json()["invocation"]["status"] == "success"
        assert c.get("/api/v1/invocations", params={"function": "shape-fn", "status": "failed"}).json()["count"] == 0
        r = c.put("/api/v1/functions/shape-fn/saved-events/sample", json={"event": {"a": 1}})
        assert r.status_code == 200 and r.json()["saved_event"]["name"] == "sample"
        assert c.get("/api/v1/functions/shape-fn/saved-events").json()["count"] == 1
        assert c.delete("/api/v1/functions/shape-fn/saved-events/sample").status_code == 200
        assert c.get("/api/v1/logs", params={"level": "debug", "limit": 5}).json()["count"] <= 5
        r = c.post("/api/v1/alerts/rules", json={"name": "errs", "metric": "error_rate", "threshold": 10, "for": 30})
        assert r.status_code == 201 and r.json()["rule"]["for"] == 30
        assert c.put("/api/v1/alerts/rules/errs", json={"threshold": 20}).json()["rule"]["threshold"] == 20
        assert c.get("/api/v1/alerts").json()["count"] >= 1
        assert "alerts" in c.get("/api/v1/alerts/history", params={"limit": 5}).json()
        assert c.delete("/api/v1/alerts/rules/errs").status_code == 200


# -- the event stream ---------------------------------------------------------------------------
def test_event_stream_is_sse_with_heartbeats_and_kinds(auth_server):
    with auth_server.client() as c:
        with c.stream("GET", "/api/v1/events", params={"kinds": "function.created"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert next(lines) == ": connected"
            created = False
            seen_heartbeat = False
            event_lines: list[str] = []
            for line in lines:
                if line == ": heartbeat":  # the fixture's heartbeat is 0.2 s
                    seen_heartbeat = True
                    if not created:
                        with auth_server.client() as c2:
                            assert (
                                c2.post(
                                    "/api/v1/functions", json={"name": "sse-fn", "runtime": "python", "code": PY}
                                ).status_code
                                == 201
                            )
                        created = True
                elif line.startswith(("id:", "event:", "data:")):
                    event_lines.append(line)
                elif line == "" and event_lines:
                    break
            assert seen_heartbeat
            assert event_lines[1] == "event: function.created"
            data = json.loads(event_lines[2].removeprefix("data: "))
            assert data["kind"] == "function.created" and data["data"]["name"] == "sse-fn"
        r = c.get("/api/v1/events", params={"kinds": "bogus"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kinds"


# -- docs, CORS -----------------------------------------------------------------------------------
def test_openapi_lists_the_routes(auth_server):
    with auth_server.client() as c:
        spec = c.get("/openapi.json").json()
        paths = set(spec["paths"])
        for p in (
            "/api/v1/functions",
            "/api/v1/functions/{ref}",
            "/api/v1/functions/{ref}/invoke",
            "/api/health",
            "/api/v1/health",
            "/api/metrics",
            "/metrics",
            "/api/v1/events",
            "/api/v1/invocations",
            "/api/v1/logs",
            "/api/v1/alerts/rules",
            "/api/v1/functions/{ref}/rollback",
        ):
            assert p in paths, p
        assert (
            "name"
            in spec["paths"]["/api/v1/functions"]["post"]["requestBody"]["content"]["application/json"]["schema"][
                "properties"
            ]
        )
        assert c.get("/docs").status_code == 200


def test_cors_is_closed_by_default(auth_server):
    r = httpx.options(
        auth_server.url + "/api/v1/functions",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_cors_origin_can_be_allowed(tmp_path, shared_cache):
    server = start_server(tmp_path / "cors", "--cors-origin", "https://ui.example", cache=shared_cache)
    try:
        r = httpx.options(
            server.url + "/api/v1/functions",
            headers={
                "origin": "https://ui.example",
                "access-control-request-method": "GET",
                "access-control-request-headers": "authorization",
            },
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ui.example"
        r = httpx.options(
            server.url + "/api/v1/functions",
            headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
        )
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"
    finally:
        assert server.stop() == 0


# -- throttling -----------------------------------------------------------------------------------
async def test_throttled_invocation_is_429_with_the_result_shape(tmp_path, shared_cache):
    """No queue and max_concurrency 1: while one runs (seen on the event stream), the next is
    throttled at once."""
    server = start_server(tmp_path / "throttle", cache=shared_cache, CLOUDFN_RUNTIME_QUEUE_SIZE="0")
    remote = RemotePlatform(server.url, server.token)
    try:
        slow = "import time\ndef handler(event, context):\n    time.sleep(event)\n    return 'slept'\n"
        await remote.create_function({"name": "one-at-a-time", "runtime": "python", "code": slow, "max_concurrency": 1})
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(), timeout=60) as c:
            stream = remote.events({"invocation.started"})
            started = asyncio.ensure_future(anext(stream))
            first = asyncio.ensure_future(c.post("/api/v1/functions/one-at-a-time/invoke", json={"event": 1.5}))
            for _ in range(100):  # the stream subscribes on its first read: retry the probe until it sees one
                done, _ = await asyncio.wait({started, first}, timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
                if started in done:
                    break
                assert not first.done(), "the first invocation ended before the stream saw it start"
            await started
            r = await c.post("/api/v1/functions/one-at-a-time/invoke", json={"event": 0})
            assert r.status_code == 429, r.text
            body = r.json()
            assert body["success"] is False and body["error_type"] == "Throttled" and isinstance(body["error"], str)
            assert r.headers["retry-after"] == "1"
            res = await remote.invoke("one-at-a-time", 0)  # RemotePlatform returns it, as LocalPlatform does
            assert res.success is False and res.error_type.value == "Throttled"
            assert (await first).json()["result"] == "slept"
            await stream.aclose()
    finally:
        await remote.close()
        assert server.stop() == 0


# -- the loopback rule ------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_no_auth_beyond_loopback_refuses_to_start(tmp_path, host):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudfn_tui.cli",
            "--data-dir",
            str(tmp_path / "d"),
            "serve",
            "--host",
            host,
            "--port",
            "0",
            "--no-auth",
        ],
        env=server_env(tmp_path),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "refusing to serve without a token" in r.stderr and host in r.stderr and "loopback" in r.stderr


# -- attaching and RemotePlatform's messages ----------------------------------------------------------
def test_a_second_cloudfn_on_a_served_data_dir_attaches(auth_server):
    env = {**auth_server.env}
    env.pop("CLOUDFN_TOKEN", None)
    r = subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(auth_server.data_dir), "info", "--json"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    # Through the server's private socket, with no token (the socket's mode is the guard).
    assert info["mode"] == "remote" and info["server"] == f"unix:{auth_server.data_dir.resolve() / 'cloudfn.sock'}"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudfn_tui.cli",
            "--data-dir",
            str(auth_server.data_dir),
            "invoke",
            "hello-python",
            "--event",
            '{"name": "attach"}',
            "--json",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["result"]["message"] == "Hello, attach!"


def test_remote_flags_env_and_named_remotes(auth_server, tmp_path):
    env = server_env(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(
        f"remotes:\n  lab: {{url: '{auth_server.url}', token_file: '{auth_server.data_dir / 'server.token'}'}}\n"
    )
    cli = [sys.executable, "-m", "cloudfn_tui.cli", "--config", str(cfg)]

    def run(*args: str, **extra: str):
        return subprocess.run([*cli, *args], env={**env, **extra}, cwd=REPO, capture_output=True, text=True, timeout=60)

    r = run("list", "--json", "--remote", "lab")
    assert r.returncode == 0, r.stderr
    assert "hello-python" in {f["name"] for f in json.loads(r.stdout)["functions"]}
    assert run("--remote", auth_server.url, "--token", auth_server.token, "get", "hello-python").returncode == 0
    r = run("get", "hello-python", CLOUDFN_REMOTE=auth_server.url, CLOUDFN_TOKEN=auth_server.token)
    assert r.returncode == 0, r.stderr
    r = run("list", CLOUDFN_REMOTE=auth_server.url)
    assert r.returncode == 5 and auth_server.url in r.stderr and "401" in r.stderr and "--token" in r.stderr
    r = run("list", "--remote", "nowhere")
    assert r.returncode == 2 and "lab" in r.stderr


async def test_remote_errors_name_the_url(auth_server, tmp_path):
    s = socket.socket()  # a free port that nothing listens on
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    refused = RemotePlatform(f"http://127.0.0.1:{port}", "t")
    with pytest.raises(Unavailable) as info:
        await refused.list_functions()
    assert f"127.0.0.1:{port}" in info.value.message and "connection refused" in info.value.message
    assert info.value.exit_code == 5
    await refused.close()

    wrong = RemotePlatform(auth_server.url, "wrong-token")
    with pytest.raises(Unauthorized) as info:
        await wrong.list_functions()
    assert auth_server.url in info.value.message and info.value.exit_code == 5
    await wrong.close()

    good = RemotePlatform(auth_server.url, auth_server.token)
    with pytest.raises(NotFound):
        await good.get_function("nope-nope")
    with pytest.raises(InvalidInput) as info:
        await good.create_function({"name": "X/Y", "runtime": "go", "code": "x"})
    assert {e.field for e in info.value.errors} == {"name"}
    await good.close()


def _fake_server(body: dict) -> tuple[http.server.HTTPServer, str]:
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


@pytest.mark.parametrize(
    "body,expect",
    [
        ({"status": "ok", "service": "cloudfn", "version": "9.0.0", "api": 9}, "API version 9"),
        ({"status": "ok", "service": "something-else"}, "is not a cloudfn server"),
    ],
)
async def test_an_incompatible_server_is_named(body, expect):
    srv, url = _fake_server(body)
    remote = RemotePlatform(url, "t")
    try:
        with pytest.raises(Unavailable) as info:
            await remote.list_functions()
        assert expect in info.value.message and url in info.value.message
    finally:
        await remote.close()
        srv.shutdown()
        srv.server_close()


async def test_events_queued_together_leave_in_one_chunk_in_order():
    """The SSE writer joins what is already queued (one send through the framework per loop
    pass under load, not one per event), keeps the order and the framing, and still ends at
    the end mark."""
    from core.models import Event
    from core.server.app import ServerSettings, ServerState
    from core.server.routes.events import SSE_BATCH, _sse

    source: asyncio.Queue[Event | None] = asyncio.Queue()
    n = SSE_BATCH + 6  # more than one chunk's worth

    async def events():
        while (ev := await source.get()) is not None:
            yield ev

    stream = _sse(events(), ServerSettings(heartbeat=60), ServerState())
    assert await anext(stream) == b": connected\n\n"
    for i in range(n):
        source.put_nowait(Event(seq=i, kind="invocation.finished", data={"i": i}))
    source.put_nowait(None)
    chunks = [chunk async for chunk in stream]
    assert len(chunks) == 2, [c[:80] for c in chunks]  # SSE_BATCH events, then the rest
    frames = b"".join(chunks).split(b"\n\n")[:-1]
    assert [json.loads(f.split(b"data: ", 1)[1])["data"]["i"] for f in frames] == list(range(n))
    assert all(f.startswith(b"id: %d\nevent: invocation.finished\n" % i) for i, f in enumerate(frames))
