"""Invocation history: its own store, so that invoking stays as fast with 100,000 records as
with none (TinyDB rewrites its whole file on every insert).

Records are appended in batches to JSON-lines segment files; a small in-memory index (time,
id, function, status, where the line is) answers queries, which then read only the page they
return. Retention drops whole segments, oldest first, past a count or an age. A crash can tear
at most the last line of the newest segment, which the next start cuts off.

Opening reads only the newest segment's tail; the index of older records is built when a query
first needs it, so a one-shot command on a full history starts as fast as on an empty one.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import FieldError, InvalidInput, NotFound
from core.filemodes import open_private, private_dir
from core.jsonlimits import SURROGATE, json_safe
from core.models import InvocationRecord

SEGMENT_RECORDS = 5_000
MAX_PAYLOAD = 64 * 1024  # characters of event or result JSON kept per record
MAX_LOGS = 16 * 1024


# One indexed record: (ts, id, function_id, function_name, status, segment, offset, length), the
# segment -1 while the record waits in memory. A plain tuple of plain values, which the cyclic GC
# stops tracking (a tuple subclass it tracks for ever): full collections walked the hundred
# thousand entries of a busy platform, pausing the event loop for up to ~90 ms.
_Entry = tuple[Any, ...]
# KEY tells apart the records of one id (every attempt of an asynchronous invocation keeps its id).
TS, ID, FUNCTION_ID, FUNCTION_NAME, STATUS, TRIGGER, KEY, SEGMENT, OFFSET, LENGTH = range(10)


# One encoder, made once: json.dumps with options builds a new encoder on every call.
_payload_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


def bounded(value: Any, limit: int = MAX_PAYLOAD) -> tuple[Any, bool, Any]:
    """(what to store, whether it was cut, the whole value made JSON-safe). What is stored is
    the value itself if its JSON fits, else a cut string of its JSON, flagged. The safe value is
    `value` itself unless it held what UTF-8 JSON cannot carry (a lone surrogate, an integer
    past the digit limit, nesting past the depth limit): an invocation is recorded whatever its
    event or result, and a line that cannot be encoded would lose it."""
    if value is None or isinstance(value, (bool, float)):
        return value, False, value  # no JSON encoding needed to know these fit
    if isinstance(value, int):
        safe = json_safe(value)
        return safe, safe is not value, safe
    try:
        text = _payload_json(value)
    except (TypeError, ValueError, RecursionError):
        value = json_safe(value)
        text = _payload_json(value)
    else:
        if not text.isascii() and SURROGATE.search(text):
            value = json_safe(value)
            text = _payload_json(value)
    if len(text) <= limit:
        return value, False, value
    return text[:limit] + "…", True, value


class History:
    def __init__(
        self,
        directory: Path,
        max_records: int = 100_000,
        max_age: timedelta = timedelta(days=7),
        batch_size: int = 256,
        autoflush: bool = True,
    ):
        self.dir = Path(directory)
        private_dir(self.dir)
        self.max_records = max_records
        self.max_age = max_age
        self.batch_size = batch_size
        # Off when the owner flushes from a background thread, keeping fsync off its hot path.
        self.autoflush = autoflush
        self._lock = threading.RLock()  # the index and the pending queue
        self._flush_lock = threading.Lock()  # one writer of segment files at a time; taken before _lock
        self._index: list[_Entry] = []
        self._pending: list[tuple[_Entry, bytes]] = []  # entry, encoded line
        self._pending_by_key: dict[int, InvocationRecord] = {}
        self._keys = itertools.count(1)
        self._segment_counts: dict[int, int] = {}
        self._loaded = False
        self._open_tail()

    @property
    def location(self) -> str:
        return str(self.dir)

    # -- start-up ------------------------------------------------------------------------
    def _segments(self) -> list[int]:
        return sorted(int(p.stem.split("-")[1]) for p in self.dir.glob("segment-*.jsonl"))

    def _path(self, seg: int) -> Path:
        return self.dir / f"segment-{seg:08d}.jsonl"

    def _open_tail(self) -> None:
        """Cut a torn last line off the newest segment and count its records. Older segments
        are full by construction (a new one starts when the newest fills up)."""
        segs = self._segments()
        for seg in segs[:-1]:
            self._segment_counts[seg] = SEGMENT_RECORDS
        if segs:
            path = self._path(segs[-1])
            data = path.read_bytes()
            good_end = data.rfind(b"\n") + 1
            if good_end < len(data):
                with open(path, "r+b") as f:
                    f.truncate(good_end)
            self._segment_counts[segs[-1]] = data.count(b"\n", 0, good_end)

    def _ensure_loaded(self) -> None:
        """Index every record on disk, once. Records added since opening are indexed already."""
        if self._loaded:
            return
        with self._flush_lock, self._lock:
            if self._loaded:
                return
            known = {(e[SEGMENT], e[OFFSET]) for e in self._index if e[SEGMENT] >= 0}
            loaded: list[_Entry] = []
            for seg in self._segments():
                count = 0
                with open(self._path(seg), "rb") as f:
                    offset = 0
                    for raw in f:
                        length = len(raw)
                        if not raw.endswith(b"\n"):
                            break  # a line being appended right now
                        try:
                            d = json.loads(raw)
                            if (seg, offset) not in known:
                                ts = datetime.fromisoformat(d["started_at"]).timestamp()
                                loaded.append(
                                    (
                                        ts,
                                        d["id"],
                                        d["function_id"],
                                        d["function_name"],
                                        d["status"],
                                        d.get("trigger", "manual"),
                                        0,
                                        seg,
                                        offset,
                                        length,
                                    )
                                )
                            count += 1
                        except (ValueError, KeyError):
                            pass  # a damaged line is skipped, the rest kept
                        offset += length
                self._segment_counts[seg] = count
            self._index = loaded + self._index
            self._loaded = True
            self._enforce_retention()

    def _retention_unloaded(self) -> None:
        """Retention without the index: drop whole old segments past the count, assuming full
        ones, and old segments whose newest record is past the age."""
        cutoff = (datetime.now(UTC) - self.max_age).timestamp()
        segs = self._segments()
        total = sum(self._segment_counts.get(s, 0) for s in segs)
        while len(segs) > 1:
            oldest = segs[0]
            if total - self._segment_counts.get(oldest, 0) >= self.max_records or self._newest_ts(oldest) < cutoff:
                total -= self._segment_counts.pop(oldest, 0)
                self._path(oldest).unlink(missing_ok=True)
                segs.pop(0)
            else:
                break

    def _newest_ts(self, seg: int) -> float:
        try:
            with open(self._path(seg), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 64 * 1024))
                last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
            return datetime.fromisoformat(json.loads(last)["started_at"]).timestamp()
        except (OSError, ValueError, KeyError):
            return float("inf")  # unreadable: keep it; the full retention judges it later

    # -- writes --------------------------------------------------------------------------
    def add(self, rec: InvocationRecord) -> bool:
        """Index and queue one record; True when a batch is ready to flush."""
        # Encoded here, a few microseconds each, so that the flushing thread holds the GIL only
        # briefly: encoding a whole batch there stalled the event loop by up to a switch interval.
        try:
            line = (rec.model_dump_json() + "\n").encode()
        except ValueError:  # what bounded() let through, such as a lone surrogate in the logs
            rec = rec.model_copy(
                update={
                    "event": json_safe(rec.event),
                    "result": json_safe(rec.result),
                    "logs": json_safe(rec.logs),
                    "error": json_safe(rec.error),
                }
            )
            line = (rec.model_dump_json() + "\n").encode()
        with self._lock:
            key = next(self._keys)
            entry = (
                rec.started_at.timestamp(),
                rec.id,
                rec.function_id,
                rec.function_name,
                rec.status,
                rec.trigger,
                key,
                -1,
                0,
                0,
            )
            self._index.append(entry)
            self._pending.append((entry, line))
            self._pending_by_key[key] = rec
            full = len(self._pending) >= self.batch_size
        if full and self.autoflush:
            self.flush()
        return full

    def flush(self) -> int:
        """Write pending records to disk (fsynced). Returns how many were written. The disk is
        written outside the index lock, so `add` never waits for an fsync; until a record's
        line is on disk, reads find it in memory."""
        with self._flush_lock:
            with self._lock:
                if not self._pending:
                    return 0
                pending, self._pending = self._pending, []
            written = len(pending)
            seg = max(self._segment_counts, default=1)
            placed: list[tuple[_Entry, int, int, int]] = []
            while pending:
                room = SEGMENT_RECORDS - self._segment_counts.get(seg, 0)
                if room <= 0:
                    seg += 1
                    continue
                batch, pending = pending[:room], pending[room:]
                placed += self._append(seg, batch)
                self._segment_counts[seg] = self._segment_counts.get(seg, 0) + len(batch)
            with self._lock:
                # The entries written are the oldest pending ones, at the index's tail (records
                # are indexed in the order added, and flushes write them in that order).
                where = {entry[KEY]: (seg, offset, length) for entry, seg, offset, length in placed}
                index = self._index
                for i in range(len(index) - 1, -1, -1):
                    e = index[i]
                    if e[SEGMENT] >= 0:
                        break
                    loc = where.get(e[KEY])
                    if loc is not None:
                        index[i] = e[:SEGMENT] + loc
                for key in where:
                    self._pending_by_key.pop(key, None)
                if self._loaded:
                    self._enforce_retention()
                else:
                    self._retention_unloaded()
            return written

    def _append(self, seg: int, batch: list[tuple[_Entry, bytes]]) -> list[tuple[_Entry, int, int, int]]:
        placed = []
        with open_private(self._path(seg), "ab") as f:
            offset = f.tell()
            for entry, line in batch:
                placed.append((entry, seg, offset, len(line)))
                offset += len(line)
            f.write(b"".join(line for _, line in batch))
            f.flush()
            os.fsync(f.fileno())
        return placed

    def _enforce_retention(self) -> None:
        with self._lock:
            cutoff = (datetime.now(UTC) - self.max_age).timestamp()
            drop = max(0, len(self._index) - self.max_records)
            while drop < len(self._index) and self._index[drop][TS] < cutoff:
                drop += 1
            if not drop:
                return
            gone, self._index = self._index[:drop], self._index[drop:]
            gone_pending = {e[KEY] for e in gone if e[SEGMENT] < 0}
            if gone_pending:
                self._pending = [(pe, line) for pe, line in self._pending if pe[KEY] not in gone_pending]
                for rid in gone_pending:
                    self._pending_by_key.pop(rid, None)
            # A segment file goes once none of its records is still indexed. Written entries are
            # in segment order and only the oldest leave, so the first one's segment is the oldest
            # still needed (a set of all of them cost milliseconds per flush at 100,000 records).
            first = next((e[SEGMENT] for e in self._index if e[SEGMENT] >= 0), None)
            newest = max(self._segment_counts, default=None)
            for seg in list(self._segment_counts):
                if (first is None or seg < first) and seg != newest:
                    self._path(seg).unlink(missing_ok=True)
                    del self._segment_counts[seg]

    # -- reads ---------------------------------------------------------------------------
    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._index)

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
        self._ensure_loaded()
        lo = since.timestamp() if since else None
        hi = until.timestamp() if until else None
        page: list[_Entry] = []
        skipped = 0
        with self._lock:
            for e in reversed(self._index):
                if function_id is not None and e[FUNCTION_ID] != function_id:
                    continue
                if status is not None and e[STATUS] != status:
                    continue
                if trigger is not None and e[TRIGGER] != trigger:
                    continue
                if hi is not None and e[TS] > hi:
                    continue
                if lo is not None and e[TS] < lo:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                page.append(e)
                if len(page) >= limit:
                    break
            return [self._read(e) for e in page]

    def get(self, invocation_id: str) -> InvocationRecord:
        self._ensure_loaded()
        with self._lock:
            for e in reversed(self._index):
                if e[ID] == invocation_id:
                    return self._read(e)
            # A unique prefix is enough, as git takes one for a commit: ids are long UUIDs.
            matches = [e for e in self._index if e[ID].startswith(invocation_id)] if invocation_id else []
            if matches and len({e[ID] for e in matches}) == 1:
                return self._read(matches[-1])  # the newest record of that id
        if len(matches) > 1:
            ids = sorted({e[ID] for e in matches})
            shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
            raise InvalidInput(
                "invocation id",
                [
                    FieldError(
                        "id",
                        (
                            f"{invocation_id!r} is the start of {len(ids)} invocation ids ({shown}); "
                            "give more characters"
                        ),
                    )
                ],
            )
        raise NotFound(
            f"no invocation with id {invocation_id!r} (nor one starting with it; `cloudfn history` lists them)"
        )

    def _read(self, e: _Entry) -> InvocationRecord:
        if e[SEGMENT] < 0:
            return self._pending_by_key[e[KEY]]
        with open(self._path(e[SEGMENT]), "rb") as f:
            f.seek(e[OFFSET])
            return InvocationRecord.model_validate_json(f.read(e[LENGTH]))

    def counts(self) -> dict[str, int]:
        self._ensure_loaded()
        out: dict[str, int] = {}
        with self._lock:
            for e in self._index:
                out[e[STATUS]] = out.get(e[STATUS], 0) + 1
        return out
