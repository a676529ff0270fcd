"""The alert engine: rule validation, pending → firing → resolved through real failing
invocations, a real webhook receiver, and a hanging webhook that delays nothing."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core.errors import Conflict, InvalidInput, NotFound


class Receiver:
    """A real local HTTP server that records POSTed JSON bodies; `hang` makes it never answer."""

    def __init__(self, hang: bool = False):
        self.bodies: queue.Queue = queue.Queue()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.bodies.put(body)
                if hang:
                    outer.release.wait(30)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    async def next_body(self) -> dict:
        return await asyncio.to_thread(self.bodies.get, True, 10)

    def close(self):
        self.release.set()
        self.server.shutdown()


FUNCTIONS = (  # as tests/observability/conftest.py's platform has them
    ("echo", "def handler(event, context):\n    return event\n", 30),
    ("fail", "def handler(event, context):\n    raise RuntimeError('boom')\n", 30),
    ("nap", "import time\n\ndef handler(event, context):\n    time.sleep(event.get('s', 0))\n    return 'slept'\n", 1),
    (
        "chatty",
        "def handler(event, context):\n    print('INFO starting')\n    print('ERROR it hurts')\n    return 1\n",
        30,
    ),
)


@pytest.fixture(params=["embedded", "postgresql"])
async def platform(request, make_platform):
    """The observability conftest's platform, with its alert rules and history on either store."""
    settings = {"storage.url": request.getfixturevalue("pg_url")} if request.param == "postgresql" else {}
    p = make_platform(**settings)
    for name, code, timeout in FUNCTIONS:
        await p.create_function({"name": name, "runtime": "python", "code": code, "timeout": timeout})
    yield p
    await p.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


async def test_the_seeds_two_rules_ship_enabled(platform):
    rules = {r.name: r for r in await platform.list_alert_rules()}
    assert (
        rules["high_error_rate"].metric,
        rules["high_error_rate"].comparison,
        rules["high_error_rate"].threshold,
    ) == ("success_rate", "<", 90)
    assert (rules["slow_execution"].metric, rules["slow_execution"].threshold) == ("duration_avg", 5000)
    assert all(r.enabled for r in rules.values())


async def test_an_invalid_rule_names_every_bad_field(platform):
    with pytest.raises(InvalidInput) as exc:
        await platform.create_alert_rule(
            {
                "name": "Bad Name",
                "metric": "vibes",
                "threshold": "high",
                "scope": "planet:earth",
                "window": 0,
                "comparison": "!=",
                "colour": 1,
            }
        )
    assert {e.field for e in exc.value.errors} == {
        "name",
        "metric",
        "threshold",
        "scope",
        "window",
        "comparison",
        "colour",
    }
    await platform.create_alert_rule({"name": "dup", "metric": "failures", "threshold": 1})
    with pytest.raises(Conflict):
        await platform.create_alert_rule({"name": "dup", "metric": "failures", "threshold": 1})
    with pytest.raises(InvalidInput, match="threshold"):
        await platform.update_alert_rule("dup", {"threshold": "x"})


async def test_pending_firing_resolved_through_real_failures_with_a_webhook(platform, receiver):
    await platform.create_alert_rule(
        {
            "name": "fail-rate",
            "metric": "error_rate",
            "comparison": ">",
            "threshold": 50,
            "scope": "function:fail",
            "window": 60,
            "for": 2,
            "severity": "critical",
            "webhook": receiver.url,
        }
    )
    events = platform.events({"alert.fired", "alert.resolved"})
    engine = platform.alert_engine
    for _ in range(3):
        assert not (await platform.invoke("fail", {})).success

    t0 = time.time()
    await platform.delete_alert_rule("high_error_rate")  # the seed's rule would fire too

    changes = engine.evaluate(now=t0)
    assert [(a.rule, a.state) for a in changes] == [("fail-rate", "pending")]
    assert engine.evaluate(now=t0 + 1) == []  # still pending: `for` is 2 s
    fired = engine.evaluate(now=t0 + 2.5)
    assert [(a.rule, a.state, a.value) for a in fired] == [("fail-rate", "firing", 100.0)]

    ev = await asyncio.wait_for(anext(events), 5)
    assert (ev.kind, ev.data["rule"], ev.data["state"]) == ("alert.fired", "fail-rate", "firing")
    body = await receiver.next_body()
    assert body["status"] == "firing" and body["alerts"][0]["labels"]["alertname"] == "fail-rate"
    assert body["alerts"][0]["labels"]["severity"] == "critical"

    # Once the failures leave the window, the alert resolves.
    resolved = engine.evaluate(now=t0 + 70)
    assert [(a.rule, a.state) for a in resolved] == [("fail-rate", "resolved")]
    ev = await asyncio.wait_for(anext(events), 5)
    assert ev.kind == "alert.resolved"
    assert (await receiver.next_body())["status"] == "resolved"

    states = {a.rule: a.state for a in await platform.alerts()}
    assert states["fail-rate"] == "resolved"
    history = [(a.rule, a.state) for a in await platform.alert_history()]
    assert history[:3] == [("fail-rate", "resolved"), ("fail-rate", "firing"), ("fail-rate", "pending")]
    logs = await platform.query_logs(text="alert fail-rate firing")
    assert logs and logs[0].level == "warning"


