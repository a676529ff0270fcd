"""Asynchronous invocation inside one LocalPlatform: what the conformance suite cannot stage
from outside (a function deleted with events queued, throttling, destinations, file modes).
Waits are on the platform's event bus or `invocation_status(wait=...)`, never sleeps."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from core.config import load_config
from core.local import LocalPlatform
from core.triggers.queue import QUEUE_FILE

OK = "def handler(event, context):\n    return {'event': event, 'attempt': context['attempt']}\n"
FAILS = "def handler(event, context):\n    raise ValueError('no ' + context['attempt'])\n"
SLOW = "import time\ndef handler(event, context):\n    time.sleep(0.3)\n    return event\n"


def spec(name: str, code: str, **kw) -> dict:
    return {"name": name, "runtime": "python", "code": code, **kw}


@pytest.fixture
async def platform(data_dir):
    p = LocalPlatform(load_config(flags={"storage.data_dir": str(data_dir)}), install_examples=False)
    yield p
    await p.close()


async def next_event(stream, kind: str, pred=lambda d: True, timeout: float = 60):
    async def find():
        async for ev in stream:
            if ev.kind == kind and pred(ev.data):
                return ev

    return await asyncio.wait_for(find(), timeout)


async def test_queue_file_is_private(platform, data_dir):
    fn = await platform.create_function(spec("ok", OK))
    await platform.invoke_async(fn.name, 1)
    for path in data_dir.glob(QUEUE_FILE + "*"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


async def test_events_on_the_bus_for_queue_retry_and_dead_letter(platform):
    await platform.create_function(spec("fails", FAILS, **{"async": {"max_retries": 1, "retry_backoff": 0.01}}))
    stream = platform.events({"async.queued", "async.retry_scheduled", "async.dead_lettered"})
    accepted = await platform.invoke_async("fails", {"k": 1})
    queued = await next_event(stream, "async.queued")
    assert queued.data["invocation_id"] == accepted.invocation_id
    retry = await next_event(stream, "async.retry_scheduled")
    assert (retry.data["attempt"], retry.data["error_type"]) == (1, "HandlerError") and retry.data["delay"] >= 0
    dead = await next_event(stream, "async.dead_lettered")
    assert dead.data["id"] == accepted.invocation_id and len(dead.data["errors"]) == 2


async def test_a_function_deleted_with_events_queued_leaves_dead_letters_saying_why(platform):
    # The first attempt fails and the retry is an hour away: the event waits in the queue.
    await platform.create_function(spec("doomed", FAILS, **{"async": {"retry_backoff": 3600}}))
    stream = platform.events({"async.retry_scheduled", "async.dead_lettered"})
    accepted = await platform.invoke_async("doomed", {"x": 1})
    await next_event(stream, "async.retry_scheduled")
    assert (await platform.invocation_status(accepted.invocation_id)).status == "failed"
    await platform.delete_function("doomed")
    dead = await next_event(stream, "async.dead_lettered")
    assert dead.data["id"] == accepted.invocation_id
    assert "was deleted while the event was queued" in dead.data["reason"] and "doomed" in dead.data["reason"]
    letters = await platform.list_dead_letters()
    assert [d.event for d in letters if d.id == accepted.invocation_id] == [{"x": 1}]
    assert (await platform.invocation_status(accepted.invocation_id)).status == "dead"


async def test_throttled_attempts_are_retried_without_spending_retries(data_dir):
    # One slot for the function and no waiting room: of four events run at once, three are
    # throttled; with max_retries 0 they still all succeed.
    config = load_config(flags={"storage.data_dir": str(data_dir), "runtime.queue_size": 0})
    p = LocalPlatform(config, install_examples=False)
    try:
        await p.create_function(
            spec("narrow", SLOW, max_concurrency=1, **{"async": {"max_retries": 0, "retry_backoff": 0.05}})
        )
        ids = [(await p.invoke_async("narrow", i)).invocation_id for i in range(4)]
        views = [await p.invocation_status(i, wait=60) for i in ids]
        assert [v.status for v in views] == ["success"] * 4
        throttles = [e for v in views for e in v.errors]
        assert throttles and {e.error_type for e in throttles} == {"Throttled"}
        assert await p.list_dead_letters() == []
    finally:
        await p.close()


class _Catcher(BaseHTTPRequestHandler):
    got: list = []
    arrived = threading.Event()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).got.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(204)
        self.end_headers()
        type(self).arrived.set()

    def log_message(self, *a):
        pass


@pytest.fixture
def catcher():
    _Catcher.got, _Catcher.arrived = [], threading.Event()
    server = HTTPServer(("127.0.0.1", 0), _Catcher)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server
    server.shutdown()
    server.server_close()


async def test_loopback_webhook_is_refused_by_default(platform, catcher):
    url = f"http://127.0.0.1:{catcher.server_port}/hook"
    await platform.create_function(spec("hooked", FAILS, **{"async": {"max_retries": 0, "on_failure": url}}))
    stream = platform.events({"log"})
    accepted = await platform.invoke_async("hooked", 1)
    line = await next_event(stream, "log", lambda d: "not reached" in d.get("message", ""))
    assert "loopback" in line.data["message"] and "async.webhook_allow_private" in line.data["message"]
    assert accepted.invocation_id in line.data["message"]
    assert _Catcher.got == []
    assert (await platform.metrics())["async"]["destinations_failed"] == 1


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9/x",
        "http://localhost:9/x",
        "http://10.1.2.3/x",
        "http://0.0.0.0:9/",
    ],
)
async def test_metadata_private_and_loopback_webhooks_are_refused(target):
    from core.triggers.webhooks import WebhookRefused, resolve_checked

    with pytest.raises(WebhookRefused):
        await resolve_checked(target, allow_private=False)


async def test_destinations_when_allowed_carry_no_platform_credential(data_dir, catcher):
    config = load_config(flags={"storage.data_dir": str(data_dir), "async.webhook_allow_private": True})
    p = LocalPlatform(config, install_examples=False)
    try:
        url = f"http://127.0.0.1:{catcher.server_port}/hook?x=1"
        await p.create_function(spec("sink", OK, **{"async": {"max_retries": 0}}))
        await p.create_function(
            spec("src", FAILS, **{"async": {"max_retries": 0, "on_failure": url, "on_success": "sink"}})
        )
        accepted = await p.invoke_async("src", {"order": 7})
        assert await asyncio.to_thread(_Catcher.arrived.wait, 30)
        path, headers, body = _Catcher.got[0]
        assert path == "/hook?x=1" and "Authorization" not in headers and "authorization" not in headers
        assert body["requestContext"]["requestId"] == accepted.invocation_id
        assert body["requestContext"]["condition"] == "RetriesExhausted"
        assert body["requestPayload"] == {"order": 7}
        assert body["responsePayload"]["errorType"] == "HandlerError"
        # on_success to a function: it is queued as the target's own asynchronous invocation.
        await p.update_function("src", {"code": OK, "async": {"max_retries": 0, "on_success": "sink"}})
        stream = p.events({"invocation.finished"})
        await p.invoke_async("src", {"order": 8})
        done = await next_event(stream, "invocation.finished", lambda d: d["function_name"] == "sink")
        assert done.data["trigger"] == "async" and done.data["result"]["event"]["requestPayload"] == {"order": 8}
    finally:
        await p.close()


async def test_graceful_close_leaves_queued_work_for_the_next_owner(data_dir):
    config = load_config(flags={"storage.data_dir": str(data_dir)})
    p = LocalPlatform(config, install_examples=False, consume_async=False)
    await p.create_function(spec("later", OK))
    ids = [(await p.invoke_async("later", i)).invocation_id for i in range(5)]
    assert (await p.metrics())["async"]["depth"] == 5
    await p.close()
    p = LocalPlatform(config, install_examples=False)
    try:
        await p.start()
        views = [await p.invocation_status(i, wait=60) for i in ids]
        assert [(v.status, v.record.result["event"]) for v in views] == [("success", i) for i in range(5)]
    finally:
        await p.close()


async def test_a_full_queue_refuses_with_a_clear_error(data_dir):
    from core.errors import QueueFull

    config = load_config(flags={"storage.data_dir": str(data_dir), "async.max_queued": 2})
    p = LocalPlatform(config, install_examples=False, consume_async=False)
    try:
        await p.create_function(spec("ok", OK))
        await p.invoke_async("ok", 1)
        await p.invoke_async("ok", 2)
        with pytest.raises(QueueFull) as info:
            await p.invoke_async("ok", 3)
        assert "async.max_queued" in info.value.message and info.value.http_status == 429
        assert (await p.metrics())["async"]["depth"] == 2
    finally:
        await p.close()


async def test_a_loop_of_destinations_stops(platform):
    # ping's success queues pong, whose success queues ping...: the chain ends at its depth bound.
    await platform.create_function(spec("ping", OK, **{"async": {"on_success": "pong"}}))
    await platform.create_function(spec("pong", OK, **{"async": {"on_success": "ping"}}))
    stream = platform.events({"log"})
    await platform.invoke_async("ping", 0)
    line = await next_event(stream, "log", lambda d: "not reached" in d.get("message", ""))
    assert "chain of destinations" in line.data["message"]
    assert len(await platform.list_invocations(trigger="async")) == 4  # ping, pong, ping, pong


async def test_async_settings_round_trip_through_a_function_folder(platform, tmp_path):
    from core.bundle import export_bundle, load_bundle

    fn = await platform.create_function(spec("folder", OK, **{"async": {"max_retries": 1, "on_failure": "sink"}}))
    export_bundle(fn, tmp_path / "f")
    assert "max_retries: 1" in (tmp_path / "f" / "function.yaml").read_text()
    bundle = load_bundle(tmp_path / "f")
    assert (bundle.spec.async_.max_retries, bundle.spec.async_.on_failure) == (1, "sink")
