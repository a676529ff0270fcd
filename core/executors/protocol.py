"""The frame protocol between the platform and a worker's runner (see runners/).

The platform writes framed JSON requests to one pipe (the worker's REQ_FD) and reads framed
responses from another (RESP_FD); a frame is a 4-byte big-endian length then UTF-8 JSON. The
user's stdout and stderr share a third pipe; each request carries a nonce that the runner writes
there once the invocation is over, so logs are attributed exactly and nothing the user prints can
reach the protocol pipes. Everything here trusts nothing the worker sends.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from core.models import ErrorType, StackFrame

LOG_KEEP_BYTES = 64 * 1024  # logs returned with one invocation
LOG_LIMIT_BYTES = 1024 * 1024  # printing more than this in one invocation -> OutputTooLarge
RESULT_LIMIT_BYTES = 6 * 1024 * 1024  # Lambda's response limit
FRAME_SLACK = 64 * 1024
EVENT_LIMIT_BYTES = 6 * 1024 * 1024

NONCE_MARKER = re.compile(r"\x1e[0-9a-f]{32}\x1e\n?")  # the runner's end-of-logs markers


def encode_frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


class LogCollector(asyncio.Protocol):
    """Reads the worker's stdout+stderr pipe; splits it into invocations at nonce markers."""

    def __init__(self, on_flood: Callable[[], None]) -> None:
        self.on_flood = on_flood
        self.buf = bytearray()
        self.total = 0
        self.nonce = b""
        self.done = False
        self.tail = bytearray()  # the last bytes ever read, for crash messages
        self._scan = b""
        self._waiter: asyncio.Future[None] | None = None

    def begin(self, nonce: str) -> None:
        self.buf = bytearray()
        self.total = 0
        self.nonce = b"\x1e" + nonce.encode() + b"\x1e"
        self.done = False
        self._scan = b""

    async def wait_done(self, timeout: float) -> None:
        if self.done:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._waiter, timeout)
        except TimeoutError:
            pass
        finally:
            self._waiter = None

    def _finish(self) -> None:
        self.done = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _take(self, data: bytes) -> None:
        self.total += len(data)
        room = LOG_KEEP_BYTES - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        if self.total > LOG_LIMIT_BYTES:
            self.on_flood()

    def data_received(self, chunk: bytes) -> None:
        self.tail = (self.tail + chunk)[-4096:]
        if not self.nonce or self.done:
            return  # between invocations: printed by a leftover thread, dropped
        scan = self._scan + chunk
        idx = scan.find(self.nonce)
        if idx >= 0:
            before = len(self._scan)  # bytes of scan already taken
            if idx >= before:
                self._take(scan[before:idx])
            else:  # the marker began in bytes already taken: drop them again
                cut = before - idx
                del self.buf[max(0, len(self.buf) - cut) :]
                self.total -= cut
            self._finish()
            return
        self._take(chunk)
        keep = len(self.nonce) - 1
        self._scan = scan[-keep:] if keep else b""

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def text(self) -> str:
        s = bytes(self.buf).decode("utf-8", errors="replace")
        if self.total > len(self.buf):
            s += f"\n[cloudfn: logs truncated, {self.total - len(self.buf)} more bytes]"
        return s


class FrameReader(asyncio.Protocol):
    """Parses the worker's response pipe into frames and hands each to `on_event`. What cannot
    be a frame is handed on as "garbage" with what is wrong with it."""

    def __init__(self, on_event: Callable[[str, Any], None]) -> None:
        self.on_event = on_event
        self.buf = bytearray()
        self.broken = False

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return  # the worker is being stopped: what follows the first bad frame means nothing
        self.buf += data
        while len(self.buf) >= 4:
            size = int.from_bytes(self.buf[:4], "big")
            if size > RESULT_LIMIT_BYTES + FRAME_SLACK:
                self.on_event("toolarge", size)
                self.buf.clear()
                self.broken = True
                return
            if len(self.buf) < 4 + size:
                return
            body = bytes(self.buf[4 : 4 + size])
            del self.buf[: 4 + size]
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                self._garbage(f"a frame of {size} bytes that is not UTF-8 ({exc.reason} at byte {exc.start})")
                return
            try:
                value = json.loads(text)
            except ValueError as exc:
                self._garbage(f"a frame of {size} bytes that is not JSON ({exc})")
                return
            self.on_event("frame", value)

    def _garbage(self, what: str) -> None:
        self.broken = True
        self.buf.clear()
        self.on_event("garbage", what)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.buf and not self.broken:
            have = len(self.buf)
            want = f"{int.from_bytes(self.buf[:4], 'big') + 4} bytes" if have >= 4 else "a 4-byte length"
            self._garbage(f"a frame cut short: the pipe closed after {have} bytes of {want}")
        self.on_event("eof", None)


# Error types a runner may report about its own invocation; any other (Throttled, say) would
# have the platform speak for the function.
RUNNER_ERROR_TYPES = frozenset(
    e.value
    for e in (
        ErrorType.HANDLER_ERROR,
        ErrorType.COMPILE_ERROR,
        ErrorType.MEMORY_LIMIT,
        ErrorType.OUTPUT_TOO_LARGE,
        ErrorType.INVALID_EVENT,
        ErrorType.INVALID_RESULT,
    )
)
_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}


def reply_problem(value: Any, nonce: str | None, expect: str | None) -> str | None:
    """What is wrong with a reply frame, or None. `expect`: "ready" (to an init), "result" (to an
    invoke), None (only an object is expected: a pre-started runner's "up")."""
    if not isinstance(value, dict):
        return f"a JSON {_JSON_TYPES.get(type(value), 'null')} where a reply object was expected"
    if expect is None:
        return None
    kind = value.get("type")
    if value.get("nonce") != nonce:
        what = f"type {kind!r}" if isinstance(kind, str) else "no type"
        return (
            f"a frame ({what}) that does not carry the nonce of the request it answers: "
            "made up, or a reply to another request"
        )
    if expect == "ready" and kind not in (None, "ready"):
        return f"a frame of type {kind!r} where the reply to loading the code was expected"
    if expect == "result" and kind is not None:
        return f"a frame of type {kind!r} where an invocation's result was expected"
    ok = value.get("ok")
    if not isinstance(ok, bool):
        return "a reply whose 'ok' is not true or false"
    if not ok:
        et = value.get("error_type", "CompileError" if expect == "ready" else "HandlerError")
        if et not in RUNNER_ERROR_TYPES:
            return f"a reply with the error_type {et!r}, which a runner cannot report"
        if not isinstance(value.get("error", ""), str):
            return "a reply whose 'error' is not a string"
        if not isinstance(value.get("stack") or [], list):
            return "a reply whose 'stack' is not a list"
    for k in ("cpu", "maxrss_kb", "load_ms"):
        v = value.get(k, 0)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"a reply whose {k!r} is not a number"
    if not isinstance(value.get("logs_closed", True), bool):
        return "a reply whose 'logs_closed' is not true or false"
    return None


def stack_frames(raw: list[dict[str, Any]] | None) -> list[StackFrame]:
    """The frames a runner reported that make sense; the others are dropped, not trusted."""
    out = []
    for f in raw or []:
        try:
            fields = {k: f.get(k) for k in ("file", "line", "function", "column") if f.get(k) is not None}
            out.append(StackFrame(**fields))
        except Exception:
            continue
    return out
