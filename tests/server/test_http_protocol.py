"""The server's HTTP protocol sends each response in one write (the client wakes once), and keeps
uvicorn's behaviour otherwise: keep-alive, a close after `connection: close`, a 400 for garbage."""

from __future__ import annotations

import asyncio

from uvicorn.config import Config
from uvicorn.server import ServerState

from core.server.http_protocol import OneWriteHttpToolsProtocol


class RecordingTransport(asyncio.Transport):
    """The event loop's socket transport, reduced to what it was asked to do."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name, default=None):
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def app(scope, receive, send):
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body) + 4).encode())],
        }
    )
    await send({"type": "http.response.body", "body": b"got " + body})


def protocol() -> tuple[OneWriteHttpToolsProtocol, RecordingTransport]:
    config = Config(app=app, http=OneWriteHttpToolsProtocol, lifespan="off", log_level="warning")
    proto = OneWriteHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = RecordingTransport()
    proto.connection_made(transport)
    return proto, transport


async def settle(transport: RecordingTransport, writes: int) -> None:
    for _ in range(100):
        if len(transport.writes) >= writes:
            break
        await asyncio.sleep(0)
    await asyncio.sleep(0)  # one more turn: nothing else is written


def request(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


async def test_a_response_is_one_write_and_the_connection_stays_open():
    proto, transport = protocol()
    proto.data_received(request(b"ping"))
    await settle(transport, 1)
    [only] = transport.writes
    assert only.startswith(b"HTTP/1.1 200 OK\r\n") and only.endswith(b"\r\n\r\ngot ping")
    assert not transport.closed
    proto.data_received(request(b"again"))  # keep-alive: the next request on the same connection
    await settle(transport, 2)
    assert len(transport.writes) == 2 and transport.writes[1].endswith(b"got again")


async def test_connection_close_sends_the_response_before_closing():
    proto, transport = protocol()
    proto.data_received(request(b"bye", b"connection: close\r\n"))
    await settle(transport, 1)
    assert transport.closed
    [only] = transport.writes
    assert only.endswith(b"got bye") and b"connection: close" in only


async def test_garbage_gets_uvicorns_400_and_a_close():
    proto, transport = protocol()
    proto.data_received(b"NOT HTTP AT ALL\r\n\r\n")
    await settle(transport, 1)
    assert transport.closed
    assert transport.writes and transport.writes[0].startswith(b"HTTP/1.1 400 Bad Request")
