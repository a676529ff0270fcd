"""Asynchronous invocation through a real `cloudfn serve`: accepted work survives a SIGKILL
and a graceful stop, the wire format, the token, and destinations sent by the server."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
from serverproc import start_server  # noqa: E402

SLOWISH = (
    "import time\n"
    "def handler(event, context):\n"
    "    time.sleep(0.05)\n"
    "    return {'id': context['request_id'], 'attempt': context.get('attempt')}\n"
)
FAILS = "def handler(event, context):\n    raise ValueError('no')\n"
EVENT = {"x-cloudfn-invocation-type": "Event"}


def create(c: httpx.Client, name: str, code: str, **kw) -> None:
    r = c.post("/api/v1/functions", json={"name": name, "runtime": "python", "code": code, **kw})
    assert r.status_code == 201, r.text


def settled(c: httpx.Client, invocation_id: str) -> dict:
    r = c.get(f"/api/v1/invocations/{invocation_id}", params={"wait": 60})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
def test_sigkill_mid_way_then_restart_every_accepted_invocation_completes(tmp_path, shared_cache):
    root = tmp_path / "crash"
    server = start_server(root, "--mode", "release", cache=shared_cache)
    try:
        with server.client() as c:
            create(c, "crashy", SLOWISH)
            ids = []
            for i in range(200):
                r = c.post("/api/v1/functions/crashy/invoke", json={"event": {"i": i}}, headers=EVENT)
                assert r.status_code == 202, r.text
                ids.append(r.json()["invocation_id"])
            assert len(set(ids)) == 200
            settled(c, ids[0])  # the consumers are at work...
            depth = c.get("/api/v1/metrics").json()["async"]["depth"]
            assert depth > 0  # ...and not done: the kill lands mid-way
    finally:
        server.stop(signal.SIGKILL)
    server = start_server(root, "--mode", "release", cache=shared_cache)
    try:
        with server.client() as c:
            views = [settled(c, i) for i in ids]
            assert [v["status"] for v in views] == ["success"] * 200
            assert all(v["invocation"]["result"]["id"] == v["invocation_id"] for v in views)
            # At least once: every id has a successful record in the history (some may have two).
            r = c.get("/api/v1/invocations", params={"function": "crashy", "status": "success", "limit": 1000})
            assert {rec["id"] for rec in r.json()["invocations"]} >= set(ids)
            # At least once: a copy redelivered after the kill may still be running; the queue
            # drains as it finishes (each finish is an event on the stream).
            with c.stream("GET", "/api/v1/events", params={"kinds": "invocation.finished"}, timeout=60) as stream:
                lines, deadline = stream.iter_lines(), time.monotonic() + 60
                while (depth := c.get("/api/v1/metrics").json()["async"]["depth"]) > 0:
                    assert time.monotonic() < deadline, f"{depth} invocations still queued a minute later"
                    next(lines)
    finally:
        assert server.stop() == 0, server.stderr()


def test_wire_format_token_and_bad_requests(tmp_path, shared_cache):
    server = start_server(tmp_path / "wire", "--mode", "release", cache=shared_cache)
    try:
        with server.client() as c:
            create(c, "wired", SLOWISH, **{"async": {"max_retries": 0}})
            create(c, "broken", FAILS, **{"async": {"max_retries": 0}})
            r = c.post("/api/v1/functions/wired/invoke?async=true", json={"event": 1})
            assert r.status_code == 202 and r.json()["status"] == "queued" and r.json()["function_name"] == "wired"
            body = settled(c, r.json()["invocation_id"])
            assert body["status"] == "success" and body["invocation"]["trigger"] == "async"
            assert body["invocation"]["result"]["attempt"] == "1"
            sync = c.post(
                "/api/v1/functions/wired/invoke",
                json={"event": 1},
                headers={"x-cloudfn-invocation-type": "RequestResponse"},
            )
            assert sync.status_code == 200 and sync.json()["success"] is True
            got = c.get(f"/api/v1/invocations/{sync.json()['invocation_id']}").json()
            assert got["status"] == "success" and got["invocation"]["id"] == sync.json()["invocation_id"]
            for headers, url in (
                ({"x-cloudfn-invocation-type": "Later"}, "/api/v1/functions/wired/invoke"),
                ({}, "/api/v1/functions/wired/invoke?async=maybe"),
            ):
                bad = c.post(url, json={}, headers=headers)
                assert bad.status_code == 422, bad.text
                assert bad.json()["errors"][0]["field"] in ("X-Cloudfn-Invocation-Type", "async")
            assert c.post("/api/v1/functions/nope/invoke", json={}, headers=EVENT).status_code == 404
            assert c.get("/api/v1/invocations/x", params={"wait": "nan"}).status_code == 422
            assert c.get("/api/v1/invocations?trigger=async&function=wired").json()["count"] == 1
            assert c.get("/api/v1/invocations?trigger=bogus").status_code == 422

            dead_id = c.post("/api/v1/functions/broken/invoke", json={"event": {"o": 1}}, headers=EVENT).json()
            assert settled(c, dead_id["invocation_id"])["status"] == "dead"
            letters = c.get("/api/v1/dead-letters", params={"function": "broken"}).json()
            assert letters["count"] == 1 and letters["dead_letters"][0]["event"] == {"o": 1}
            assert letters["dead_letters"][0]["errors"][0]["error"] == "ValueError: no"
            text = c.get("/metrics").text
            assert "cloudfn_async_dead_letters 1" in text and "cloudfn_async_queue_depth 0" in text
        # Without the token: nothing is queued, listed, replayed or deleted.
        with httpx.Client(base_url=server.url, timeout=30) as anon:
            assert anon.post("/api/v1/functions/wired/invoke", json={}, headers=EVENT).status_code == 401
            assert anon.get("/api/v1/dead-letters").status_code == 401
            assert anon.post(f"/api/v1/dead-letters/{dead_id['invocation_id']}/replay").status_code == 401
            assert anon.delete(f"/api/v1/dead-letters/{dead_id['invocation_id']}").status_code == 401
        with server.client() as c:
            assert c.get("/api/v1/dead-letters").json()["count"] == 1
            r = c.post(f"/api/v1/dead-letters/{dead_id['invocation_id']}/replay")
            assert r.status_code == 202 and r.json()["invocation_id"] == dead_id["invocation_id"]
    finally:
        assert server.stop() == 0, server.stderr()


class _Catcher(BaseHTTPRequestHandler):
    got: list = []
    arrived = threading.Event()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).got.append((dict(self.headers), json.loads(body)))
        self.send_response(302)  # a redirect to the platform's own API: never followed
        self.send_header("location", self.server.api_url)
        self.end_headers()
        type(self).arrived.set()

    def log_message(self, *a):
        pass


def test_webhook_sent_by_the_server_carries_no_token_and_follows_no_redirect(tmp_path, shared_cache):
    catcher = HTTPServer(("127.0.0.1", 0), _Catcher)
    threading.Thread(target=catcher.serve_forever, daemon=True).start()
    server = start_server(
        tmp_path / "hook", "--mode", "release", cache=shared_cache, CLOUDFN_ASYNC_WEBHOOK_ALLOW_PRIVATE="true"
    )
    catcher.api_url = f"{server.url}/api/v1/functions"
    try:
        with server.client() as c:
            url = f"http://127.0.0.1:{catcher.server_port}/hook"
            create(c, "hooked", FAILS, **{"async": {"max_retries": 0, "on_failure": url}})
            accepted = c.post("/api/v1/functions/hooked/invoke", json={"event": 5}, headers=EVENT).json()
            assert _Catcher.arrived.wait(60)
            headers, body = _Catcher.got[0]
            assert server.token not in json.dumps(headers) and "authorization" not in {k.lower() for k in headers}
            assert body["requestContext"]["requestId"] == accepted["invocation_id"]
            assert len(_Catcher.got) == 1  # the 302 was not followed (nor retried: it is an answer)
    finally:
        catcher.shutdown()
        catcher.server_close()
        assert server.stop() == 0, server.stderr()


def test_a_web_page_cannot_queue_or_replay_on_a_no_auth_server(tmp_path, shared_cache):
    server = start_server(tmp_path / "page", "--no-auth", "--mode", "release", token=None, cache=shared_cache)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            create(c, "target", FAILS, **{"async": {"max_retries": 0}})
            page = {"origin": "https://evil.example"}
            r = c.post("/api/v1/functions/target/invoke?async=true", json={}, headers=page)
            assert r.status_code == 403 and r.json()["type"] == "ForbiddenOrigin"
            form = c.post(
                "/api/v1/functions/target/invoke",
                content=b"event=1",
                headers={**EVENT, "content-type": "application/x-www-form-urlencoded"},
            )
            assert form.status_code == 415
            rebound = c.get("/api/v1/dead-letters", headers={"host": "evil.example"})
            assert rebound.status_code == 421
            dead = c.post("/api/v1/functions/target/invoke", json={}, headers=EVENT).json()["invocation_id"]
            assert settled(c, dead)["status"] == "dead"
            for method in ("POST", "DELETE"):
                url = f"/api/v1/dead-letters/{dead}" + ("/replay" if method == "POST" else "")
                assert c.request(method, url, headers=page).status_code == 403
            assert c.get("/api/v1/dead-letters").json()["count"] == 1
    finally:
        assert server.stop() == 0, server.stderr()
