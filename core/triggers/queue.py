"""The durable queue behind asynchronous invocation, and its dead letters.

`AsyncQueue` is the interface the dispatcher (core/triggers/async_invoke.py) uses; `SqliteQueue`
is the embedded backend, one SQLite file in the data directory. Issue #18 adds a NATS JetStream
backend to the same interface (a work-queue stream: enqueue = publish with the id as
`Nats-Msg-Id`, claim = pull-consumer fetch, ack = ack, retry_later = nak with delay, dead_letter
= a term plus a publish to a dead-letter stream), so nothing above this module may reach into
SQLite (core/triggers/jsqueue.py is that backend).

Delivery is at least once: a claimed item is `running` until acked, retried or dead-lettered;
when the owner dies, `recover()` at the next start puts its running items back in the queue, so
a function may see an invocation twice and deduplicates by its id (the same for every attempt).

Why SQLite: stdlib, one file, WAL mode, and an insert plus commit costs tens of microseconds
with `synchronous=NORMAL` (the async accept path's budget is 1 ms). In WAL mode NORMAL loses
nothing when the process is killed (the WAL is in the OS's page cache); only a power loss can
drop the last commits. `async.sync: full` fsyncs every commit for that case too.
TinyDB would rewrite the whole file per insert.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from core.filemodes import PRIVATE_FILE, set_mode

QUEUE_FILE = "async-queue.sqlite3"
DONE_KEEP_SECONDS = 7 * 24 * 3600  # how long `invocation status` remembers a finished invocation
FINAL_STATES = ("success", "failed", "dead")


@dataclass
class QueuedInvocation:
    """One accepted asynchronous invocation. `attempt` counts the attempts made so far; `errors`
    holds one entry per failed attempt: {attempt, time, error_type, error}."""

    id: str
    function_id: str
    function_name: str
    event: Any = None
    context: dict[str, str] = field(default_factory=dict)
    attempt: int = 0
    enqueued_at: float = field(default_factory=time.time)
    not_before: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)
    depth: int = 0  # how many destinations led here (bounds on_success/on_failure chains)
    state: str = "queued"
    # Set by a backend that will not deliver the item again (JetStream: max_deliver reached): the
    # invoker dead-letters it with this reason instead of running it.
    give_up: str = ""

    def to_doc(self, with_event: bool = True) -> dict[str, Any]:
        """Its JSON form in JetStream's messages and state (core/triggers/jsqueue.py); `give_up`
        is this gateway's own verdict, never sent."""
        doc = {
            "id": self.id,
            "function_id": self.function_id,
            "function_name": self.function_name,
            "context": self.context,
            "attempt": self.attempt,
            "enqueued_at": self.enqueued_at,
            "not_before": self.not_before,
            "errors": self.errors,
            "depth": self.depth,
            "state": self.state,
        }
        if with_event:
            doc["event"] = self.event
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> QueuedInvocation:
        return cls(
            id=doc["id"],
            function_id=doc["function_id"],
            function_name=doc["function_name"],
            event=doc.get("event"),
            context=doc.get("context") or {},
            attempt=doc.get("attempt", 0),
            enqueued_at=doc.get("enqueued_at", 0.0),
            not_before=doc.get("not_before", 0.0),
            errors=doc.get("errors") or [],
            depth=doc.get("depth", 0),
            state=doc.get("state", "queued"),
        )


@dataclass
class DeadItem:
    item: QueuedInvocation
    reason: str
    dead_at: float


