"""`cloudfn web`: the console in a browser. A real textual-serve server on a loopback port; a
websocket client plays the browser and sees the console draw the bundled examples."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serverproc import wait_for_line  # noqa: E402

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, deadline: float = 60) -> None:
    """The line comes before the socket listens: poll it (bounded) until it accepts."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"cloudfn web never listened on {port}")


async def test_the_browser_console_draws_the_functions(tmp_path):
    port = free_port()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "XDG_DATA_HOME": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(tmp_path / "d"), "web", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_for_line(proc, "serving the console at")
        wait_for_port(port)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/") as page:
                assert page.status == 200
                assert "cloudfn" in await page.text()
            screen = b""
            async with session.ws_connect(f"ws://127.0.0.1:{port}/ws?width=120&height=40") as ws:
                async for msg in ws:  # bounded by the console drawing, or the socket closing
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        screen += msg.data
                    if b"hello-python" in screen:
                        break
                assert b"hello-python" in screen
                await ws.send_json(["stdin", "\x11"])  # ctrl+q
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def test_web_refuses_a_public_address_without_asking():
    r = subprocess.run(
        [sys.executable, "-m", "cloudfn_tui.cli", "web", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "not a loopback address" in r.stderr and "Traceback" not in r.stderr


def test_the_page_names_no_other_host_and_a_new_one_is_refused():
    """Without a browser: the page cloudfn web serves loads its font from itself, and a
    textual-serve whose template brings another outside reference stops the start."""
    import textual_serve

    from cloudfn_tui.commands.web import offline_page
    from core.errors import ConfigError

    template = (Path(textual_serve.__file__).parent / "templates" / "app_index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis.com" in template  # why web.py rewrites the page
    page = offline_page(template)
    assert "googleapis" not in page and "fonts/RobotoMono-VariableFont_wght.ttf" in page
    with pytest.raises(ConfigError, match="cdn.example"):
        offline_page(template.replace("</head>", '<script src="https://cdn.example/x.js"></script></head>'))
