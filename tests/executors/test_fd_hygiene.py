"""Issue 12, part 3: each runner closes the fds it inherited beyond stdio and the protocol's
before the user's code loads (a second line behind the spawner's close_fds). The runner is
started directly, outside the sandbox, by a parent that passes it an inheritable listening
socket, a file of its own and one end of a pipe; the function lists /proc/self/fd and reports
what it sees."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from exec_helpers import fn

from core.executors.runtimes.go import GoRuntime

RUNNERS = Path(__file__).resolve().parents[2] / "core" / "executors" / "runners"

CODE = {
    "python": (
        "import os\n"
        "def handler(event, context):\n"
        "    out = {}\n"
        "    for n in os.listdir('/proc/self/fd'):\n"
        "        try:\n"
        "            out[n] = os.readlink('/proc/self/fd/' + n)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return out\n"
    ),
    "nodejs": (
        "const fs = require('fs');\n"
        "function handler(event, context) {\n"
        "  const out = {};\n"
        "  for (const n of fs.readdirSync('/proc/self/fd')) {\n"
        "    try { out[n] = fs.readlinkSync('/proc/self/fd/' + n); } catch (e) { /* the listing's */ }\n"
        "  }\n"
        "  return out;\n"
        "}\n"
    ),
    "go": (
        "package main\n\n"
        'import "os"\n\n'
        "func handler(event interface{}, context map[string]string) interface{} {\n"
        "\tout := map[string]string{}\n"
        '\tents, _ := os.ReadDir("/proc/self/fd")\n'
        "\tfor _, e := range ents {\n"
        '\t\tif l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {\n'
        "\t\t\tout[e.Name()] = l\n"
        "\t\t}\n"
        "\t}\n"
        "\treturn out\n"
        "}\n"
    ),
}


def _frame(obj) -> bytes:
    body = json.dumps(obj).encode()
    return len(body).to_bytes(4, "big") + body


def _read_frame(fd: int) -> dict:
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = os.read(fd, n - len(buf))
            assert chunk, "the runner closed its reply pipe"
            buf += chunk
        return buf

    return json.loads(exact(int.from_bytes(exact(4), "big")))


async def _command(runtime: str, tmp_path: Path, go_cache: Path) -> tuple[list[str], dict]:
    if runtime == "python":
        code = tmp_path / "function.py"
        code.write_text(CODE["python"])
        return (
            [os.path.realpath(sys.executable), "-I", "-S", "-u", "-B", str(RUNNERS / "python_runner.py")],
            {"type": "init", "code_path": str(code), "handler": "handler"},
        )
    if runtime == "nodejs":
        code = tmp_path / "index.js"
        code.write_text(CODE["nodejs"])
        return ["node", str(RUNNERS / "node_runner.js")], {"type": "init", "code_path": str(code), "handler": "handler"}
    rt = GoRuntime(tmp_path / "work", go_cache)
    wi = await rt.prepare(fn("go", CODE["go"]))
    assert not hasattr(wi, "error_type"), getattr(wi, "error", "")
    binary = Path(wi.spec.mounts[0].source) / "handler"
    return [str(binary)], {"type": "init", "handler": "handler"}


@pytest.mark.parametrize("runtime", ["python", "nodejs", pytest.param("go", marks=pytest.mark.go)])
async def test_the_function_sees_no_inherited_fd(runtime, tmp_path, go_cache):
    argv, init = await _command(runtime, tmp_path, go_cache)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    secret = tmp_path / "platform-secret.db"
    secret.write_text("secret")
    secret_fd = os.open(secret, os.O_RDONLY)
    other_r, other_w = os.pipe()  # one end of another process's pipe
    req_r, req_w = os.pipe()
    resp_r, resp_w = os.pipe()
    extra = (listener.fileno(), secret_fd, other_r)
    for fd in extra:
        os.set_inheritable(fd, True)
    proc = subprocess.Popen(
        argv + [str(req_r), str(resp_w)],
        pass_fds=(req_r, resp_w, *extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        os.close(req_r)
        os.close(resp_w)
        os.write(req_w, _frame(dict(init, nonce="0" * 32, rss=False)))
        ready = _read_frame(resp_r)
        assert ready.get("ok"), ready
        os.write(
            req_w,
            _frame(
                {
                    "type": "invoke",
                    "event": {},
                    "context": {},
                    "nonce": "1" * 32,
                    "timeout": 10.0,
                    "deadline_ms": 0,
                    "max_result_bytes": 1 << 20,
                }
            ),
        )
        reply = _read_frame(resp_r)
        assert reply.get("ok"), reply
        assert reply["nonce"] == "1" * 32, "the runner did not echo the request's nonce"
        seen: dict[str, str] = reply["result"]
        assert seen, "the function listed no fd at all"
        links = set(seen.values())
        assert not any(link.startswith("socket:") for link in links), f"an inherited socket is open: {seen}"
        assert str(secret) not in links, f"the parent's file is open: {seen}"
        other_link = os.readlink(f"/proc/self/fd/{other_r}")
        assert other_link not in links, f"the parent's pipe is open: {seen}"
        # What is left: stdio, the protocol's pipes and the runtime's own (Node's libuv loops and
        # self-pipes, a /dev/null it opens later, maybe at a number an inherited fd had).
        for n, link in seen.items():
            assert (
                int(n) in (0, 1, 2, req_r, resp_w)
                or link.startswith(("anon_inode:", "pipe:", "/proc/"))
                or link == "/dev/null"
            ), f"fd {n} -> {link} is open in the function"
    finally:
        os.close(req_w)
        proc.wait(timeout=30)
        os.close(resp_r)
        for fd in (secret_fd, other_r, other_w):
            os.close(fd)
        listener.close()
    assert proc.returncode == 0, proc.stderr.read().decode(errors="replace")
