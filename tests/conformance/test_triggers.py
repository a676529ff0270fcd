"""Triggers (issue 16) through PlatformAPI, for LocalPlatform and RemotePlatform alike: the new
fields' validation, rate limits on invoke, the triggers view with next runs, and a schedule's
runs arriving on the event stream marked with their trigger."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import InvalidInput, NotFound
from core.models import ErrorType

PY_OK = "def handler(event, context):\n    return {'event': event, 'trigger': context.get('trigger')}\n"


def spec(name: str, **kw) -> dict:
    return {"name": name, "runtime": "python", "code": PY_OK, **kw}


async def test_trigger_fields_name_every_bad_field_and_store_nothing(platform, name):
    with pytest.raises(InvalidInput) as info:
        await platform.create_function(
            spec(
                name,
                http={"public": "maybe", "cors": True},
                rate_limit={"requests_per_second": 0, "burst": 0},
                schedules=[
                    {"every": "100ms"},
                    {"cron": "61 * * * *"},
                    {"cron": "* * * * *", "timezone": "Mars/Olympus"},
                    {"cron": "* * * * *", "every": "1m"},
                    {"every": "5 minutes"},
                    {"cron": "*/5 * *"},
                    {"every": "1s", "overlap": "sometimes"},
                ],
            )
        )
    errors = {e.field: e.message for e in info.value.errors}
    assert {
        "http.public",
        "http.cors",
        "rate_limit.requests_per_second",
        "rate_limit.burst",
        "schedules.0.every",
        "schedules.1.cron",
        "schedules.2.timezone",
        "schedules.3",
        "schedules.4.every",
        "schedules.5.cron",
        "schedules.6.overlap",
    } <= set(errors), errors
    assert "1s" in errors["schedules.0.every"] and "Europe/Berlin" in errors["schedules.2.timezone"]
    assert "exactly one" in errors["schedules.3"] and "5" in errors["schedules.5.cron"]
    with pytest.raises(NotFound):
        await platform.get_function(name)


async def test_trigger_fields_round_trip_and_clear(platform, name):
    fn = await platform.create_function(
        spec(
            name,
            http={"public": False},
            rate_limit={"requests_per_second": 2.5},
            schedules=[{"cron": "0 3 * * *", "timezone": "Europe/Berlin", "event": {"k": 1}, "catch_up": True}],
        )
    )
    assert fn.rate_limit.burst == 3  # default: the rate rounded up
    assert fn.schedules[0].timezone == "Europe/Berlin" and fn.schedules[0].event == {"k": 1}
    got = await platform.get_function(name)
    assert got.rate_limit == fn.rate_limit and got.schedules == fn.schedules
    fn = await platform.update_function(name, {"rate_limit": None, "schedules": []})
    assert fn.rate_limit is None and fn.schedules == [] and fn.version == 2


@pytest.mark.executes
async def test_rate_limit_throttles_invoke_and_is_recorded(platform, name):
    await platform.create_function(spec(name, rate_limit={"requests_per_second": 0.2, "burst": 2}))
    results = [await platform.invoke(name, {"i": i}) for i in range(3)]
    assert [r.success for r in results] == [True, True, False]
    throttled = results[2]
    assert throttled.error_type == ErrorType.THROTTLED and "rate limit" in throttled.error
    assert 0 < throttled.retry_after <= 5.0
    history = await platform.list_invocations(function=name, status="throttled")
    assert [r.id for r in history] == [throttled.invocation_id]
    metrics = await platform.metrics(name)
    assert metrics["functions"][name]["throttles"] == 1
    await platform.update_function(name, {"rate_limit": None})
    assert (await platform.invoke(name, {})).success


async def test_triggers_view_shows_next_runs(platform, name):
    await platform.create_function(
        spec(
            name,
            http={"public": True},
            schedules=[{"cron": "0 3 * * *", "timezone": "Asia/Tokyo"}, {"every": "1h", "enabled": False}],
            **{"async": {"max_retries": 0, "retry_backoff": 2.5}},
        )
    )
    t = await platform.function_triggers(name)
    assert t.function_name == name and t.public is True and t.rate_limit is None
    assert (t.async_settings.max_retries, t.async_settings.retry_backoff) == (0, 2.5)
    first, second = t.schedules
    assert first.next_run is not None and first.next_run.astimezone().hour is not None
    # 03:00 in Tokyo is 18:00 UTC the day before.
    assert (first.next_run.hour, first.next_run.minute, first.next_run.second) == (18, 0, 0)
    assert second.next_run is None and second.description == "every 1h"
    if t.endpoint is not None:  # served: the endpoint's URL
        assert t.endpoint.endswith(f"/fn/{name}")
    with pytest.raises(NotFound):
        await platform.function_triggers(name + "-missing")


@pytest.mark.executes
async def test_schedule_runs_arrive_as_schedule_invocations(platform, name):
    stream = platform.events({"schedule.fired", "invocation.finished"})
    first = asyncio.ensure_future(anext(stream))
    try:
        await platform.create_function(spec(name, schedules=[{"every": "1s", "event": {"from": "schedule"}}]))
        fired = finished = None
        ev = await asyncio.wait_for(first, 20)
        while fired is None or finished is None:
            if ev.data.get("function_name") == name:
                if ev.kind == "schedule.fired":
                    fired = ev
                elif ev.kind == "invocation.finished":
                    finished = ev
            if fired is None or finished is None:
                ev = await asyncio.wait_for(anext(stream), 20)
        assert fired.data["schedule"] == "every 1s" and fired.data["delay_ms"] < 1000
        assert finished.data["trigger"] == "schedule" and finished.data["status"] == "success"
        assert finished.data["result"] == {"event": {"from": "schedule"}, "trigger": "schedule"}
        t = await platform.function_triggers(name)
        assert t.schedules_running and t.schedules[0].last_run is not None
    finally:
        first.cancel()
        await platform.update_function(name, {"schedules": []})
        await stream.aclose()