class AsyncQueue(Protocol):
    """What a queue backend offers. Every method is safe from any thread."""

    def enqueue(self, item: QueuedInvocation) -> None: ...

    def depth(self) -> int:
        """Items queued or running, cheaply (asked on every accept)."""
        ...

    def claim(self, limit: int, now: float) -> list[QueuedInvocation]:
        """Lease up to `limit` due items (state running), oldest due first."""
        ...

    def ack(self, item: QueuedInvocation, state: str = "success") -> None:
        """The item is done (`state`: success, or failed for an item nobody retries)."""
        ...

    def retry_later(self, item: QueuedInvocation, not_before: float) -> None:
        """Back in the queue, due at `not_before`, with its `attempt` and `errors` as given."""
        ...

    def dead_letter(self, item: QueuedInvocation, reason: str) -> DeadItem: ...

    def recover(self) -> int:
        """Put back the items a dead owner had leased; how many."""
        ...

    def next_due(self) -> float | None: ...

    def stats(self, now: float) -> dict[str, Any]:
        """depth (queued + running), running, dead_letters, oldest_age (seconds, or None)."""
        ...

    def status(self, invocation_id: str) -> tuple[str, QueuedInvocation | DeadItem | None] | None: ...

    def dead_letters(self, function_id: str | None = None, limit: int = 100) -> list[DeadItem]: ...

    def find_dead(self, id_or_prefix: str) -> list[DeadItem]: ...

    def take_dead(self, invocation_id: str, now: float) -> QueuedInvocation | None:
        """Move a dead letter back into the queue (fresh attempts and age); None if gone."""
        ...

    def delete_dead(self, invocation_id: str) -> DeadItem | None: ...

    def queued_for(self, function_id: str) -> list[QueuedInvocation]:
        """Items of one function waiting (not running)."""
        ...

    def close(self) -> None: ...

    def trim_dead(self, keep: int) -> list[str]:
        """Drop the oldest dead letters past the newest `keep`; the ids dropped. (JetStream: a
        dead-letter stream with max_msgs = keep and the discard-old policy.)"""
        ...

    def set_waker(self, wake: Callable[[], None], capacity: int) -> None:
        """Called once consuming starts: a backend that receives work by itself (JetStream) calls
        `wake` (from any thread) when some is ready, holding at most `capacity` items."""
        ...


_ITEM_COLUMNS = "id, function_id, function_name, event, context, attempt, enqueued_at, not_before, errors, depth, state"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id TEXT PRIMARY KEY, function_id TEXT NOT NULL, function_name TEXT NOT NULL, event TEXT NOT NULL,
    context TEXT NOT NULL, attempt INTEGER NOT NULL, enqueued_at REAL NOT NULL, not_before REAL NOT NULL,
    errors TEXT NOT NULL, depth INTEGER NOT NULL, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS queue_due ON queue (state, not_before);
