"""uvicorn's HTTP protocol, with each response leaving in one write.

uvicorn writes the status line and headers, then the body, each at once. On this platform's
VMs a write that wakes the client on the other CPU is one of the dearest calls of a request
(a cross-CPU wake-up exits to the hypervisor): the two writes cost an eighth of the server's time
per invoke. Writes made in the same turn of the event loop are joined and leave together at
the start of the next turn, so a response is one write and the client wakes once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.server._uvicorn_compat import STOCK, HttpToolsProtocol


class _OneWritePerTurn:
    """A transport that holds the writes of one loop turn and writes them together."""

    __slots__ = ("_transport", "_loop", "_held")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held.append(data)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()  # what the response wrote goes before the close
        self._transport.close()

    def abort(self) -> None:
        self._held = []
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._held))

    def __getattr__(self, name: str) -> Any:  # everything else is the transport's own
        return getattr(self._transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if STOCK:  # CLOUDFN_STOCK_UVICORN: uvicorn's own two writes per response
            super().connection_made(transport)
            return
        super().connection_made(_OneWritePerTurn(transport, self.loop))  # type: ignore[arg-type]


class GuardedHttpToolsProtocol(OneWriteHttpToolsProtocol):
    """Deadlines for a client to send its headers and its body, and a cap on open connections.

    uvicorn arms a timer only between requests (keep-alive): a connection that opens and then
    sends its headers a byte at a time, or never, holds a file descriptor and a protocol for
    ever, and a few hundred of them (slowloris) exhaust the server without a token. Subclassed
    with the limits as class attributes by `guarded_protocol`.

    The parser's callbacks only note what the connection waits for (`_phase`); the deadline is
    armed or dropped once the read they came in is parsed. A request that arrives in one read
    then arms and cancels no timer at all, where arming at each callback made two timers per
    request; one that trickles in is armed at its first read, the same moment to a few µs."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_connections: int = 1000
    _last_warning = float("-inf")

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._armed_for: str | None = None  # what the armed deadline waits for
        self._phase: str | None = "headers"  # what the connection waits for: headers, body, or nothing
        # Counted before this one joins the set; refused here, before any byte is read, so
        # that past the cap a connection costs one accept and one close.
        if len(self.connections) >= self.max_connections:
            super().connection_made(transport)
            now = self.loop.time()
            if now - GuardedHttpToolsProtocol._last_warning > 10:  # one line per 10 s under a flood
                GuardedHttpToolsProtocol._last_warning = now
                self.logger.warning(
                    "refusing connections: %d are open (server.max_connections)", len(self.connections) - 1
                )
            self._answer_and_close(503, "the server has too many open connections; retry shortly")
            return
        super().connection_made(transport)
        self._arm(self.header_timeout, "headers")

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, what)
        self._armed_for = what

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._armed_for = None

    def _expired(self, what: str) -> None:
        self._deadline = None
        self._armed_for = None
        if self.transport.is_closing():
            return
        limit = self.header_timeout if what == "headers" else self.body_timeout
        self.logger.debug("closing a connection that sent no complete %s within %gs", what, limit)
        if what == "body" and self.cycle is not None and self.cycle.response_started:
            self.transport.close()
            return
        self._answer_and_close(408, f"the request's {what} did not arrive within {limit:g} s")

    def _answer_and_close(self, status: int, message: str) -> None:
        kind = "RequestTimeout" if status == 408 else "Unavailable"
        body = f'{{"error":"{message}","type":"{kind}","status":{status}}}'.encode()
        reason = b"Request Timeout" if status == 408 else b"Service Unavailable"
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, reason, len(body), body)
        )
        self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        phase = self._phase
        if phase == self._armed_for or self.transport.is_closing():
            return  # still waiting for the same part: its deadline keeps running from its start
        if phase is None:
            self._disarm()
        else:
            self._arm(self.header_timeout if phase == "headers" else self.body_timeout, phase)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # A keep-alive connection's next request: the deadline runs from its first byte. (The
        # first request's runs from the connect, armed in connection_made.)
        self._phase = "headers"

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        if self.transport.is_closing() or (self.parser.should_upgrade() and self._should_upgrade()):
            self._phase = None
            return
        self._phase = "body"

    def on_message_complete(self) -> None:
        self._phase = None
        super().on_message_complete()


def guarded_protocol(header_timeout: float, body_timeout: float, max_connections: int) -> type:
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout, "max_connections": max_connections},
    )
