"""A real PostgreSQL for tests: Debian's postgresql 15 started as the `postgres` user (pg_ctl
refuses root) on a free loopback port with a throwaway data folder, one per test session.

Fixtures (tests/conftest.py exposes them everywhere, the conformance suite included):
- `postgres_server`: the session's server (skips the test where PostgreSQL is not installed);
- `pg_url`: a fresh database on it for one test, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "postgres"  # the OS user the server runs as
ROLE = "cloudfn"  # the database role the tests connect as, with a password (masking is tested)


def available() -> bool:
    return (BIN / "pg_ctl").exists() and shutil.which("runuser") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cloudfn-pg-"))
        self.data = self.root / "data"
        self.password = secrets.token_urlsafe(12)
        self.port = _free_port()
        shutil.chown(self.root, USER)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        shutil.chown(pwfile, USER)
        pwfile.chmod(0o600)
        self._as_postgres(
            BIN / "initdb",
            "-D",
            self.data,
            "-U",
            ROLE,
            "--pwfile",
            pwfile,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()

    def _as_postgres(self, *argv: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", USER, "--", *map(str, argv)], capture_output=True, text=True, check=check, cwd=self.root
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{ROLE}:{self.password}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        # fsync off: a test server's crash safety is the OS page cache's (the process may die,
        # the machine does not); commits still wait for the WAL write, so nothing acknowledged
        # is lost to a server restart.
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._as_postgres(
            BIN / "pg_ctl", "start", "-w", "-t", "60", "-D", self.data, "-l", self.root / "log", "-o", opts
        )
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg.connect(self.url(), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                # pg_ctl -w returned once the server accepts connections; this only covers a slow socket.
                time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(BIN / "pg_ctl", "stop", "-w", "-m", mode, "-D", self.data, check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self) -> str:
        import psycopg

        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with contextlib.suppress(psycopg.Error), psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    if not available() or os.geteuid() != 0:
        pytest.skip("PostgreSQL 15 (Debian's postgresql) is not installed, or not running as root")
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)
