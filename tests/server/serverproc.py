"""A real `cloudfn serve` in a subprocess, for the server and conformance tests.

Started on a free loopback port (`--port 0`); the test waits for the line the server prints
once it listens (an event, not a sleep), then for its first health answer. The rest of its
stdout (the access log, unless `--mode release`) is copied to a file by a thread: a pipe nobody
reads fills at 64 KiB and stalls the server at its next log line.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
START_DEADLINE = 60.0


@dataclass
class ServerProc:
    proc: subprocess.Popen
    url: str
    token: str | None
    data_dir: Path
    announce: str
    stderr_path: Path
    env: dict[str, str] = field(default_factory=dict)
    stdout_path: Path | None = None
    drain: threading.Thread | None = None

    def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"} if self.token else {}

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(), timeout=60, **kw)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"cloudfn serve did not stop within {timeout} s after {signal.Signals(sig).name}\n" + self.stderr()
            ) from None

    def stdout(self, timeout: float = 30) -> str:
        """What the server wrote to stdout after its "serving on" line; once it has stopped, all
        of it (the copy ends at the pipe's end, when the server and its children have exited)."""
        if self.drain is not None and self.proc.poll() is not None:
            self.drain.join(timeout)
        try:
            return self.stdout_path.read_text(errors="replace") if self.stdout_path else ""
        except OSError:
            return ""

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""


def server_env(root: Path, cache: Path | None = None, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CLOUDFN_") and k not in ("PORT", "DATA_DIR", "FUNCTIONS_DIR", "LOG_LEVEL", "GIN_MODE")
    }
    env.update(
        XDG_CONFIG_HOME=str(root / "xdg-config"),
        XDG_DATA_HOME=str(root / "xdg-data"),
        XDG_CACHE_HOME=str(cache or root / "xdg-cache"),
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_server(
    root: Path,
    *args: str,
    token: str | None = "test-token-0123456789",
    cache: Path | None = None,
    wait_health: bool = True,
    pass_fds: tuple[int, ...] = (),
    umask: int = -1,
    **env_extra: str,
) -> ServerProc:
    """Start `cloudfn --data-dir root/data serve --port 0 ARGS`; with `token`, CLOUDFN_TOKEN."""
    root.mkdir(parents=True, exist_ok=True)
    data_dir = root / "data"
    extra = dict(env_extra)
    if token:
        extra["CLOUDFN_TOKEN"] = token
    env = server_env(root, cache, **extra)
    stderr_path = root / "serve.stderr"
    cmd = [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(data_dir), "serve", "--port", "0", *args]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=str(REPO), pass_fds=pass_fds, umask=umask
        )
    line = _first_line(proc, START_DEADLINE)
    if "serving on " not in line:
        proc.kill()
        proc.wait()
        raise AssertionError(f"cloudfn serve did not start: {line!r}\n{stderr_path.read_text(errors='replace')}")
    url = line.split("serving on ", 1)[1].split()[0]
    server = ServerProc(proc, url, token, data_dir, line, stderr_path, env, root / "serve.stdout")
    server.drain = threading.Thread(target=_copy, args=(proc.stdout, server.stdout_path), daemon=True)
    server.drain.start()
    if token is None and "token in " in line:
        server.token = (data_dir / "server.token").read_text().strip()
    if wait_health:
        # The socket listens before the line is printed: this request waits in the backlog until
        # the server takes it, so one request with a deadline is enough.
        r = httpx.get(f"{url}/api/health", timeout=START_DEADLINE)
        assert r.status_code == 200, r.text
    return server


def _copy(pipe, path: Path) -> None:
    with pipe, open(path, "ab") as out:
        # read1: whatever is there, without waiting to fill a block, so the file is current.
        while chunk := pipe.read1(65536):
            out.write(chunk)
            out.flush()


def _first_line(proc: subprocess.Popen, deadline: float) -> str:
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + deadline
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return "(no line within the deadline)"
            if sel.select(left):
                return proc.stdout.readline().decode(errors="replace")
    finally:
        sel.close()


def wait_for_line(proc: subprocess.Popen, needle: str, deadline: float = 60) -> str:
    """The first line of `proc`'s stderr holding `needle` (an event to wait on, never a sleep)."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stderr, selectors.EVENT_READ)
    end = time.monotonic() + deadline
    seen = []
    while time.monotonic() < end:
        if sel.select(end - time.monotonic()):
            line = proc.stderr.readline().decode(errors="replace")
            if not line:
                break
            seen.append(line)
            if needle in line:
                return line
    raise AssertionError(f"no {needle!r} from cloudfn web:\n{''.join(seen)}")
