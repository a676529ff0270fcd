"""A whole scenario as root under a real `cloudfn serve`: secrets set over REST and by the CLI,
used by functions in two runtimes that print them (plain and base64), updated, listed, with the
event stream open. Afterwards no value (nor its base64) is in any API answer but the invoke
answers (the function's own), in the event stream, in CLI output, on any command line or
launcher environment on the host, or in any file the platform wrote."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading

import httpx
import pytest
from hostile import HOLDER
from serverproc import REPO, start_server

V1 = "Leak-Test-Value-One-7c2d"
V2 = "Leak-Test-Value-Two-91fe"
CLI_VALUE = "Cli-Set-Value-3b8a"
VALUES = (V1, V2, CLI_VALUE)


def forms(v: str) -> list[bytes]:
    raw = v.encode()
    return [raw, base64.b64encode(raw).rstrip(b"="), base64.urlsafe_b64encode(raw).rstrip(b"=")]


def assert_clean(blob: bytes | str, where: str) -> None:
    data = blob.encode() if isinstance(blob, str) else blob
    for v in VALUES:
        for f in forms(v):
            assert f not in data, f"{f!r} leaked into {where}"


class Stream(threading.Thread):
    """The raw SSE stream, kept whole."""

    def __init__(self, url: str, headers: dict[str, str]):
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.chunks: list[bytes] = []
        self.connected = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=None) as c, c.stream("GET", self.url, headers=self.headers) as r:
            for chunk in r.iter_bytes():
                self.chunks.append(chunk)
                if b": connected" in b"".join(self.chunks):
                    self.connected.set()
                if self.stop.is_set():
                    return


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


@pytest.mark.skipif(os.geteuid() != 0, reason="the attack runs as root, as the platform does in production")
def test_no_value_anywhere_but_the_functions_own_answer(tmp_path, shared_cache):
    server = start_server(tmp_path, "--mode", "release", cache=shared_cache)
    answers: list[tuple[str, bytes]] = []
    try:
        c = server.client()
        if not c.get("/api/v1/info").json()["protections"]["bwrap_namespaces"]:
            pytest.skip("secrets need the bwrap sandbox")

        def call(method: str, path: str, **kw) -> httpx.Response:
            r = c.request(method, path, **kw)
            if not path.endswith("/invoke"):
                answers.append((f"{method} {path} -> {r.status_code}", r.content))
            return r

        stream = Stream(f"{server.url}/api/v1/events", server.headers())
        stream.start()
        assert stream.connected.wait(30)

        assert call("PUT", "/api/v1/secrets/db-pw", json={"value": V1}).status_code == 200
        # the CLI, attached to the server: the value from stdin
        env = {**server.env, "CLOUDFN_REMOTE": server.url, "CLOUDFN_TOKEN": server.token}
        cli = [sys.executable, "-m", "cloudfn_tui.cli"]
        out = subprocess.run(
            [*cli, "secrets", "set", "cli-pw"],
            input=CLI_VALUE + "\n",
            capture_output=True,
            text=True,
            env=env,
            cwd=str(REPO),
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "cli-pw" in out.stdout
        cli_output = out.stdout + out.stderr

        for runtime in ("python", "nodejs"):
            r = call(
                "POST",
                "/api/v1/functions",
                json={
                    "name": f"leaky-{runtime}",
                    "runtime": runtime,
                    "code": HOLDER[runtime],
                    "secrets": ["db-pw", "cli-pw"],
                    "secret_env": {"DB_PW": "db-pw"},
                    "environment": {"API_TOKEN": "plain-and-warned"},
                },
            )
            assert r.status_code == 201, r.text
            assert any("API_TOKEN" in w and "secret" in w for w in r.json()["warnings"])
        for runtime in ("python", "nodejs"):
            r = c.post(f"/api/v1/functions/leaky-{runtime}/invoke", json={"event": {"leak": True}})
            body = r.json()
            assert body["success"], body
            assert body["result"]["file"] == V1 and "leaking " + V1 in body["logs"]  # the caller's own
            r = c.post(f"/api/v1/functions/leaky-{runtime}/invoke", json={"event": {"name": "cli-pw", "leak": True}})
            assert r.json()["result"]["file"] == CLI_VALUE

        # While the workers are warm: the launcher chain as the host sees it
        procs = descendants(server.proc.pid)
        assert procs
        for pid in procs:
            assert_clean(read(f"/proc/{pid}/cmdline"), f"the command line of {pid}")
            environ = read(f"/proc/{pid}/environ")
            if any(f in environ for f in forms(V1)):  # only the function's own process holds DB_PW
                status = read(f"/proc/{pid}/status").decode()
                uid = int(status.split("\nUid:")[1].split()[0])
                exe = os.path.basename(read(f"/proc/{pid}/cmdline").split(b"\0")[0].decode())
                assert uid != 0 and exe.startswith(("python", "node")), (pid, uid, exe)

        assert call("PUT", "/api/v1/secrets/db-pw", json={"value": V2}).status_code == 200
        for runtime in ("python", "nodejs"):
            body = c.post(f"/api/v1/functions/leaky-{runtime}/invoke", json={"event": {"leak": True}}).json()
            assert body["result"] == {"file": V2, "env": V2, "ls": ["cli-pw", "db-pw"]}
        # error paths answer without echoing a value
        call("PUT", "/api/v1/secrets/..%2Fx", json={"value": V1})
        call("PUT", "/api/v1/secrets/ok-name", json={"value": V1, "extra": V2})
        call(
            "PUT",
            "/api/v1/secrets/ok-name",
            content=b'{"value": "' + V1.encode() + b'"',
            headers={"content-type": "application/json"},
        )
        assert call("DELETE", "/api/v1/secrets/db-pw").status_code == 409
        for path in (
            "/api/v1/secrets",
            "/api/v1/functions",
            "/api/v1/functions/leaky-python",
            "/api/v1/functions/leaky-python/versions",
            "/api/v1/invocations?limit=100",
            "/api/v1/logs?limit=1000",
            "/api/metrics",
            "/metrics",
            "/api/v1/info",
            "/api/v1/alerts",
            "/openapi.json",
        ):
            assert call("GET", path).status_code == 200, path
        listed = {s["name"]: s for s in c.get("/api/v1/secrets").json()["secrets"]}
        assert listed["db-pw"]["used_by"] == ["leaky-nodejs", "leaky-python"]
        assert listed["db-pw"]["size"] == len(V2)
        for rec in c.get("/api/v1/invocations?limit=100").json()["invocations"]:
            if rec["function_name"].startswith("leaky"):
                assert rec["result"]["file"] == "***" and "leaking *** ***" in rec["logs"], rec

        for args in (
            ["secrets", "list"],
            ["info"],
            ["history", "--json"],
            ["logs", "--limit", "500"],
            ["get", "leaky-python"],
            ["list"],
            ["metrics"],
        ):
            out = subprocess.run([*cli, *args], capture_output=True, text=True, env=env, cwd=str(REPO), timeout=60)
            assert out.returncode == 0, (args, out.stderr)
            cli_output += out.stdout + out.stderr
        assert "db-pw" in cli_output and "API_TOKEN looks like a credential" in cli_output

        call("POST", "/api/v1/secrets/key/rotate")
        stream.stop.set()
        c.post("/api/v1/functions", json={"name": "last", "runtime": "python", "code": HOLDER["python"]})
        stream.join(30)
    finally:
        code = server.stop()
    assert code == 0, server.stderr()

    assert len(answers) >= 20
    for where, body in answers:
        assert_clean(body, where)
    events = b"".join(stream.chunks)
    assert b"invocation.finished" in events and b"leaking ***" in events
    assert_clean(events, "the event stream")
    assert_clean(cli_output, "the CLI's output")
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name == "secrets.json" for p in files) and any("history" in str(p) for p in files)
    for p in files:
        assert_clean(p.read_bytes(), str(p))