async def test_a_hanging_webhook_never_delays_invocations(platform):
    hung = Receiver(hang=True)
    try:
        await platform.create_alert_rule(
            {"name": "any-failure", "metric": "failures", "threshold": 0, "window": 60, "webhook": hung.url}
        )
        await platform.delete_alert_rule("high_error_rate")
        await platform.invoke("fail", {})
        fired = platform.alert_engine.evaluate()
        assert [a.state for a in fired] == ["firing"]
        await hung.next_body()  # the receiver has the request and is sitting on it
        (task,) = platform.alert_engine._tasks
        r = await platform.invoke("echo", {"still": "fast"})
        assert r.success and not task.done()  # served while the webhook still hangs
    finally:
        hung.close()


async def test_rules_change_while_running(platform):
    await platform.create_alert_rule({"name": "r1", "metric": "invocation_rate", "threshold": 100})
    updated = await platform.update_alert_rule("r1", {"threshold": 5, "enabled": False})
    assert (updated.threshold, updated.enabled, updated.metric) == (5, False, "invocation_rate")
    await platform.delete_alert_rule("r1")
    assert "r1" not in {r.name for r in await platform.list_alert_rules()}


async def test_a_rule_scoped_to_a_missing_function_is_refused_naming_the_scope(platform):
    with pytest.raises(NotFound) as exc:
        await platform.create_alert_rule(
            {"name": "ghost", "metric": "failures", "threshold": 0, "scope": "function:nope"}
        )
    assert "scope function:nope" in str(exc.value)
    assert "ghost" not in {r.name for r in await platform.list_alert_rules()}
    await platform.create_alert_rule({"name": "real", "metric": "failures", "threshold": 0, "scope": "function:fail"})
    with pytest.raises(NotFound, match="function:gone"):
        await platform.update_alert_rule("real", {"scope": "function:gone"})


async def test_summaries_name_no_rule_format_values_and_say_resolved(platform):
    await platform.delete_alert_rule("high_error_rate")
    await platform.create_alert_rule({"name": "failpy", "metric": "failures", "threshold": 0, "window": 60})
    await platform.create_alert_rule({"name": "errs", "metric": "error_rate", "threshold": 5, "window": 60})
    engine = platform.alert_engine
    await platform.invoke("fail", {})
    for _ in range(12):
        await platform.invoke("echo", {})
    t0 = time.time()
    fired = {a.rule: a.summary for a in engine.evaluate(now=t0)}
    assert fired["failpy"] == "failures 1 > 0 (all, 60s window)"
    assert fired["errs"] == "error_rate 7.7% > 5% (all, 60s window)"  # 1 of 13, not 7.69231%
    resolved = {a.rule: a.summary for a in engine.evaluate(now=t0 + 70)}
    assert resolved["failpy"] == "resolved: failures 0 ≤ 0 (all, 60s window)"


def test_values_are_formatted_for_people():
    from core.alerts import format_value

    assert format_value("success_rate", 53.846153) == "53.8%"
    assert format_value("duration_p95", 1.23456) == "1.23 ms"
    assert format_value("duration_avg", 53.8462) == "53.8 ms"
    assert format_value("duration_avg", 5012.7) == "5013 ms"
    assert format_value("failures", 3.0) == "3"
    assert format_value("invocation_rate", 0.5) == "0.50/s"
