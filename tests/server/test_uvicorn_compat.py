"""What core/server/_uvicorn_compat.py and _fastapi_compat.py assume of uvicorn and FastAPI still
holds; an upgrade that moves one of these fails here, by name (README, "Upgrading")."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from serverproc import REPO
from starlette.applications import Starlette
from test_http_protocol import protocol, request, settle

from core.server import _fastapi_compat, _uvicorn_compat, http_protocol


def test_the_protocol_base_has_what_the_subclasses_use():
    base = _uvicorn_compat.HttpToolsProtocol
    for name in (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_begin",
        "on_headers_complete",
        "on_message_complete",
        "_should_upgrade",
    ):
        assert callable(getattr(base, name, None)), f"HttpToolsProtocol.{name} is gone"
    init = inspect.getsource(base.__init__)
    for attr in ("self.connections", "self.logger", "self.cycle", "self.parser", "self.loop", "self.server_state"):
        assert attr in init, f"HttpToolsProtocol no longer sets {attr}"


def test_the_server_still_has_the_hooks_we_override():
    for name in ("capture_signals", "handle_exit", "shutdown", "main_loop", "serve"):
        assert callable(getattr(uvicorn.Server, name, None)), f"uvicorn.Server.{name} is gone"
    assert "sockets" in inspect.signature(uvicorn.Server.shutdown).parameters


def test_the_loop_factory_picks_uvloop_when_installed():
    factory = _uvicorn_compat.loop_factory()
    assert factory is not None
    loop = factory()
    try:
        uvloop = pytest.importorskip("uvloop")
        assert isinstance(loop, uvloop.Loop)
    finally:
        loop.close()


async def test_the_quiet_server_serves_and_leaves_the_signal_handlers_alone():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    server = _uvicorn_compat.QuietServer(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with httpx.AsyncClient() as client:  # the socket listens already: the connect waits in its backlog
            r = await client.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert r.text == "ok"
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    finally:
        server.should_exit = True
        await task
        sock.close()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


@pytest.mark.parametrize("stock, writes", [(False, 1), (True, 2)])
async def test_the_stock_switch_gives_uvicorns_two_writes_per_response(monkeypatch, stock, writes):
    monkeypatch.setattr(http_protocol, "STOCK", stock)
    proto, transport = protocol()
    proto.data_received(request(b"ping"))
    await settle(transport, writes)
    assert len(transport.writes) == writes
    assert b"".join(transport.writes).endswith(b"\r\n\r\ngot ping")


def test_fastapis_call_adds_only_what_we_skip_to_starlettes():
    """The replacement is Starlette's call; FastAPI's differs by the root_path copy and the
    telemetry probe only. Anything else new in it is to be looked at before the pin moves."""
    source = inspect.getsource(FastAPI.__call__)
    assert "root_path" in source and "telemetry" in source
    assert "middleware_stack" in inspect.getsource(Starlette.__call__)
    ours = inspect.getsource(_fastapi_compat._StarletteCallFastAPI.__call__)
    assert "build_middleware_stack" in ours and "telemetry" not in ours


@pytest.mark.parametrize(
    "var, module, check",
    [
        ("CLOUDFN_STOCK_UVICORN", "core.server._uvicorn_compat", "m.STOCK"),
        (
            "CLOUDFN_STOCK_FASTAPI",
            "core.server._fastapi_compat",
            "m.STOCK and m.LeanFastAPI is __import__('fastapi').FastAPI",
        ),
    ],
)
@pytest.mark.parametrize("value, expected", [("1", "True"), ("0", "False"), ("", "False")])
def test_the_stock_switches_read_their_environment(var, module, check, value, expected):
    code = f"import importlib; m = importlib.import_module({module!r}); print(bool({check}))"
    env = {**os.environ, "PYTHONPATH": str(REPO), var: value}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == expected, out.stderr
