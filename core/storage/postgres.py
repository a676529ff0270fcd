"""The PostgreSQL backend: documents, code blobs and invocation records in one database that
any number of cloudfn processes share (the cluster's stateless gateways), through psycopg 3 and
a connection pool.

- The schema is migrated at start under an advisory lock (`cloudfn_schema_version` says how
  far), so gateways starting at once take turns and the second finds nothing to do.
- Every write to a store runs in a transaction holding that store's advisory lock and bumps the
  store's generation, so a check-then-write cannot interleave with another process's and a cache
  knows when another process wrote (one indexed read per check; see the README's figures).
- A lost server is `Unavailable` naming the URL without its password; the pool checks each
  connection before lending it, so requests succeed again once the server is back.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import psycopg
import psycopg_pool
from psycopg.types.json import Jsonb

from core.errors import ConfigError, FieldError, InvalidInput, NotFound, StoreCorrupt, Unavailable
from core.jsonlimits import json_safe
from core.models import InvocationRecord
from core.storage import mask_url
from core.storage.base import Storage

log = logging.getLogger("cloudfn.storage")
T = TypeVar("T")
MIGRATION_LOCK = 0x636C6664  # "clfd": one advisory lock id for migrations, whatever the store
BLOB_CACHE_BYTES = 64 * 1024 * 1024
CONNECT_TIMEOUT = 3  # seconds a request waits for a connection before it fails with Unavailable
CHECK_IDLE = 1.0  # seconds a pooled connection may idle before it is checked again when lent
FAIL_FAST = 1.0  # seconds after a lost connection during which requests fail without waiting
RETENTION_EVERY = 10.0  # seconds between two trims of the history to its count and age

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE cloudfn_documents (
        id bigserial PRIMARY KEY,
        store text NOT NULL,
        doc jsonb NOT NULL
    );
    CREATE INDEX cloudfn_documents_store ON cloudfn_documents (store, id);
    CREATE TABLE cloudfn_generations (store text PRIMARY KEY, n bigint NOT NULL);
    CREATE TABLE cloudfn_blobs (
        function_id text NOT NULL,
        sha256 text NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (function_id, sha256)
    );
    CREATE TABLE cloudfn_invocations (
        seq bigserial PRIMARY KEY,
        id text NOT NULL,
        ts double precision NOT NULL,
        function_id text NOT NULL,
        function_name text NOT NULL,
        status text NOT NULL,
        trigger text NOT NULL,
        record text NOT NULL
    );
    CREATE INDEX cloudfn_invocations_function ON cloudfn_invocations (function_id, seq);
    CREATE INDEX cloudfn_invocations_status ON cloudfn_invocations (status, seq);
    CREATE INDEX cloudfn_invocations_id ON cloudfn_invocations (id, seq);
    CREATE INDEX cloudfn_invocations_id_prefix ON cloudfn_invocations (id text_pattern_ops);
    CREATE INDEX cloudfn_invocations_ts ON cloudfn_invocations (ts);
    """,
)


def _password(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        return parts.password or dict(parse_qsl(parts.query)).get("password")
    except ValueError:
        return None


def check_url(url: str) -> str:
    """The URL if it is one psycopg can use, else a ConfigError naming the option and the fix."""
    fix = (
        "set storage.url (or CLOUDFN_STORAGE_URL) to postgresql://USER:PASSWORD@HOST:PORT/DATABASE, "
        "or unset it to keep the embedded store"
    )
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("postgresql", "postgres") and bool(parts.hostname or "host=" in parts.query)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(f"storage.url {mask_url(url)!r} is not a PostgreSQL URL: {fix}")
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"storage.url {mask_url(url)!r} does not parse ({_clean(str(exc), url)}): {fix}") from None
    return url


def _clean(text: str, url: str) -> str:
    secret = _password(url)
    text = text.strip().splitlines()[0] if text.strip() else text
    return text.replace(secret, "***") if secret else text


