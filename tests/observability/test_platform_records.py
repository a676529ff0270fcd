"""Real invocations of every outcome: history, metrics, logs and events agree exactly."""

from __future__ import annotations

import asyncio

from core.models import InvocationRecord


async def test_every_outcome_is_recorded_and_counted_exactly(platform):
    sub = platform.bus.subscribe({"invocation.finished"})
    results = []
    for _ in range(3):
        results.append(await platform.invoke("echo", {"n": 1}))
    for _ in range(2):
        results.append(await platform.invoke("fail", {}))
    results.append(await platform.invoke("nap", {"s": 5}))  # its timeout is 1 s
    assert [r.success for r in results] == [True] * 3 + [False] * 3
    assert [r.error_type.value for r in results[3:]] == ["HandlerError", "HandlerError", "Timeout"]

    records = await platform.list_invocations(limit=100)
    assert [r.id for r in records] == [r.invocation_id for r in reversed(results)]  # newest first
    assert [r.status for r in records].count("success") == 3
    assert await platform.list_invocations(status="failed", limit=100) == [r for r in records if r.status == "failed"]
    assert [r.function_name for r in await platform.list_invocations("fail")] == ["fail", "fail"]

    snap = await platform.metrics()
    o = snap["overall"]
    assert (o["invocations"], o["successes"], o["failures"], o["timeouts"]) == (6, 3, 3, 1)
    assert o["errors_by_type"] == {"HandlerError": 2, "Timeout": 1}
    assert snap["total_executions"] == 6 and snap["success_rate"] == 50.0
    assert snap["functions"]["echo"]["invocations"] == 3
    assert snap["runtimes"]["python"]["invocations"] == 6
    assert snap["function_count"] == 4
    assert sum(snap["series"]["1s"]["count"]) == 6

    finished = [await asyncio.wait_for(sub.get(), 5) for _ in range(6)]
    assert [e.data["id"] for e in finished] == [r.invocation_id for r in results]

    one = await platform.get_invocation(results[3].invocation_id)
    assert (one.status, one.error_type, one.function_name) == ("failed", "HandlerError", "fail")
    assert "boom" in one.error


async def test_history_and_metrics_keep_sub_millisecond_durations(platform):
    """A warm invocation takes a fraction of a millisecond: rounded to whole ms (the seed's
    invoke answer), the history and the console's p50 all read 0 ms."""
    await platform.invoke("echo", {"n": 0})  # the cold one
    warm = [await platform.invoke("echo", {"n": i}) for i in range(5)]
    records = {r.id: r for r in await platform.list_invocations("echo", limit=10)}
    for res in warm:
        assert res.duration == round(res.duration_ms)  # the seed's answer: whole ms, unchanged
        assert records[res.invocation_id].duration == round(res.duration_ms, 3)
    assert any(r.duration_ms % 1 for r in warm), [r.duration_ms for r in warm]
    p50 = (await platform.metrics())["functions"]["echo"]["duration_ms"]["p50"]
    assert p50 in {round(r.duration_ms, 3) for r in warm}, p50


async def test_throttled_invocations_are_recorded_too(make_platform):
    p = make_platform(**{"runtime.max_concurrent": 1, "runtime.queue_size": 0})
    await p.create_function(
        {
            "name": "nap",
            "runtime": "python",
            "code": "import time\n\ndef handler(e, c):\n    time.sleep(1)\n    return 1\n",
        }
    )
    results = await asyncio.gather(*(p.invoke("nap", {}) for _ in range(3)))
    throttled = [r for r in results if not r.success]
    assert len(throttled) == 2 and all(r.error_type.value == "Throttled" for r in throttled)
    snap = await p.metrics()
    assert (snap["overall"]["invocations"], snap["overall"]["throttles"]) == (3, 2)
    assert len(await p.list_invocations(status="throttled")) == 2
    await p.close()


async def test_history_survives_a_restart_and_what_a_function_prints_becomes_logs(make_platform, platform):
    r = await platform.invoke("chatty", {})
    assert "ERROR it hurts" in r.logs
    logs = await platform.query_logs(invocation_id=r.invocation_id)
    assert [(x.level, x.message, x.function) for x in logs] == [
        ("info", "INFO starting", "chatty"),
        ("error", "ERROR it hurts", "chatty"),
    ]
    errors = await platform.query_logs(level="error", function="chatty")
    assert [x.message for x in errors] == ["ERROR it hurts"]
    await platform.close()

    again = make_platform()
    rec = await again.get_invocation(r.invocation_id)
    assert isinstance(rec, InvocationRecord) and rec.logs == r.logs and rec.result == 1
    # Lines from before the restart are found too.
    assert [x.message for x in await again.query_logs(function="chatty", text="hurts")] == ["ERROR it hurts"]
    await again.close()


async def test_a_huge_result_and_event_are_cut_and_flagged_in_history(platform):
    big = "x" * 200_000
    r = await platform.invoke("echo", {"blob": big})
    assert r.success and r.result == {"blob": big}  # the caller gets it whole
    rec = await platform.get_invocation(r.invocation_id)
    assert rec.event_truncated and rec.result_truncated
    assert isinstance(rec.event, str) and len(rec.event) < 70_000


async def test_function_changes_reach_the_event_stream(platform):
    seen: list[str] = []
    stream = platform.events({"function.created", "function.updated", "function.deleted"})

    async def read() -> None:
        async for ev in stream:
            seen.append(f"{ev.kind} {ev.data['name']}")
            if ev.kind == "function.deleted":
                return

    reader = asyncio.create_task(read())
    await platform.create_function({"name": "tmp", "runtime": "python", "code": "def handler(e, c):\n    return 1\n"})
    await platform.update_function("tmp", {"timeout": 3})
    await platform.delete_function("tmp")
    await asyncio.wait_for(reader, 5)
    assert seen == ["function.created tmp", "function.updated tmp", "function.deleted tmp"]


async def test_bad_queries_name_each_bad_field(platform):
    import pytest

    from core.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput) as exc:
        await platform.list_invocations(status="weird", limit=0)
    assert {e.field for e in exc.value.errors} == {"status", "limit"}
    with pytest.raises(InvalidInput, match="level"):
        await platform.query_logs(level="loud")
    with pytest.raises(NotFound, match="no invocation"):
        await platform.get_invocation("nope")


async def test_times_without_an_offset_are_local_times(platform):
    from datetime import datetime, timedelta

    r = await platform.invoke("chatty", {})
    an_hour_ago = datetime.now() - timedelta(hours=1)  # naive, as a script might pass it
    assert [x.id for x in await platform.list_invocations(since=an_hour_ago)] == [r.invocation_id]
    logs = await platform.query_logs(function="chatty", since=an_hour_ago)
    assert {"INFO starting", "ERROR it hurts"} <= {x.message for x in logs}
    assert await platform.list_invocations(until=an_hour_ago) == []
