"""Structured logs: the platform logs through stdlib `logging`; every record becomes a
`LogRecord` kept in a bounded ring (for the console), appended to a rotating JSON-lines file in
the data directory, and published on the event bus. What a function prints becomes records
tagged with its function and invocation.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.filemodes import open_private, private_dir
from core.models import LOG_LEVELS, LogRecord, name_key

MAX_LINE = 16 * 1024  # longer lines are cut; a 10 MB line must not be stored whole
LEVEL_NUM = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_STD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# "ERROR ...", "[warn] ...", "level=info ..." at the start of a printed line.
_LEVEL_PREFIX = re.compile(
    r"^\s*(?:\[|level=)?(debug|info|warn|warning|error|err|fatal|critical)\b[\]:]?", re.IGNORECASE
)
_LEVEL_ALIASES = {"warn": "warning", "err": "error", "fatal": "critical"}
FUNCTION_LOGGER = "cloudfn.function"


def level_name(levelno: int) -> str:
    for name, num in sorted(LEVEL_NUM.items(), key=lambda kv: -kv[1]):
        if levelno >= num:
            return name
    return "debug"


def normalize_level(level: str) -> str:
    level = level.strip().lower()
    level = _LEVEL_ALIASES.get(level, level)
    if level not in LEVEL_NUM:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    return level


def truncate(text: str, limit: int = MAX_LINE) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [cut {len(text) - limit} characters]"


class LogHub(logging.Handler):
    def __init__(
        self,
        directory: Path,
        ring_size: int = 20_000,
        max_bytes: int = 10 * 1024 * 1024,
        backups: int = 5,
        publish: Callable[[str, Callable[[], dict[str, Any]]], object] | None = None,
    ):
        super().__init__(level=logging.DEBUG)
        self.directory = Path(directory)
        private_dir(self.directory)
        self.path = self.directory / "cloudfn.jsonl"
        self.max_bytes = max_bytes
        self.backups = backups
        self.ring: deque[LogRecord] = deque(maxlen=ring_size)
        self.publish = publish
        self._lock = threading.Lock()
        self._out = _PrivateRotatingFile(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        # Lines from before this process are read into the ring on the first query only, so
        # starting the platform never pays for a large log file.
        self._backfilled = self.path.stat().st_size == 0

    # -- in ------------------------------------------------------------------------------
    def emit(self, record: logging.LogRecord) -> None:
        try:
            extra = {
                k: v for k, v in vars(record).items() if k not in _STD_ATTRS and k not in ("function", "invocation_id")
            }
            message = record.getMessage()
            if record.exc_info:
                message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
            self.add(
                LogRecord(
                    time=datetime.fromtimestamp(record.created, UTC),
                    level=level_name(record.levelno),
                    logger=record.name,
                    message=truncate(message),
                    function=getattr(record, "function", None),
                    invocation_id=getattr(record, "invocation_id", None),
                    extra=_jsonable(extra),
                )
            )
        except Exception:  # a log line must never break the caller
            self.handleError(record)

    def function_output(
        self, function: str, invocation_id: str, text: str, when: datetime | None = None
    ) -> list[LogRecord]:
        """Turn what a function printed into records, one a line, its level read from a
        leading word (INFO, WARN, ERROR...) and info otherwise."""
        when = when or datetime.now(UTC)
        records = []
        for line in text.splitlines():
            if not line.strip():
                continue
            m = _LEVEL_PREFIX.match(line)
            level = _LEVEL_ALIASES.get(m.group(1).lower(), m.group(1).lower()) if m else "info"
            rec = LogRecord(
                time=when,
                level=level,
                logger=FUNCTION_LOGGER,
                message=truncate(line),
                function=function,
                invocation_id=invocation_id,
            )
            self.add(rec)
            records.append(rec)
        return records

    def add(self, rec: LogRecord) -> None:
        line = rec.model_dump_json() + "\n"
        with self._lock:
            self.ring.append(rec)
            # A closed file must not silence the live stream: the bus does not depend on it.
            out = self._out.stream
            if out is not None and not out.closed:
                out.write(line)
                out.flush()
                if out.tell() >= self.max_bytes:
                    self._out.doRollover()
        if self.publish is not None:
            self.publish("log", lambda: rec.model_dump(mode="json"))

    # -- out -----------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """Oldest first."""
        rotated = sorted(self.directory.glob(f"{self.path.name}.*"), key=lambda p: -int(p.suffix[1:]))
        return [*rotated, self.path]

    def query(
        self,
        level: str | None = None,
        function: str | None = None,
        invocation_id: str | None = None,
        text: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[LogRecord]:
        """The newest `limit` matches, oldest first. Served from the ring; when the ring does
        not reach back far enough and `since` asks for older lines, the files are read too."""
        floor = LEVEL_NUM[normalize_level(level)] if level else 0
        needle = text.lower() if text else None
        # As function names are: without regard to case (the lines of a deleted function too).
        wanted = name_key(function) if function is not None else None

        def keep(r: LogRecord) -> bool:
            return (
                LEVEL_NUM.get(r.level, 0) >= floor
                and (
                    wanted is None
                    or (r.function is not None and (r.function == function or name_key(r.function) == wanted))
                )
                and (invocation_id is None or r.invocation_id == invocation_id)
                and (needle is None or needle in r.message.lower())
                and (since is None or r.time >= since)
                and (until is None or r.time <= until)
            )

        if not self._backfilled:
            self._backfill()
        with self._lock:
            ring = list(self.ring)
        source: Iterable[LogRecord] = ring
        ring_full = len(ring) == self.ring.maxlen
        if ring_full and since is not None and ring and ring[0].time > since:
            source = self._read_files()
        out: deque[LogRecord] = deque(maxlen=max(1, limit))
        for r in source:
            if keep(r):
                out.append(r)
        return list(out)

    def _backfill(self) -> None:
        tail: deque[LogRecord] = deque(self._read_files(), maxlen=self.ring.maxlen)
        with self._lock:
            # Every line of this process is in the files too, so the tail replaces the ring.
            self.ring.clear()
            self.ring.extend(tail)
            self._backfilled = True

    def _read_files(self) -> Iterable[LogRecord]:
        with self._lock:
            if self._out.stream is not None and not self._out.stream.closed:
                self._out.stream.flush()
        for path in self.files():
            try:
                with open(path, encoding="utf-8") as f:
                    for line in f:
                        try:
                            yield LogRecord.model_validate_json(line)
                        except ValueError:
                            continue  # a torn last line after a crash
            except FileNotFoundError:
                continue

    def close(self) -> None:
        """Only the platform closes the hub (`shutdown`). A logging reconfiguration
        (uvicorn.Config's dictConfig) runs `logging.shutdown`, which closes every handler ever
        made: that closed the file while the platform ran, so a served platform stored and
        streamed no log line."""

    def shutdown(self) -> None:
        with self._lock:
            self._out.shutdown()
        super().close()


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in values.items():
        try:
            json.dumps(v)
            out[k] = v
        except (TypeError, ValueError):
            out[k] = repr(v)
    return out


def attach(hub: LogHub, level: str) -> logging.Logger:
    """Route the `cloudfn` logger tree into the hub at the configured level."""
    logger = logging.getLogger("cloudfn")
    for h in list(logger.handlers):
        if isinstance(h, LogHub):
            logger.removeHandler(h)
    logger.addHandler(hub)
    logger.setLevel(LEVEL_NUM[normalize_level(level)])
    logger.propagate = False
    return logger


def detach(hub: LogHub) -> None:
    logging.getLogger("cloudfn").removeHandler(hub)


class _PrivateRotatingFile(logging.handlers.RotatingFileHandler):
    """The JSON-lines file, rotated by the standard library (cloudfn.jsonl.1 ... .N, as before),
    created 0600 like every file in the data directory. The hub writes its stream directly (the
    lines are already JSON) and asks for the rollover; `close` is the logging machinery's and
    does nothing, since uvicorn's dictConfig closes every handler ever made (see LogHub.close)."""

    def _open(self) -> Any:
        return open_private(Path(self.baseFilename), self.mode, encoding=self.encoding)

    def close(self) -> None:
        pass

    def shutdown(self) -> None:
        super().close()