class PostgresBackend:
    kind = "postgresql"
    shared = True

    def __init__(self, url: str, min_size: int = 1, max_size: int = 10):
        self.url = check_url(url)
        self.masked = mask_url(url)
        self._used: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()
        self._failed: tuple[float, BaseException] | None = None  # when and why the last request met no server
        self.pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            open=False,
            # Autocommit: a read is one round trip, not a query and a COMMIT (the registry reads
            # the store's generation on every request); writes open transactions explicitly.
            kwargs={"connect_timeout": CONNECT_TIMEOUT, "application_name": "cloudfn", "autocommit": True},
            check=self._check,
            name="cloudfn-storage",
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except psycopg_pool.PoolTimeout:
            self.pool.close()
            raise Unavailable(
                f"cannot reach the PostgreSQL storage at {self.masked} within {CONNECT_TIMEOUT} s. "
                f"Start the server, or fix storage.url (CLOUDFN_STORAGE_URL)."
            ) from None
        try:
            self._migrate()
        except BaseException:
            self.pool.close()
            raise
        self._blobs: PgBlobs | None = None

    def describe(self) -> str:
        return f"postgresql {self.masked}"

    def _check(self, conn: psycopg.Connection[Any]) -> None:
        """Before lending a connection idle for over CHECK_IDLE seconds, make sure the server is
        still there (a restart breaks every pooled connection). One idle for less was working
        a moment ago: checking it too cost a round trip on every registry read (0.2 ms here)."""
        if time.monotonic() - self._used.get(conn, 0.0) > CHECK_IDLE:
            psycopg_pool.ConnectionPool.check_connection(conn)

    def unavailable(self, exc: BaseException) -> Unavailable:
        return Unavailable(
            f"the PostgreSQL storage at {self.masked} is unavailable ({_clean(str(exc), self.url)}). "
            f"cloudfn reconnects by itself: retry once the server is back."
        )

    @contextmanager
    def connection(self, fail_fast: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit); a lost server is Unavailable (see _connect)."""
        try:
            with self._connect(fail_fast) as conn:
                yield conn
        except _LostConnection as exc:
            raise Unavailable(exc.message) from None

    @contextmanager
    def _connect(self, fail_fast: bool = True) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection (autocommit); a lost server is Unavailable.
        For FAIL_FAST seconds after no connection could be had, requests fail at once rather
        than each waiting CONNECT_TIMEOUT for the pool (which keeps reconnecting meanwhile).
        A connection that breaks in use (the server restarted since it was last checked) is
        _LostConnection: the pool then checks its idle ones, and a read may try once more."""
        failed = self._failed
        if fail_fast and failed is not None and time.monotonic() - failed[0] < FAIL_FAST:
            raise self.unavailable(failed[1])
        lent = False
        try:
            with self.pool.connection() as conn:
                lent = True
                yield conn
                self._used[conn] = time.monotonic()
        except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
            if lent and not isinstance(exc, psycopg_pool.PoolTimeout):
                self.pool.check()
                raise _LostConnection(self.unavailable(exc).message) from None
            self._failed = (time.monotonic(), exc)
            raise self.unavailable(exc) from None
        except psycopg.DataError as exc:
            refused = f"PostgreSQL refused it: {_clean(str(exc), self.url)}"
            raise InvalidInput("stored value", [FieldError("value", refused)]) from None

    def read(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Rows of one query, tried once more on a fresh connection if the first one broke (a
        read is safe to repeat): after a restart no request reads stale data for want of it."""
        try:
            with self._connect() as conn:
                return conn.execute(sql, params).fetchall()
        except _LostConnection:
            with self.connection(fail_fast=False) as conn:
                return conn.execute(sql, params).fetchall()

    def _migrate(self) -> None:
        with self.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS cloudfn_schema_version "
                    "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                row = conn.execute("SELECT coalesce(max(version), 0) FROM cloudfn_schema_version").fetchone()
                current = int(row[0]) if row else 0
                if current > len(MIGRATIONS):
                    raise StoreCorrupt(
                        f"the PostgreSQL storage at {self.masked} has schema version {current}, newer "
                        f"than this cloudfn knows ({len(MIGRATIONS)}): upgrade cloudfn"
                    )
                for version in range(current + 1, len(MIGRATIONS) + 1):
                    with conn.transaction():
                        conn.execute(MIGRATIONS[version - 1])
                        conn.execute("INSERT INTO cloudfn_schema_version (version) VALUES (%s)", [version])
                    log.info("storage schema migrated to version %d", version)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])

    def documents(self, name: str) -> PgStore:
        return PgStore(self, name)

    def blobs(self, code_dir: Path) -> PgBlobs:
        if self._blobs is None:
            self._blobs = PgBlobs(self)
        return self._blobs

    def history(self, directory: Path, max_records: int, max_age: timedelta) -> PgHistory:
        return PgHistory(self, max_records, max_age)

    def close(self) -> None:
        self.pool.close()


class _LostConnection(Unavailable):
    """A pooled connection broke in use; another may work."""


class PgStore:
    """A document store (core/storage/base.py's Storage) in `cloudfn_documents`, its rows
    tagged `<store>.<table>`. A view made by `transaction` runs on that transaction's connection."""

    def __init__(self, backend: PostgresBackend, name: str, conn: psycopg.Connection[Any] | None = None):
        self.backend = backend
        self.name = name
        self._conn = conn
        self._lock_id = zlib.crc32(f"cloudfn-store:{name}".encode())

    @property
    def location(self) -> str:
        return f"{self.backend.masked} ({self.name})"

    def _tag(self, table: str) -> str:
        return f"{self.name}.{table}"

    def _fetch(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        if self._conn is not None:
            return self._conn.execute(sql, params).fetchall()
        return self.backend.read(sql, params)

    def _writing(self, fn: Callable[[PgStore], T]) -> T:
        return fn(self) if self._conn is not None else self.transaction(fn)  # type: ignore[arg-type]

    def _bump(self) -> None:
        assert self._conn is not None
        self._conn.execute(
            "INSERT INTO cloudfn_generations (store, n) VALUES (%s, 1) "
            "ON CONFLICT (store) DO UPDATE SET n = cloudfn_generations.n + 1",
            [self.name],
        )

    def transaction(self, fn: Callable[[Storage], T]) -> T:
        if self._conn is not None:
            return fn(self)
        with self.backend.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [self._lock_id])
            return fn(PgStore(self.backend, self.name, conn))

    def generation(self) -> int:
        rows = self._fetch("SELECT n FROM cloudfn_generations WHERE store = %s", [self.name])
        return int(rows[0][0]) if rows else 0

    def all(self, table: str) -> list[dict[str, Any]]:
        rows = self._fetch("SELECT doc FROM cloudfn_documents WHERE store = %s ORDER BY id", [self._tag(table)])
        return [dict(r[0]) for r in rows]

    def get(self, table: str, key: str, value: Any) -> dict[str, Any] | None:
        rows = self._fetch(
            "SELECT doc FROM cloudfn_documents WHERE store = %s AND doc -> %s = %s ORDER BY id LIMIT 1",
            [self._tag(table), key, Jsonb(value)],
        )
        return dict(rows[0][0]) if rows else None

    def insert(self, table: str, doc: dict[str, Any]) -> None:
        self.insert_many(table, [doc])

    def insert_many(self, table: str, docs: list[dict[str, Any]]) -> None:
        def write(s: PgStore) -> None:
            assert s._conn is not None
            with s._conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO cloudfn_documents (store, doc) VALUES (%s, %s)",
                    [(self._tag(table), Jsonb(d)) for d in docs],
                )
            s._bump()

        if docs:
            self._writing(write)

    def replace_all(self, table: str, docs: list[dict[str, Any]]) -> None:
        def write(s: PgStore) -> None:
            assert s._conn is not None
            s._conn.execute("DELETE FROM cloudfn_documents WHERE store = %s", [self._tag(table)])
            s.insert_many(table, docs)
            s._bump()

        self._writing(write)

    def upsert(self, table: str, key: str, doc: dict[str, Any]) -> None:
        def write(s: PgStore) -> None:
            assert s._conn is not None
            cur = s._conn.execute(
                "UPDATE cloudfn_documents SET doc = %s WHERE id = (SELECT id FROM cloudfn_documents "
                "WHERE store = %s AND doc -> %s = %s ORDER BY id LIMIT 1)",
                [Jsonb(doc), self._tag(table), key, Jsonb(doc[key])],
            )
            if not cur.rowcount:
                s.insert(table, doc)
            s._bump()

        self._writing(write)

    def remove(self, table: str, key: str, value: Any) -> int:
        def write(s: PgStore) -> int:
            assert s._conn is not None
            cur = s._conn.execute(
                "DELETE FROM cloudfn_documents WHERE store = %s AND doc -> %s = %s",
                [self._tag(table), key, Jsonb(value)],
            )
            s._bump()
            return cur.rowcount

        return self._writing(write)

    def remove_where(self, table: str, keep_out: Callable[[dict[str, Any]], bool]) -> int:
        def write(s: PgStore) -> int:
            assert s._conn is not None
            rows = s._conn.execute(
                "SELECT id, doc FROM cloudfn_documents WHERE store = %s", [self._tag(table)]
            ).fetchall()
            ids = [r[0] for r in rows if keep_out(dict(r[1]))]
            if ids:
                s._conn.execute("DELETE FROM cloudfn_documents WHERE id = ANY(%s)", [ids])
                s._bump()
            return len(ids)

        return self._writing(write)

    def rewrite(self, transform: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
        """The embedded store's whole-file rewrite (format migrations), over this store's rows."""

        def write(s: PgStore) -> bool:
            assert s._conn is not None
            prefix = self.name + "."
            rows = s._conn.execute(
                "SELECT id, store, doc FROM cloudfn_documents WHERE store LIKE %s", [prefix.replace("_", r"\_") + "%"]
            ).fetchall()
            data: dict[str, Any] = {}
            for rid, tag, doc in rows:
                data.setdefault(tag[len(prefix) :], {})[str(rid)] = doc
            new = transform(data)
            if new is None:
                return False
            for table, docs in new.items():
                s.replace_all(table, list(docs.values()))
            return True

        return self._writing(write)

    def close(self) -> None:
        pass  # the backend owns the pool


class PgBlobs:
    """Code and files in `cloudfn_blobs`. Blobs never change once written (their name is their
    hash), so reads are cached in memory, up to BLOB_CACHE_BYTES."""

    def __init__(self, backend: PostgresBackend):
        self.backend = backend
        self._cache: dict[tuple[str, str], bytes] = {}
        self._cached_bytes = 0
        self._lock = threading.Lock()

    @property
    def location(self) -> str:
        return f"{self.backend.masked} (blobs)"

    @staticmethod
    def _conn(store: Storage) -> psycopg.Connection[Any]:
        if not isinstance(store, PgStore) or store._conn is None:
            raise TypeError("PostgreSQL blobs are written inside a PgStore transaction")
        return store._conn

    def put(self, store: Storage, fn_id: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if isinstance(store, PgStore) and store._conn is None:
            return store.transaction(lambda s: self.put(s, fn_id, data))
        self._conn(store).execute(
            "INSERT INTO cloudfn_blobs (function_id, sha256, data) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            [fn_id, digest, data],
        )
        return digest

    def get(self, fn_id: str, digest: str) -> bytes:
        with self._lock:
            hit = self._cache.get((fn_id, digest))
        if hit is not None:
            return hit
        rows = self.backend.read(
            "SELECT data FROM cloudfn_blobs WHERE function_id = %s AND sha256 = %s", [fn_id, digest]
        )
        row = rows[0] if rows else None
        if row is None:
            raise StoreCorrupt(
                f"the code of a stored version of function {fn_id} is missing from the PostgreSQL "
                f"storage at {self.backend.masked} (blob {digest}); restore the database from a backup"
            )
        data = bytes(row[0])
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreCorrupt(
                f"the blob {digest} of function {fn_id} does not match its hash; restore the database from a backup"
            )
        with self._lock:
            if self._cached_bytes + len(data) > BLOB_CACHE_BYTES:
                self._cache.clear()
                self._cached_bytes = 0
            self._cache[(fn_id, digest)] = data
            self._cached_bytes += len(data)
        return data

    def retain(self, store: Storage, fn_id: str, keep: set[str]) -> None:
        self._conn(store).execute(
            "DELETE FROM cloudfn_blobs WHERE function_id = %s AND NOT (sha256 = ANY(%s))",
            [fn_id, [k for k in keep if k]],
        )

    def drop(self, store: Storage, fn_id: str) -> None:
        self._conn(store).execute("DELETE FROM cloudfn_blobs WHERE function_id = %s", [fn_id])

    def sweep(self, store: Storage, named: dict[str, set[str]]) -> None:
        if isinstance(store, PgStore) and store._conn is None:
            store.transaction(lambda s: self.sweep(s, named))
            return
        conn = self._conn(store)
        pairs = [(f, d) for f, ds in named.items() for d in ds if d]
        conn.execute("CREATE TEMP TABLE cloudfn_named (function_id text, sha256 text) ON COMMIT DROP")
        with conn.cursor() as cur, cur.copy("COPY cloudfn_named FROM STDIN") as copy:
            for pair in pairs:
                copy.write_row(pair)
        conn.execute(
            "DELETE FROM cloudfn_blobs b WHERE NOT EXISTS (SELECT 1 FROM cloudfn_named n "
            "WHERE n.function_id = b.function_id AND n.sha256 = b.sha256)"
        )


class PgHistory:
    """Invocation records in `cloudfn_invocations`. `add` queues in memory (the invocation path
    never waits on the database); `flush` writes a batch with COPY. A query flushes first, so a
    process reads its own records; other processes' appear once their owner flushed (each second).
    While the server is away records wait in memory and go out on the next flush."""

    def __init__(self, backend: PostgresBackend, max_records: int, max_age: timedelta, batch_size: int = 256):
        self.backend = backend
        self.max_records = max_records
        self.max_age = max_age
        self.batch_size = batch_size
        self.autoflush = False
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: list[tuple[str, float, str, str, str, str, str]] = []
        self._last_trim = 0.0
        self._warned = False

    @property
    def location(self) -> str:
        return f"{self.backend.masked} (history)"

    def add(self, rec: InvocationRecord) -> bool:
        try:
            line = rec.model_dump_json()
        except ValueError:
            rec = rec.model_copy(
                update={
                    "event": json_safe(rec.event),
                    "result": json_safe(rec.result),
                    "logs": json_safe(rec.logs),
                    "error": json_safe(rec.error),
                }
            )
            line = rec.model_dump_json()
        row = (rec.id, rec.started_at.timestamp(), rec.function_id, rec.function_name, rec.status, rec.trigger, line)
        with self._lock:
            self._pending.append(row)
            return len(self._pending) >= self.batch_size

    def flush(self) -> int:
        """Write what waits; 0 (records kept for the next try) while the server is away."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            if not pending:
                return 0
            try:
                written = self._write(pending)
            except Unavailable as exc:
                with self._lock:
                    self._pending = pending + self._pending
                    # A long outage must not eat the gateway's memory: past the history's own
                    # bound the oldest waiting records go, as retention would drop them anyway.
                    dropped = max(0, len(self._pending) - self.max_records)
                    del self._pending[:dropped]
                if not self._warned:
                    self._warned = True
                    log.warning("%s; %d history records wait in memory", exc.message, len(self._pending))
                return 0
            self._warned = False
            return written

    def _write(self, rows: list[tuple[str, float, str, str, str, str, str]]) -> int:
        try:
            with self.backend.connection() as conn:
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    cur.copy(
                        "COPY cloudfn_invocations (id, ts, function_id, function_name, status, trigger, record) "
                        "FROM STDIN"
                    ) as copy,
                ):
                    for row in rows:
                        copy.write_row(row)
                now = time.monotonic()
                if now - self._last_trim >= RETENTION_EVERY:
                    self._last_trim = now
                    self._trim(conn)
            return len(rows)
        except InvalidInput:
            if len(rows) == 1:  # the one record the server refuses is logged, never the batch lost with it
                log.error("PostgreSQL refused history record %s; it is not kept", rows[0][0])
                return 0
            return sum(self._write([row]) for row in rows)

    def _trim(self, conn: psycopg.Connection[Any]) -> None:
        cutoff = (datetime.now(UTC) - self.max_age).timestamp()
        conn.execute("DELETE FROM cloudfn_invocations WHERE ts < %s", [cutoff])
        conn.execute(
            "DELETE FROM cloudfn_invocations WHERE seq <= (SELECT seq FROM cloudfn_invocations "
            "ORDER BY seq DESC OFFSET %s LIMIT 1)",
            [self.max_records],
        )

    def _read(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        self.flush()
        return self.backend.read(sql, params)

    def query(
        self,
        function_id: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        trigger: str | None = None,
    ) -> list[InvocationRecord]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("function_id", function_id), ("status", status), ("trigger", trigger)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        if since is not None:
            where.append("ts >= %s")
            params.append(since.timestamp())
        if until is not None:
            where.append("ts <= %s")
            params.append(until.timestamp())
        sql = (
            "SELECT record FROM cloudfn_invocations"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY seq DESC LIMIT %s OFFSET %s"
        )
        rows = self._read(sql, [*params, limit, offset])
        return [InvocationRecord.model_validate_json(r[0]) for r in rows]

    def get(self, invocation_id: str) -> InvocationRecord:
        rows = self._read(
            "SELECT record FROM cloudfn_invocations WHERE id = %s ORDER BY seq DESC LIMIT 1", [invocation_id]
        )
        if rows:
            return InvocationRecord.model_validate_json(rows[0][0])
        if invocation_id:
            pattern = invocation_id.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_") + "%"
            ids = [
                r[0]
                for r in self._read(
                    "SELECT DISTINCT id FROM cloudfn_invocations WHERE id LIKE %s ORDER BY id LIMIT 4", [pattern]
                )
            ]
            if len(ids) == 1:
                return self.get(ids[0])
            if ids:
                count = self._read("SELECT count(DISTINCT id) FROM cloudfn_invocations WHERE id LIKE %s", [pattern])[0][
                    0
                ]
                shown = ", ".join(ids[:3]) + (", ..." if count > 3 else "")
                raise InvalidInput(
                    "invocation id",
                    [
                        FieldError(
                            "id",
                            (
                                f"{invocation_id!r} is the start of {count} invocation ids ({shown}); "
                                "give more characters"
                            ),
                        )
                    ],
                )
        raise NotFound(
            f"no invocation with id {invocation_id!r} (nor one starting with it; `cloudfn history` lists them)"
        )

    def counts(self) -> dict[str, int]:
        return {
            str(s): int(n)
            for s, n in self._read("SELECT status, count(*) FROM cloudfn_invocations GROUP BY status", [])
        }

    def __len__(self) -> int:
        return int(self._read("SELECT count(*) FROM cloudfn_invocations", [])[0][0])
