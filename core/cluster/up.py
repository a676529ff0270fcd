"""`cloudfn cluster up`: a whole cluster on one machine, to try it: nats-server (JetStream, a
fresh token), one gateway and N workers as child processes, each with a data directory of its
own under DIR. Ctrl-C (or SIGTERM) stops them all, workers last so in-flight invocations answer.

PostgreSQL: the gateways share it once the storage backend of issue 18's part 1 is present
(`storage.url`); until then the one gateway keeps its embedded store. `_postgres_url` is the hook.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

from core.cluster.natsserver import start_nats
from core.config import Config


def _postgres_url(root: Path) -> str | None:
    """The storage URL all gateways share, when this cloudfn has the PostgreSQL backend
    (core/storage/ as a package); None: the single gateway's embedded store."""
    try:
        import core.storage as storage
    except ImportError:
        return None
    if not hasattr(storage, "__path__"):  # the embedded module, not the package with backends
        return None
    return None  # the PostgreSQL start (Debian's postgresql, unprivileged user) goes here


def _wait_line(proc: subprocess.Popen[bytes], needle: str, deadline: float = 120) -> str:
    """The child's first stdout line holding `needle` (its own "ready" announcement)."""
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            line = raw.decode(errors="replace").rstrip()
            if not found and needle in line:
                found.append(line)
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    done.wait(deadline)
    return found[0] if found else ""


def cluster_up(config: Config, directory: str | None, workers: int, port: int) -> int:
    root = Path(directory) if directory else config.data_dir / "cluster"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_hex(24)
    nats = start_nats(root / "nats", token)
    env = dict(os.environ, CLOUDFN_CLUSTER_NATS_URL=nats.url, CLOUDFN_CLUSTER_NATS_TOKEN=token, PYTHONUNBUFFERED="1")
    env.pop("CLOUDFN_DATA_DIR", None)
    pg = _postgres_url(root)
    if pg:
        env["CLOUDFN_STORAGE_URL"] = pg
    cli = [sys.executable, "-m", "cloudfn_tui.cli"]
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    print(
        f"nats-server   {nats.url} (JetStream in {root / 'nats'}; token in {root / 'nats' / 'nats.conf'})", flush=True
    )
    try:
        for i in range(workers):
            name = f"worker-{i + 1}"
            proc = subprocess.Popen(
                [*cli, "--data-dir", str(root / name), "worker", "--node-id", name],
                stdout=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
            children.append((name, proc))
            line = _wait_line(proc, "ready")
            print(f"{name:<13} {line or 'did not start (see its output above)'}", flush=True)
        gw = subprocess.Popen(
            [*cli, "--data-dir", str(root / "gateway"), "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        children.append(("gateway", gw))
        line = _wait_line(gw, "serving on")
        print(f"{'gateway':<13} {line or 'did not start (see its output above)'}", flush=True)
        print(
            f"storage       {'PostgreSQL ' + pg if pg else 'the gateway data directory ' + str(root / 'gateway')}",
            flush=True,
        )
        print("Ctrl-C stops them all.", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(1.0):
            gone = [n for n, p in children if p.poll() is not None]
            if gone:
                print(f"cloudfn cluster: {', '.join(gone)} exited; stopping the rest", file=sys.stderr, flush=True)
                break
    finally:
        for _, proc in reversed(children):  # the gateway first, then the workers
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        nats.stop()
    print("cluster stopped", flush=True)
    return 0
