"""Schedules run by the platform that owns the data directory: intervals that never overlap
themselves, catch-up after downtime, durable last runs, and the owners that must not run them.
Every wait is on the event bus, with a deadline; nothing sleeps."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from core.errors import StoreCorrupt
from core.local import LocalPlatform
from core.models import Schedule
from core.triggers.schedules import STATE_FILE, next_after, next_run

SLOW = "import time\ndef handler(event, context):\n    time.sleep(2)\n    return context.get('scheduled_time')\n"
QUICK = "def handler(event, context):\n    return {'event': event, 'time': context.get('scheduled_time')}\n"


async def _collect(stream, until, deadline: float) -> list:
    seen = []
    end = time.monotonic() + deadline
    while not until(seen):
        left = end - time.monotonic()
        assert left > 0, f"deadline passed; saw {[(e.kind, e.data.get('reason')) for e in seen]}"
        seen.append(await asyncio.wait_for(anext(stream), left))
    return seen


async def test_every_second_with_two_second_runs_never_overlaps(config):
    p = LocalPlatform(config, install_examples=False)
    stream = p.events({"schedule.fired", "schedule.skipped", "invocation.started", "invocation.finished"})
    try:
        await p.create_function(
            {"name": "slow", "runtime": "python", "code": SLOW, "timeout": 10, "schedules": [{"every": "1s"}]}
        )
        t0 = time.monotonic()

        def two_runs_done(seen):
            return sum(1 for e in seen if e.kind == "invocation.finished") >= 2

        seen = await _collect(stream, two_runs_done, deadline=15)
        fired = [e for e in seen if e.kind == "schedule.fired"]
        skipped = [e for e in seen if e.kind == "schedule.skipped"]
        # Due every second: the ticks during a run were skipped, not stacked.
        assert len(fired) >= 2 and skipped and all("still running" in e.data["reason"] for e in skipped)
        in_flight = peak = 0
        for e in seen:
            if e.kind == "invocation.started":
                in_flight += 1
                peak = max(peak, in_flight)
            elif e.kind == "invocation.finished":
                in_flight -= 1
                assert e.data["trigger"] == "schedule" and e.data["status"] == "success"
        assert peak == 1
        # The first ran one second after creation, due ticks every second: at least two were due
        # (fired or skipped) within the first three seconds of the schedule.
        first_three = [e for e in fired + skipped if e.time.timestamp() <= fired[0].time.timestamp() + 2.05]
        assert len(first_three) >= 2 and time.monotonic() - t0 < 15
        assert all(e.data["delay_ms"] < 100 for e in fired)
    finally:
        await stream.aclose()
        await p.close()


async def test_overlap_queue_runs_each_due_tick_in_turn(config):
    p = LocalPlatform(config, install_examples=False)
    stream = p.events({"schedule.fired", "invocation.started", "invocation.finished"})
    try:
        await p.create_function(
            {
                "name": "queued",
                "runtime": "python",
                "code": SLOW,
                "timeout": 10,
                "schedules": [{"every": "1s", "overlap": "queue"}],
            }
        )
        seen = await _collect(stream, lambda s: sum(e.kind == "invocation.finished" for e in s) >= 2, deadline=15)
        assert sum(e.kind == "schedule.fired" for e in seen) >= 3  # the tick during the first run was queued
        in_flight = peak = 0
        for e in seen:
            in_flight += {"invocation.started": 1, "invocation.finished": -1}.get(e.kind, 0)
            peak = max(peak, in_flight)
        assert peak == 1  # queued, never concurrent
    finally:
        await stream.aclose()
        await p.close()


def _set_last_run(data_dir, fn_id: str, key: str, when: float) -> None:
    path = data_dir / STATE_FILE
    state = json.loads(path.read_text()) if path.exists() else {"version": 1, "last_runs": {}}
    state["last_runs"].setdefault(fn_id, {})[key] = when
    path.write_text(json.dumps(state))


@pytest.mark.parametrize("catch_up", [True, False])
async def test_runs_missed_while_down_run_once_or_are_skipped(config, data_dir, catch_up):
    p = LocalPlatform(config, install_examples=False, run_schedules=False)
    sched = {"cron": "0 3 * * *", "event": {"nightly": True}, "catch_up": catch_up}
    fn = await p.create_function({"name": "nightly", "runtime": "python", "code": QUICK, "schedules": [sched]})
    await p.close()
    # The platform was down for three days: three 03:00 runs were missed.
    _set_last_run(data_dir, fn.id, Schedule(**sched).key, time.time() - 3 * 86400 - 60)
    p = LocalPlatform(config, install_examples=False)
    stream = p.events({"schedule.fired", "schedule.skipped", "invocation.finished"})
    try:
        if catch_up:
            seen = await _collect(stream, lambda s: any(e.kind == "invocation.finished" for e in s), deadline=20)
            fired = [e for e in seen if e.kind == "schedule.fired"]
            assert len(fired) == 1 and fired[0].data["catch_up"] is True
            done = next(e for e in seen if e.kind == "invocation.finished")
            assert done.data["trigger"] == "schedule" and done.data["result"]["event"] == {"nightly": True}
        else:
            seen = await _collect(stream, lambda s: bool(s), deadline=20)
            assert seen[0].kind == "schedule.skipped" and "catch_up is off" in seen[0].data["reason"]
        t = await p.function_triggers("nightly")
        assert t.schedules[0].next_run.timestamp() > time.time()
    finally:
        await stream.aclose()
        await p.close()
    runs = await _history(config)
    assert len(runs) == (1 if catch_up else 0)


async def _history(config):
    p = LocalPlatform(config, install_examples=False, run_schedules=False)
    try:
        return await p.list_invocations(function="nightly")
    finally:
        await p.close()


async def test_last_runs_are_durable_and_a_pass_through_owner_runs_none(config, data_dir):
    p = LocalPlatform(config, install_examples=False)
    stream = p.events({"invocation.finished"})
    try:
        fn = await p.create_function(
            {"name": "tick", "runtime": "python", "code": QUICK, "schedules": [{"every": "1s"}]}
        )
        await _collect(stream, lambda s: bool(s), deadline=15)
    finally:
        await stream.aclose()
        await p.close()
    state = json.loads((data_dir / STATE_FILE).read_text())
    assert state["last_runs"][fn.id]["every 1s"] > time.time() - 60
    # A command passing through (announce=False, as `cloudfn invoke` owning the directory) does
    # not run schedules, nor catch up.
    p = LocalPlatform(config, install_examples=False, announce=False)
    try:
        await p.invoke("tick", {})
        t = await p.function_triggers("tick")
        assert t.schedules_running is False and t.schedules[0].last_run is not None
    finally:
        await p.close()


def test_a_corrupt_state_file_stops_the_start_and_is_kept(config, data_dir):
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / STATE_FILE).write_text("{not json")
    with pytest.raises(StoreCorrupt) as info:
        LocalPlatform(config, install_examples=False)
    assert STATE_FILE in info.value.message and "move it away" in info.value.message
    assert (data_dir / STATE_FILE).read_text() == "{not json"


def test_next_run_times():
    every = Schedule(every="30s")
    assert next_run(every, 1000.0, 1001.0) == 1030.0
    assert next_run(every, 1000.0, 1095.0) == 1120.0  # keeps its rhythm after a gap
    cron = Schedule(cron="*/10 * * * * *")  # six fields: seconds first
    assert next_after(cron, 1_700_000_003.0) == 1_700_000_010.0
    berlin = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    # 02:30 in Berlin is 00:30 UTC in summer (CEST) and 01:30 UTC in winter (CET).
    assert next_after(berlin, 1_685_577_600.0) == 1_685_579_400.0  # from 2023-06-01 00:00 UTC
    assert next_after(berlin, 1_704_067_200.0) == 1_704_072_600.0  # from 2024-01-01 00:00 UTC


async def test_an_attached_client_sees_the_owners_schedules_and_may_publish(config):
    """The console attached through the owner's private socket (token-less, like --no-auth, but
    the owner's own user) may make an endpoint public, and reads the owner's schedules."""
    from core.remote import attach_to_socket

    owner = LocalPlatform(config, install_examples=False, serve_socket=True)
    try:
        await owner.start()
        await owner.create_function(
            {"name": "owned", "runtime": "python", "code": QUICK, "schedules": [{"cron": "@hourly"}]}
        )
        attached = attach_to_socket(config.data_dir)
        try:
            fn = await attached.update_function("owned", {"http": {"public": True}})
            assert fn.http.public
            t = await attached.function_triggers("owned")
            assert t.schedules_running and t.schedules[0].next_run is not None and t.public
        finally:
            await attached.close()
    finally:
        await owner.close()


async def test_a_console_attached_to_a_serve_by_its_socket_sees_the_tcp_endpoint_url(tmp_path, shared_cache):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent / "server"))
    from serverproc import start_server

    from core.remote import attach_to_socket

    server = start_server(tmp_path / "srv", "--mode", "release", cache=shared_cache)
    try:
        with server.client() as c:
            assert (
                c.post("/api/v1/functions", json={"name": "via sock", "runtime": "python", "code": QUICK}).status_code
                == 201
            )
        attached = attach_to_socket(server.data_dir)
        try:
            t = await attached.function_triggers("via sock")
            assert t.endpoint == f"{server.url}/fn/via%20sock"
        finally:
            await attached.close()
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("loop_kind", ["uvloop", "asyncio"])
def test_a_schedule_timer_never_runs_before_its_time(loop_kind):
    """A run fires at its time or after, never before: an early timer had to re-arm for the
    rest, and under load that waited a whole pass of the loop. uvloop rounds delays to whole
    milliseconds from a truncated clock, so plain call_later ran up to ~1.5 ms early."""
    from core.triggers.schedules import _timer_at

    async def fire_all() -> list[float]:
        loop = asyncio.get_running_loop()
        early: list[float] = []
        for i in range(40):
            left = 0.01 + (i % 9) * 0.00037  # delays that fall between whole milliseconds
            due = time.monotonic() + left
            fired = loop.create_future()
            _timer_at(loop, left, lambda due=due, fired=fired: fired.set_result(time.monotonic() - due))
            late = await fired
            if late < 0:
                early.append(late * 1000)
        return early

    if loop_kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        early = uvloop.run(fire_all())
    else:
        early = asyncio.run(fire_all())
    assert early == [], f"{len(early)} of 40 timers ran early, by up to {-min(early):.3f} ms"
