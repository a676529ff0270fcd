"""A real cluster for the tests: nats-server -js (core/cluster/natsserver.py, token auth), `cloudfn
worker` subprocesses and `cloudfn serve` gateways (tests/server/serverproc.py). Every start waits
for the process's own "ready" line, never a sleep."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "server"))
from serverproc import REPO, ServerProc, _first_line, server_env, start_server  # noqa: E402

from core.cluster.natsserver import NatsServer, start_nats  # noqa: E402


def nats_env(nats: NatsServer) -> dict[str, str]:
    return {"CLOUDFN_CLUSTER_NATS_URL": nats.url, "CLOUDFN_CLUSTER_NATS_TOKEN": nats.token}


def start_test_nats(root: Path) -> NatsServer:
    return start_nats(root / "nats", secrets.token_hex(16))


@dataclass
class WorkerProc:
    proc: subprocess.Popen
    node: str
    stderr_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


def start_worker(root: Path, nats: NatsServer, node: str, cache: Path | None = None, **extra: str) -> WorkerProc:
    root.mkdir(parents=True, exist_ok=True)
    env = server_env(root, cache, **nats_env(nats), **extra)
    err = root / "worker.stderr"
    cmd = [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(root / "data"), "worker", "--node-id", node]
    with open(err, "wb") as f:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=f, env=env, cwd=str(REPO))
    line = _first_line(proc, 60)
    if "ready" not in line:
        proc.kill()
        proc.wait()
        raise AssertionError(f"cloudfn worker did not start: {line!r}\n{err.read_text(errors='replace')}")
    return WorkerProc(proc, node, err)


def start_gateway(root: Path, nats: NatsServer, *args: str, cache: Path | None = None, **extra: str) -> ServerProc:
    return start_server(root, "--mode", "release", *args, cache=cache, **nats_env(nats), **extra)
