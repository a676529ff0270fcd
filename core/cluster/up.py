"""`cloudfn cluster up`: a whole cluster on one machine, to try it: PostgreSQL (shared by the
gateways: functions, versions, history, alerts, secrets), nats-server (JetStream, a fresh token),
two gateways and N workers as child processes, each with a data directory of its own under DIR.
Ctrl-C (or SIGTERM) stops them all: gateways first, then workers so in-flight invocations answer,
then NATS and PostgreSQL.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

from core.cluster.natsserver import start_nats
from core.cluster.pgserver import LocalPostgres
from core.config import Config
from core.errors import ConfigError
from core.storage import mask_url

GATEWAYS = 2


def _secrets_key(root: Path) -> str:
    """One key for every gateway (they share the secrets), kept in DIR between runs."""
    path = root / "secrets.key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        key = base64.b64encode(os.urandom(32)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        return key


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
    given = config["storage.url"]
    pg: LocalPostgres | None = None
    if not given:
        # PostgreSQL's own user must reach DIR/postgres: traverse, not list.
        if os.geteuid() == 0:
            root.chmod(0o711)
        try:
            pg = LocalPostgres(root / "postgres")
            url = pg.start()
        except ConfigError as exc:
            print(f"cloudfn cluster: {exc.message}", file=sys.stderr, flush=True)
            return 2
    else:
        url = given
    print(f"postgresql    {mask_url(url)}" + (f" (data in {pg.folder})" if pg else " (storage.url)"), flush=True)
    token = secrets.token_hex(24)
    try:
        nats = start_nats(root / "nats", token)
    except BaseException:
        if pg:
            pg.stop()
        raise
    env = dict(
        os.environ,
        CLOUDFN_CLUSTER_NATS_URL=nats.url,
        CLOUDFN_CLUSTER_NATS_TOKEN=token,
        CLOUDFN_STORAGE_URL=url,
        PYTHONUNBUFFERED="1",
    )
    key_from = "CLOUDFN_SECRETS_KEY" if os.environ.get("CLOUDFN_SECRETS_KEY") else str(root / "secrets.key")
    env.setdefault("CLOUDFN_SECRETS_KEY", _secrets_key(root) if key_from != "CLOUDFN_SECRETS_KEY" else "")
    env.pop("CLOUDFN_DATA_DIR", None)
    # Workers get what a function needs with each request: never the database or the key.
    worker_env = {k: v for k, v in env.items() if k not in ("CLOUDFN_STORAGE_URL", "CLOUDFN_SECRETS_KEY")}
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
                env=worker_env,
                start_new_session=True,
            )
            children.append((name, proc))
            line = _wait_line(proc, "ready")
            print(f"{name:<13} {line or 'did not start (see its output above)'}", flush=True)
        for i in range(GATEWAYS):
            name = f"gateway-{i + 1}"
            gw = subprocess.Popen(
                [*cli, "--data-dir", str(root / name), "serve", "--port", str(port + i if port else 0)],
                stdout=subprocess.PIPE,
                env=dict(env, CLOUDFN_CLUSTER_NODE_ID=name),
                start_new_session=True,
            )
            children.append((name, gw))
            line = _wait_line(gw, "serving on")
            print(f"{name:<13} {line or 'did not start (see its output above)'}", flush=True)
        print(f"secrets key   {key_from} (every gateway uses it)", flush=True)
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
        for _, proc in reversed(children):  # the gateways first, then the workers
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        nats.stop()
        if pg:
            pg.stop()
    print("cluster stopped", flush=True)
    return 0
