"""A PostgreSQL for `cloudfn cluster up`: Debian's postgresql (the newest installed major),
its data folder under the cluster's folder, listening on a free loopback port only, password
authentication (scram) for a `cloudfn` role. pg_ctl refuses to run as root, so as root the
server runs as the package's unprivileged `postgres` user. Kept between runs: a second `up`
on the same folder finds the same functions."""

from __future__ import annotations

import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

from core.errors import ConfigError

ROLE = "cloudfn"
OS_USER = "postgres"  # Debian's package creates it


def _bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    raise ConfigError(
        "PostgreSQL is not installed (the cluster's gateways share it): `apt-get install postgresql`, "
        "or give an existing server as storage.url (CLOUDFN_STORAGE_URL)"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    def __init__(self, folder: Path) -> None:
        self.bin = _bin()
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                home = Path(pwd.getpwnam(OS_USER).pw_dir)
            except KeyError:
                raise ConfigError(
                    f"PostgreSQL refuses to run as root and there is no `{OS_USER}` user to run it as: "
                    "reinstall Debian's postgresql package, or give storage.url"
                ) from None
            if not self._reachable(folder.parent):
                # A private folder above DIR (a 0700 home or data directory) keeps the server's
                # user out; rather than open it up, the data goes to that user's home, one
                # folder per cluster folder, so a later `up` on DIR finds it again.
                tag = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]
                folder = home / f"cloudfn-cluster-{tag}"
        self.folder = folder
        self.data = folder / "data"
        self.password = ""

    @staticmethod
    def _reachable(path: Path) -> bool:
        probe = ["runuser", "-u", OS_USER, "--", "test", "-x", str(path)]
        return subprocess.run(probe, capture_output=True).returncode == 0

    def _run(self, *argv: object) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in argv]
        if self._as_root:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=self.folder)
        if done.returncode:
            raise ConfigError(
                f"PostgreSQL: {Path(cmd[-len(argv)]).name} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-600:]} (its log: {self.folder / 'log'})"
            )
        return done

    def start(self) -> str:
        """Start it (initialising the folder the first time); returns the URL, password in it."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._as_root:
            shutil.chown(self.folder, OS_USER, OS_USER)
        secret = self.folder / "password"  # readable by the server's user only; reused by later runs
        if not self.data.exists():
            self.password = secrets.token_urlsafe(18)
            fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(self.password + "\n")
            if self._as_root:
                shutil.chown(secret, OS_USER, OS_USER)
            self._run(
                self.bin / "initdb",
                "-D",
                self.data,
                "-U",
                ROLE,
                "--pwfile",
                secret,
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
            )
        else:
            self.password = secret.read_text().strip()
        opts = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run(
            self.bin / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.folder / "log", "-o", opts
        )
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run(self.bin / "pg_ctl", "stop", "-w", "-m", "fast", "-D", self.data)
        except ConfigError:
            pass  # already stopped: nothing to do
