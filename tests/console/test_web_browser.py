"""`cloudfn web` in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

The websocket test (test_web.py) plays the browser's socket; this one runs textual-serve's page
itself (its template, its xterm.js, its fonts), so it sees what a user behind an SSH tunnel or on
a plane sees: whether the console draws, whether keys reach it, and whether the page asks any
host but the one serving it."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from serverproc import wait_for_line  # noqa: E402
from test_web import free_port, wait_for_port  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="needs Debian's chromium (apt-get install chromium; scripts/setup.sh installs it for the tests)",
    ),
]
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
STEP = 60.0  # bound on each wait; a 2-core CI machine starts a browser and a console in a few seconds

# xterm.js draws on a canvas (WebGL or 2D), so the page's DOM holds no text; the terminal's
# buffer does. textual-serve keeps its Terminal in a closure, so DevTools' queryObjects finds it
# on the heap: the one object with xterm's public buffer API.
FIND_TERMINAL = """function () {
    return this.find(o => { try {
        return o && typeof o.onWriteParsed === "function" && o.buffer && o.buffer.active
            && typeof o.buffer.active.getLine === "function" && typeof o.focus === "function";
    } catch (e) { return false; } }) || null;
}"""
_ROWS = """const screen = (t) => {
        const b = t.buffer.active, rows = [];
        for (let y = 0; y < t.rows; y++) {
            const line = b.getLine(b.viewportY + y);
            rows.push(line ? line.translateToString(true) : "");
        }
        return rows.join("\\n");
    };"""
SCREEN_TEXT = "function () { " + _ROWS + " return screen(this); }"
# Resolves once the screen holds (or has lost) the text: on xterm's own parse event, not a timer.
WAIT_TEXT = (
    "function (needle, gone) { "
    + _ROWS
    + """
    return new Promise(resolve => {
        const check = () => { if (screen(this).includes(needle) !== gone) { sub.dispose(); resolve(true); } };
        const sub = this.onWriteParsed(check);
        check();
    });
}"""
)

# document.fonts.check() is true for a family no @font-face declares: ask for a loaded face.
ROBOTO_LOADED = """document.fonts.ready.then(() => [...document.fonts].some(
    f => f.family.replace(/["']/g, "") === "Roboto Mono" && f.status === "loaded"))"""


class CDP:
    """The least of the DevTools protocol: numbered calls on one socket, events kept in order."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.listeners: list = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            data = json.loads(msg.data)
            if "id" in data:
                fut = self.pending.pop(data["id"], None)
                if fut is not None and not fut.done():
                    fut.set_result(data)
            else:
                for listener in self.listeners:
                    listener(data)
        for fut in self.pending.values():
            fut.set_exception(ConnectionError("the browser closed its DevTools socket"))

    async def call(self, method: str, session: str | None = None, timeout: float = STEP, **params):
        msg_id = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[msg_id] = fut
        msg = {"id": msg_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        await self.ws.send_str(json.dumps(msg))
        reply = await asyncio.wait_for(fut, timeout)
        if "error" in reply:
            raise AssertionError(f"{method}: {reply['error']}")
        return reply["result"]


async def _devtools_url(browser: asyncio.subprocess.Process) -> str:
    async def read() -> str:
        seen = []
        while line := await browser.stderr.readline():
            text = line.decode(errors="replace").strip()
            if text.startswith("DevTools listening on "):
                return text.removeprefix("DevTools listening on ")
            seen.append(text)
        raise AssertionError("chromium exited before opening DevTools:\n" + "\n".join(seen[-20:]))

    return await asyncio.wait_for(read(), STEP)


async def test_the_console_in_headless_chromium_draws_reads_keys_and_stays_on_loopback(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "cloudfn_tui.cli", "--data-dir", str(tmp_path / "d"), "web", "--port", str(port)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
    )
    browser = drain = None
    try:
        wait_for_line(server, "serving the console at")
        wait_for_port(port)
        # As root Chromium needs --no-sandbox; the rest keeps it from phoning home on its own, so
        # the only requests are the page's. The resolver rule makes a slip fail here, offline,
        # as it would for the user, instead of reaching the internet from CI.
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--window-size=1280,900",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        devtools = await _devtools_url(browser)
        drain = asyncio.ensure_future(browser.stderr.read())  # a full pipe would stall the browser
        async with aiohttp.ClientSession() as http, http.ws_connect(devtools, max_msg_size=0) as ws:
            cdp = CDP(ws)
            requests: list[str] = []
            loaded = asyncio.Event()

            def on_event(event: dict) -> None:
                if event["method"] == "Network.requestWillBeSent":
                    requests.append(event["params"]["request"]["url"])
                elif event["method"] == "Network.webSocketCreated":  # sockets have their own event
                    requests.append(event["params"]["url"])
                elif event["method"] == "Page.loadEventFired":
                    loaded.set()

            cdp.listeners.append(on_event)

            target = (await cdp.call("Target.createTarget", url="about:blank"))["targetId"]
            page = (await cdp.call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
            await cdp.call("Network.enable", page)
            await cdp.call("Page.enable", page)
            await cdp.call("Runtime.enable", page)
            await cdp.call("Page.navigate", page, url=f"http://127.0.0.1:{port}/")
            await asyncio.wait_for(loaded.wait(), STEP)  # textual.js makes its terminal on window.onload

            proto = (await cdp.call("Runtime.evaluate", page, expression="Object.prototype"))["result"]["objectId"]
            heap = (await cdp.call("Runtime.queryObjects", page, prototypeObjectId=proto))["objects"]["objectId"]
            term = (await cdp.call("Runtime.callFunctionOn", page, objectId=heap, functionDeclaration=FIND_TERMINAL))[
                "result"
            ].get("objectId")
            assert term, "no xterm.js Terminal on the page"

            async def screen() -> str:
                r = await cdp.call(
                    "Runtime.callFunctionOn", page, objectId=term, functionDeclaration=SCREEN_TEXT, returnByValue=True
                )
                return r["result"]["value"]

            async def wait_text(needle: str, gone: bool = False) -> str:
                try:
                    await cdp.call(
                        "Runtime.callFunctionOn",
                        page,
                        objectId=term,
                        functionDeclaration=WAIT_TEXT,
                        arguments=[{"value": needle}, {"value": gone}],
                        awaitPromise=True,
                    )
                except TimeoutError:
                    raise AssertionError(
                        f"{needle!r} never {'went' if gone else 'appeared'}; the page's "
                        f"terminal showed:\n{await screen()}"
                    ) from None
                return await screen()

            async def type_keys(text: str) -> None:
                for ch in text:  # as a keyboard does: xterm reads keydown/keypress on its textarea
                    await cdp.call("Input.dispatchKeyEvent", page, type="keyDown", text=ch, key=ch, unmodifiedText=ch)
                    await cdp.call("Input.dispatchKeyEvent", page, type="keyUp", key=ch)

            shown = await wait_text("hello-python")
            assert "fail-python" in shown and "sleep-go" in shown
            await wait_text("Logs · following")  # the live panes are up: the console reads keys now

            # what a user's click does; a click itself would also reach the console as a mouse event
            await cdp.call(
                "Runtime.callFunctionOn", page, objectId=term, functionDeclaration="function () { this.focus(); }"
            )
            await type_keys("/")
            await wait_text("filter: name")
            await type_keys("hello-py")
            narrowed = await wait_text("fail-python", gone=True)
            assert "hello-python" in narrowed and "sleep-go" not in narrowed

            foreign = [
                u
                for u in requests
                if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname not in LOOPBACK
            ]
            assert requests and not foreign, f"the page asked hosts beyond loopback: {foreign}"
            # offline is not enough: the terminal must still get its own font, not a fallback
            fonts = await cdp.call(
                "Runtime.evaluate", page, returnByValue=True, awaitPromise=True, expression=ROBOTO_LOADED
            )
            assert fonts["result"]["value"] is True and any("/static/fonts/" in u for u in requests), requests
            await cdp.call("Browser.close", timeout=10)
    finally:
        if browser is not None and browser.returncode is None:
            browser.kill()
            await browser.wait()
        if drain is not None:
            await drain
        server.send_signal(signal.SIGINT)
        server.wait(30)