CREATE TABLE IF NOT EXISTS dead (
    id TEXT PRIMARY KEY, function_id TEXT NOT NULL, function_name TEXT NOT NULL, event TEXT NOT NULL,
    context TEXT NOT NULL, attempt INTEGER NOT NULL, enqueued_at REAL NOT NULL, not_before REAL NOT NULL,
    errors TEXT NOT NULL, depth INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, dead_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS dead_function ON dead (function_id, dead_at);
CREATE INDEX IF NOT EXISTS dead_age ON dead (dead_at);
CREATE TABLE IF NOT EXISTS done (id TEXT PRIMARY KEY, state TEXT NOT NULL, function_id TEXT NOT NULL,
    function_name TEXT NOT NULL, attempt INTEGER NOT NULL, errors TEXT NOT NULL, finished_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS done_age ON done (finished_at);
"""


def _row_item(row: tuple[Any, ...]) -> QueuedInvocation:
    return QueuedInvocation(
        id=row[0],
        function_id=row[1],
        function_name=row[2],
        event=json.loads(row[3]),
        context=json.loads(row[4]),
        attempt=row[5],
        enqueued_at=row[6],
        not_before=row[7],
        errors=json.loads(row[8]),
        depth=row[9],
        state=row[10],
    )


def _item_row(item: QueuedInvocation) -> tuple[Any, ...]:
    return (
        item.id,
        item.function_id,
        item.function_name,
        json.dumps(item.event, ensure_ascii=False),
        json.dumps(item.context),
        item.attempt,
        item.enqueued_at,
        item.not_before,
        json.dumps(item.errors),
        item.depth,
        item.state,
    )


class SqliteQueue:
    """The embedded backend. One connection behind a lock: every statement is a few tens of
    microseconds, so callers on the event loop run them directly rather than paying a thread
    hop (about 100 us) for each."""

    def __init__(self, path: Path, sync: str = "normal"):
        self.path = Path(path)
        # Created 0600 before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, PRIVATE_FILE))
        set_mode(self.path, PRIVATE_FILE)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        # Only the owner process writes, so a count kept here stays exact (COUNT(*) scans).
        self._depth: int = self._db.execute("SELECT COUNT(*) FROM queue").fetchone()[0]
        self._acks = 0
        for suffix in ("-wal", "-shm"):  # created by the first write, with the umask's mode
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                set_mode(side, PRIVATE_FILE)

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _tx(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[list[tuple[Any, ...]]]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = [self._db.execute(sql, args).fetchall() for sql, args in statements]
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    # -- the queue ---------------------------------------------------------------------------
    def enqueue(self, item: QueuedInvocation) -> None:
        item.state = "queued"
        self._run(f"INSERT INTO queue ({_ITEM_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", _item_row(item))
        self._depth += 1

    def depth(self) -> int:
        return self._depth

    def claim(self, limit: int, now: float) -> list[QueuedInvocation]:
        if limit <= 0:
            return []
        rows = self._run(
            f"UPDATE queue SET state='running' WHERE id IN (SELECT id FROM queue WHERE state='queued' "
            f"AND not_before <= ? ORDER BY not_before LIMIT ?) RETURNING {_ITEM_COLUMNS}",
            (now, limit),
        )
        items = [_row_item(r) for r in rows]
        items.sort(key=lambda i: i.not_before)
        return items

    def ack(self, item: QueuedInvocation, state: str = "success") -> None:
        gone = self._tx([("DELETE FROM queue WHERE id=? RETURNING id", (item.id,)), self._done(item, state)])
        self._depth -= len(gone[0])
        self._acks += 1
        if self._acks >= 10_000:  # a long-running owner forgets old outcomes as it goes, not only at start
            with self._lock:
                self._prune_done()

    def retry_later(self, item: QueuedInvocation, not_before: float) -> None:
        item.not_before, item.state = not_before, "queued"
        self._run(
            "UPDATE queue SET state='queued', not_before=?, attempt=?, errors=? WHERE id=?",
            (not_before, item.attempt, json.dumps(item.errors), item.id),
        )

    def dead_letter(self, item: QueuedInvocation, reason: str) -> DeadItem:
        dead = DeadItem(item, reason, time.time())
        item.state = "dead"
        gone = self._tx(
            [
                ("DELETE FROM queue WHERE id=? RETURNING id", (item.id,)),
                (
                    f"INSERT OR REPLACE INTO dead ({_ITEM_COLUMNS}, reason, dead_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*_item_row(item), reason, dead.dead_at),
                ),
                self._done(item, "dead"),
            ]
        )
        self._depth -= len(gone[0])
        return dead

    def recover(self) -> int:
        with self._lock:
            cur = self._db.execute("UPDATE queue SET state='queued' WHERE state='running'")
            self._prune_done()
            return int(cur.rowcount)

    def _prune_done(self) -> None:
        self._db.execute("DELETE FROM done WHERE finished_at < ?", (time.time() - DONE_KEEP_SECONDS,))
        self._acks = 0

    @staticmethod
    def _done(item: QueuedInvocation, state: str) -> tuple[str, tuple[Any, ...]]:
        return (
            "INSERT OR REPLACE INTO done (id, state, function_id, function_name, attempt, errors, finished_at) "
            "VALUES (?,?,?,?,?,?,?)",
            (item.id, state, item.function_id, item.function_name, item.attempt, json.dumps(item.errors), time.time()),
        )

    def next_due(self) -> float | None:
        rows = self._run("SELECT MIN(not_before) FROM queue WHERE state='queued'")
        return rows[0][0] if rows else None

    def stats(self, now: float) -> dict[str, Any]:
        with self._lock:
            depth, running, oldest = self._db.execute(
                "SELECT COUNT(*), SUM(state='running'), MIN(enqueued_at) FROM queue"
            ).fetchone()
            dead = self._db.execute("SELECT COUNT(*) FROM dead").fetchone()[0]
        return {
            "depth": depth,
            "running": running or 0,
            "dead_letters": dead,
            "oldest_age": None if oldest is None else max(0.0, now - oldest),
        }

    def status(self, invocation_id: str) -> tuple[str, QueuedInvocation | DeadItem | None] | None:
        rows = self._run(f"SELECT {_ITEM_COLUMNS} FROM queue WHERE id=?", (invocation_id,))
        if rows:
            item = _row_item(rows[0])
            return ("failed" if item.state == "queued" and item.errors else item.state), item
        dead = self.find_dead(invocation_id, exact=True)
        if dead:
            return "dead", dead[0]
        rows = self._run(
            "SELECT state, function_id, function_name, attempt, errors, finished_at FROM done WHERE id=?",
            (invocation_id,),
        )
        if rows:
            state, fid, fname, attempt, errors, finished = rows[0]
            return state, QueuedInvocation(
                id=invocation_id,
                function_id=fid,
                function_name=fname,
                attempt=attempt,
                errors=json.loads(errors),
                state=state,
                not_before=finished,
            )
        return None

    # -- dead letters ------------------------------------------------------------------------
    def _dead(self, where: str, args: tuple[Any, ...], tail: str = "") -> list[DeadItem]:
        rows = self._run(f"SELECT {_ITEM_COLUMNS}, reason, dead_at FROM dead {where} {tail}", args)
        return [DeadItem(_row_item(r[:11]), r[11], r[12]) for r in rows]

    def dead_letters(self, function_id: str | None = None, limit: int = 100) -> list[DeadItem]:
        if function_id is None:
            return self._dead("", (), f"ORDER BY dead_at DESC LIMIT {int(limit)}")
        return self._dead("WHERE function_id=?", (function_id,), f"ORDER BY dead_at DESC LIMIT {int(limit)}")

    def find_dead(self, id_or_prefix: str, exact: bool = False) -> list[DeadItem]:
        if exact:
            return self._dead("WHERE id=?", (id_or_prefix,))
        # A unique start of the id is enough, as for `cloudfn history --id`. LIKE's wildcards
        # are escaped so that `%` matches only itself.
        pattern = id_or_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return self._dead("WHERE id LIKE ? ESCAPE '\\'", (pattern,), "LIMIT 5")

    def take_dead(self, invocation_id: str, now: float) -> QueuedInvocation | None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = self._db.execute(
                    f"DELETE FROM dead WHERE id=? RETURNING {_ITEM_COLUMNS}", (invocation_id,)
                ).fetchall()
                if not rows:
                    self._db.execute("ROLLBACK")
                    return None
                item = _row_item(rows[0])
                item.attempt, item.errors, item.enqueued_at, item.not_before = 0, [], now, now
                item.state = "queued"
                self._db.execute(
                    f"INSERT OR REPLACE INTO queue ({_ITEM_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)", _item_row(item)
                )
                self._db.execute("DELETE FROM done WHERE id=?", (invocation_id,))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._depth += 1
            return item

    def delete_dead(self, invocation_id: str) -> DeadItem | None:
        found = self.find_dead(invocation_id, exact=True)
        if found:
            self._run("DELETE FROM dead WHERE id=?", (invocation_id,))
            return found[0]
        return None

    def queued_for(self, function_id: str) -> list[QueuedInvocation]:
        rows = self._run(f"SELECT {_ITEM_COLUMNS} FROM queue WHERE function_id=? AND state='queued'", (function_id,))
        return [_row_item(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def trim_dead(self, keep: int) -> list[str]:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM dead").fetchone()
            if count <= keep:
                return []
            rows = self._db.execute(
                "DELETE FROM dead WHERE id IN (SELECT id FROM dead ORDER BY dead_at, id LIMIT ?) RETURNING id",
                (count - keep,),
            ).fetchall()
        return [r[0] for r in rows]

    def set_waker(self, wake: Callable[[], None], capacity: int) -> None:
        pass  # claim() reads the file: nothing arrives by itself
