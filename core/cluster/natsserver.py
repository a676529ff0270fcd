"""A `nats-server -js` child process on a free loopback port, for `cloudfn cluster up` and the tests.

The port is the server's own pick (`-p -1`), read from its "Listening for client connections"
line; the caller waits on "Server is ready" (an event, not a sleep).
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from core.errors import Unavailable

READY = "Server is ready"
LISTENING = re.compile(r"Listening for client connections on ([0-9.]+):(\d+)")


@dataclass
class NatsServer:
    proc: subprocess.Popen[bytes]
    url: str
    token: str
    store_dir: Path
    log: list[str]

    def stop(self, timeout: float = 10) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def start_nats(store_dir: Path, token: str, deadline: float = 30.0, binary: str | None = None) -> NatsServer:
    """Start nats-server with JetStream, requiring `token` from every client."""
    exe = (
        binary
        or shutil.which("nats-server")
        or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
    )
    if exe is None:
        raise Unavailable(
            "nats-server is not installed: apt-get install nats-server (Debian), or give "
            "cluster.nats_url of a running one"
        )
    store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The token on the command line is seen by local users in `ps`; a config file (0600) is not.
    conf = store_dir / "nats.conf"
    conf.touch(mode=0o600)
    conf.write_text(f'authorization {{ token: "{token}" }}\n')
    proc = subprocess.Popen(
        [exe, "-js", "-a", "127.0.0.1", "-p", "-1", "-sd", str(store_dir), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )  # a terminal's Ctrl-C is for our owner, who stops it last
    log: list[str] = []
    found: dict[str, str] = {}
    ready = threading.Event()

    def read() -> None:
        # One reader for the process's whole life: its log must be drained or a full pipe stalls it.
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if len(log) < 200:
                log.append(line)
            m = LISTENING.search(line)
            if m:
                found["url"] = f"nats://{m.group(1)}:{m.group(2)}"
            if READY in line and "url" in found:
                ready.set()
        ready.set()  # exited: the wait below ends at once

    threading.Thread(target=read, name="nats-server-log", daemon=True).start()
    if ready.wait(deadline) and proc.poll() is None and "url" in found:
        return NatsServer(proc, found["url"], token, store_dir, log)
    proc.kill()
    proc.wait()
    raise Unavailable("nats-server did not start:\n" + "\n".join(log[-20:]))
