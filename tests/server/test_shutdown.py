"""Graceful shutdown: invocations in flight finish, history is flushed, exit 0; a second signal
forces the exit; requests arriving while the server shuts down get 503."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serverproc import start_server

from core.config import load_config
from core.local import LocalPlatform
from core.remote import RemotePlatform
from core.server import ServerState, create_app

ROOT = Path(__file__).resolve().parents[2]
SLEEPY = (
    "import time\ndef handler(event, context):\n    time.sleep(event['s'])\n"
    "    return {'slept': event['s'], 'n': event['n']}\n"
)


async def _start_in_flight(server, n: int, seconds: float):
    """Create the sleepy function, fire `n` invocations, and return once the event stream has
    seen every one of them start."""
    remote = RemotePlatform(server.url, server.token)
    await remote.create_function({"name": "sleepy", "runtime": "python", "code": SLEEPY})
    await remote.invoke("sleepy", {"s": 0, "n": -1})  # warm: the shutdown test is about in-flight work
    stream = remote.events({"invocation.started"})
    first = asyncio.ensure_future(anext(stream))
    client = httpx.AsyncClient(base_url=server.url, headers=server.headers(), timeout=120)
    calls: list[asyncio.Future] = []
    # The stream subscribes on its first read; start invocations until it has seen one, then
    # start the rest: every one after the first is certainly seen.
    while True:
        calls.append(
            asyncio.ensure_future(
                client.post("/api/v1/functions/sleepy/invoke", json={"event": {"s": seconds, "n": len(calls)}})
            )
        )
        done, _ = await asyncio.wait({first}, timeout=0.1)
        if done:
            break
    seen = 1
    while len(calls) < n:
        calls.append(
            asyncio.ensure_future(
                client.post("/api/v1/functions/sleepy/invoke", json={"event": {"s": seconds, "n": len(calls)}})
            )
        )
    while seen < len(calls):
        await asyncio.wait_for(anext(stream), 30)
        seen += 1
    await stream.aclose()
    return remote, client, calls


async def test_sigterm_lets_invocations_in_flight_finish_then_exits_0(tmp_path, shared_cache):
    server = start_server(tmp_path / "s", "--mode", "release", cache=shared_cache)
    remote, client, calls = await _start_in_flight(server, 4, 1.5)
    server.proc.send_signal(signal.SIGTERM)
    responses = await asyncio.gather(*calls)
    assert [r.status_code for r in responses] == [200] * len(calls)
    assert all(r.json()["success"] for r in responses), [r.json()["error"] for r in responses]
    assert sorted(r.json()["result"]["n"] for r in responses) == list(range(len(calls)))
    await client.aclose()
    await remote.close()
    assert await asyncio.to_thread(server.proc.wait, 60) == 0, server.stderr()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/api/health")
    # Every invocation reached the history on disk before the exit.
    platform = LocalPlatform(load_config(flags={"storage.data_dir": str(server.data_dir)}))
    try:
        ids = {r.json()["invocation_id"] for r in responses}
        assert ids <= {r.id for r in await platform.list_invocations(function="sleepy", limit=100)}
    finally:
        await platform.close()


async def test_a_second_signal_forces_the_exit(tmp_path, shared_cache):
    server = start_server(tmp_path / "s", cache=shared_cache)
    remote, client, calls = await _start_in_flight(server, 1, 60)
    server.proc.send_signal(signal.SIGINT)
    server.proc.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(server.proc.wait, 30)  # far less than the 60 s invocation
    assert code == 1, server.stderr()
    for call in calls:  # cut off: the connection drops, or the killed worker is reported
        try:
            r = await call
        except httpx.HTTPError:
            continue
        assert r.json()["success"] is False, r.text
    await client.aclose()
    await remote.close()


async def test_requests_arriving_while_shutting_down_get_503(config):
    platform = LocalPlatform(config, install_examples=False)
    state = ServerState()
    app = create_app(platform, state=state)
    try:
        # No token: the app answers only a loopback Host.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            assert (await c.get("/api/health")).status_code == 200
            state.begin_shutdown()
            for path in ("/api/health", "/api/v1/functions"):
                r = await c.get(path)
                assert r.status_code == 503 and r.json()["type"] == "Unavailable"
                assert r.headers["connection"] == "close"
    finally:
        await platform.close()


def _left_by_the_watchdog(script: str) -> str:
    """Run `script` (it arms the watchdog, then hangs); it must exit 1. Its stderr."""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    return proc.stderr


def test_a_forced_shutdown_that_hangs_leaves_anyway_and_says_where():
    """The second signal's promise holds even when the close itself hangs (a worker that will
    not die, a thread that will not end): the process leaves with exit 1 and prints the stacks
    it was stuck in, which is what a bug report needs."""
    hang = (
        "import threading, time\n"
        "from core.server.runner import _arm_forced_exit\n"
        "_arm_forced_exit(0.2)\n"
        "def stuck_in_close():\n"
        "    threading.Event().wait()\n"
        "stuck_in_close()\n"
    )
    stderr = _left_by_the_watchdog(hang)
    assert "the forced shutdown did not finish within 0.2 s; exiting now" in stderr
    assert "stuck_in_close" in stderr, stderr


def test_the_watchdog_names_the_coroutine_a_stuck_task_waits_in():
    """Not only the threads: a task parked deep in an await chain is shown down to the coroutine
    that waits (found that way: a worker's invocations stuck in nats-py's object-store read)."""
    hang = (
        "import asyncio, threading\n"
        "from core.server.runner import _arm_forced_exit\n"
        "async def waits_for_a_chunk():\n"
        "    await asyncio.get_running_loop().create_future()\n"
        "async def fetch_the_code():\n"
        "    await waits_for_a_chunk()\n"
        "async def main():\n"
        "    task = asyncio.ensure_future(fetch_the_code())\n"
        "    task.set_name('stuck-invocation')\n"
        "    _arm_forced_exit(0.2, asyncio.get_running_loop())\n"
        "    await asyncio.sleep(0)\n"
        "    threading.Event().wait()  # the loop itself stuck too\n"
        "asyncio.run(main())\n"
    )
    stderr = _left_by_the_watchdog(hang)
    chain = stderr.split("task stuck-invocation:", 1)[1]
    assert chain.index("in fetch_the_code") < chain.index("in waits_for_a_chunk"), stderr
