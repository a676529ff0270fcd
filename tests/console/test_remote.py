"""The console attached to a real `cloudfn serve` over HTTP: it lists, invokes, shows where it
is attached, and says so when the server goes away and comes back."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from console_waits import settle, until

from cloudfn_tui.widgets.result_view import ResultView
from core.remote import RemotePlatform

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serverproc import start_server  # noqa: E402

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_remote_console_lists_invokes_and_reconnects(tmp_path, make_app, shared_cache):
    port = str(free_port())
    server = start_server(tmp_path / "srv", "--port", port, cache=shared_cache)
    platform = RemotePlatform(server.url, server.token)
    app = make_app(platform)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, app)
            assert server.url in app.sub_title  # the header says where it is attached
            await until(pilot, lambda: app.stream_state == "live", "the event stream", rounds=2000)
            screen = app.screen
            table = screen.functions
            hello = next(f for f in table.functions.values() if f.name == "hello-python")
            table.select_id(hello.id)
            await pilot.pause()
            await pilot.press("ctrl+r")
            await settle(pilot, app)
            await until(pilot, lambda: "success" in screen.query_one(ResultView).text, "the result")
            assert "Hello" in screen.query_one(ResultView).text

            server.stop()
            await until(pilot, lambda: app.stream_state == "lost", "the lost stream", rounds=3000)
            assert "reconnecting" in app.sub_title

            server = start_server(tmp_path / "srv", "--port", port, cache=shared_cache)
            await until(pilot, lambda: app.stream_state == "live", "the stream back", rounds=6000)
            assert "reconnecting" not in app.sub_title
            # notify() posts a message: the toast is in the app's list once that is handled.
            await until(pilot, lambda: any("back" in str(n.message) for n in app._notifications), "the back notice")
            await settle(pilot, app)  # the catch-up reload after reconnecting
    finally:
        server.stop()
