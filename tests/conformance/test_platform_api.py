"""PlatformAPI behaviour, the same assertions for LocalPlatform and for RemotePlatform over a
real `cloudfn serve` (see conftest.py). What one returns or raises, the other must too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import Conflict, InvalidInput, NotFound
from core.models import ErrorType, Event, Function, InvokeResult

PY_HELLO = (
    "def handler(event, context):\n"
    "    print('hello from the handler')\n"
    "    return {'message': 'Hello ' + (event or {}).get('name', 'World'), 'user': context.get('user'),\n"
    "            'function_name': context.get('function_name')}\n"
)
PY_FAIL = "def handler(event, context):\n    x = 1\n    raise ValueError('boom: ' + str(event))\n"
NODE_HELLO = (
    "async function handler(event, context) {\n  return {message: 'Hello ' + event.name, runtime: 'node'};\n}\n"
)


def spec(name: str, **kw) -> dict:
    return {"name": name, "runtime": "python", "handler": "handler", "code": PY_HELLO, **kw}


def fields(exc: InvalidInput) -> set[str]:
    return {e.field for e in exc.errors}


# -- functions ----------------------------------------------------------------------------------
async def test_create_get_list(platform, name):
    fn = await platform.create_function(spec(name, environment={"A": "1"}, description="d"))
    assert isinstance(fn, Function)
    assert (fn.name, fn.runtime, fn.handler, fn.version) == (name, "python", "handler", 1)
    assert (fn.timeout, fn.memory, fn.environment, fn.network) == (30, 128, {"A": "1"}, False)
    by_id, by_name = await platform.get_function(fn.id), await platform.get_function(name)
    assert by_id == by_name == fn
    assert fn.id in {f.id for f in await platform.list_functions()}


async def test_runtime_alias_node(platform, name):
    fn = await platform.create_function({"name": name, "runtime": "node", "code": NODE_HELLO})
    assert fn.runtime == "nodejs"


async def test_create_names_every_bad_field_and_stores_nothing(platform, name):
    bad = {"name": "Bad/Name", "runtime": "cobol", "code": "x", "timeout": -1, "memory": 1, "colour": "red"}
    with pytest.raises(InvalidInput) as info:
        await platform.create_function(bad)
    assert fields(info.value) == {"name", "runtime", "timeout", "memory", "colour"}
    assert "name:" in info.value.message and "runtime:" in info.value.message
    with pytest.raises(InvalidInput) as info:
        await platform.create_function({})
    assert {"name", "runtime", "code"} <= fields(info.value)
    assert "Bad_Name" not in {f.name for f in await platform.list_functions()}


async def test_name_taken_is_a_conflict(platform, name):
    await platform.create_function(spec(name))
    with pytest.raises(Conflict):
        await platform.create_function(spec(name))
    other = await platform.create_function(spec(name + "-2"))
    with pytest.raises(Conflict):
        await platform.update_function(other.id, {"name": name})


async def test_unknown_function_is_not_found(platform, name):
    for call in (
        platform.get_function(name),
        platform.update_function(name, {"timeout": 5}),
        platform.delete_function(name),
        platform.invoke(name, {}),
        platform.function_versions(name),
        platform.rollback_function(name, 1),
    ):
        with pytest.raises(NotFound):
            await call


async def test_partial_update_bumps_version(platform, name):
    fn = await platform.create_function(spec(name, memory=256))
    up = await platform.update_function(name, {"timeout": 60})
    assert (up.id, up.version, up.timeout, up.memory, up.code) == (fn.id, 2, 60, 256, fn.code)
    # echoing read-only fields back (a GET then PUT round trip) is accepted
    up = await platform.update_function(fn.id, {**up.model_dump(mode="json"), "description": "x"})
    assert (up.version, up.description) == (3, "x")
    with pytest.raises(InvalidInput) as info:
        await platform.update_function(fn.id, {"timeout": -1, "memory": "lots", "runtime": "cobol"})
    assert fields(info.value) == {"timeout", "memory", "runtime"}
    assert (await platform.get_function(fn.id)).version == 3


async def test_delete(platform, name):
    fn = await platform.create_function(spec(name))
    gone = await platform.delete_function(name)
    assert gone.id == fn.id
    with pytest.raises(NotFound):
        await platform.get_function(fn.id)


async def test_versions_and_rollback(platform, name):
    fn = await platform.create_function(spec(name))
    await platform.update_function(name, {"code": PY_FAIL, "timeout": 10})
    versions = await platform.function_versions(name)
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].code == PY_HELLO and versions[1].code == PY_FAIL
    back = await platform.rollback_function(fn.id, 1)
    assert (back.version, back.code, back.timeout) == (3, PY_HELLO, 30)
    with pytest.raises(NotFound):
        await platform.rollback_function(name, 99)


# -- invoke -------------------------------------------------------------------------------------
@pytest.mark.executes
async def test_invoke_python(platform, name):
    fn = await platform.create_function(spec(name))
    res = await platform.invoke(name, {"name": "Ada"}, {"user": "test"})
    assert isinstance(res, InvokeResult)
    assert res.success is True, res.error
    assert res.result == {"message": "Hello Ada", "user": "test", "function_name": name}
    assert (res.error, res.error_type) == ("", None)
    assert res.duration_ms > 0 and isinstance(res.duration, int) and res.memory_used >= 0 and res.invocation_id
    assert (res.function_id, res.function_name, res.function_version) == (fn.id, name, 1)
    assert "hello from the handler" in res.logs
    again = await platform.invoke(fn.id)
    assert again.success and again.result["message"] == "Hello World"
    assert again.cold_start is False


@pytest.mark.executes
async def test_invoke_failure_keeps_the_result_shape(platform, name):
    await platform.create_function(spec(name, code=PY_FAIL))
    res = await platform.invoke(name, 7)
    assert res.success is False
    assert res.error_type == ErrorType.HANDLER_ERROR
    assert isinstance(res.error, str) and "boom: 7" in res.error
    assert res.stack and any(f.line == 3 for f in res.stack)


async def test_invoke_bad_context_is_invalid(platform, name):
    await platform.create_function(spec(name))
    with pytest.raises(InvalidInput) as info:
        await platform.invoke(name, {}, {"n": 1})
    assert fields(info.value) == {"context"}


@pytest.mark.executes
async def test_invoke_node(platform, name):
    await platform.create_function({"name": name, "runtime": "nodejs", "code": NODE_HELLO})
    res = await platform.invoke(name, {"name": "Node"})
    assert res.success, res.error
    assert res.result == {"message": "Hello Node", "runtime": "node"}


# -- history ------------------------------------------------------------------------------------
@pytest.mark.executes
async def test_invocation_history(platform, name):
    fn = await platform.create_function(spec(name))
    ok = await platform.invoke(name, {"name": "a"})
    await platform.update_function(name, {"code": PY_FAIL})
    bad = await platform.invoke(name, {"name": "b"})
    records = await platform.list_invocations(function=name)
    assert [r.id for r in records] == [bad.invocation_id, ok.invocation_id]  # newest first
    assert [r.status for r in records] == ["failed", "success"]
    assert records[1].event == {"name": "a"} and records[1].function_id == fn.id
    assert [r.id for r in await platform.list_invocations(function=fn.id, status="failed")] == [bad.invocation_id]
    assert [r.id for r in await platform.list_invocations(function=name, limit=1, offset=1)] == [ok.invocation_id]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert await platform.list_invocations(function=name, since=future) == []
    one = await platform.get_invocation(ok.invocation_id)
    assert (one.id, one.function_name, one.status, one.result) == (ok.invocation_id, name, "success", ok.result)
    with pytest.raises(NotFound):
        await platform.get_invocation("no-such-invocation")
    # A unique start of an id is enough (ids are 36-character UUIDs; tests/test_owner_socket.py
    # checks that an ambiguous one names the candidates).
    assert (await platform.get_invocation(ok.invocation_id[:13])).id == ok.invocation_id
    with pytest.raises(InvalidInput) as info:
        await platform.list_invocations(status="meh", limit=0)
    assert fields(info.value) == {"status", "limit"}
    with pytest.raises(NotFound):
        await platform.list_invocations(function=name + "-missing")


# -- saved events -------------------------------------------------------------------------------
async def test_saved_events(platform, name):
    fn = await platform.create_function(spec(name))
    saved = await platform.save_event(name, "first", {"name": "x"})
    assert (saved.function_id, saved.name, saved.event, saved.last_result) == (fn.id, "first", {"name": "x"}, None)
    await platform.save_event(fn.id, "first", {"name": "y"}, {"success": True})
    await platform.save_event(name, "second", [1, 2])
    listed = {e.name: e for e in await platform.list_saved_events(name)}
    assert set(listed) == {"first", "second"}
    assert listed["first"].event == {"name": "y"} and listed["first"].last_result == {"success": True}
    await platform.delete_saved_event(name, "first")
    assert [e.name for e in await platform.list_saved_events(fn.id)] == ["second"]
    with pytest.raises(NotFound):
        await platform.delete_saved_event(name, "first")
    with pytest.raises(NotFound):
        await platform.list_saved_events(name + "-missing")


# -- metrics and logs ---------------------------------------------------------------------------
@pytest.mark.executes
async def test_metrics(platform, name):
    await platform.create_function(spec(name))
    await platform.invoke(name, {})
    snap = await platform.metrics()
    for key in (
        "total_executions",
        "success_rate",
        "failure_rate",
        "avg_execution_time",
        "min_execution_time",
        "max_execution_time",
        "runtime_distribution",
        "errors_by_type",
        "uptime_seconds",
        "function_count",
    ):
        assert key in snap, key
    assert snap["total_executions"] >= 1 and snap["function_count"] >= 1
    mine = await platform.metrics(name)
    assert mine["scope"] == name and mine["functions"][name]["invocations"] == 1
    with pytest.raises(NotFound):
        await platform.metrics(name + "-missing")
    text = await platform.prometheus_metrics()
    assert "# TYPE" in text and "cloudfn_" in text


@pytest.mark.executes
async def test_metrics_show_how_invocations_found_a_worker(platform, name):
    await platform.create_function(spec(name))
    first = await platform.invoke(name, {})
    await platform.invoke(name, {})
    sched = (await platform.metrics(name))["scheduling"]
    assert list(sched) == [name]
    mine = sched[name]
    assert mine["workers_started"] == 1 and first.cold_start
    assert mine["queue_waits"] == 0 and mine["clones"] == 0 and mine["start_ms_avg"] > 0
    text = await platform.prometheus_metrics()
    assert f'cloudfn_workers_started_total{{function="{name}",how="caller",runtime="python"}} 1.0' in text
    assert f'cloudfn_queue_wait_seconds_count{{function="{name}",runtime="python"}} 0.0' in text
    await platform.delete_function(name)
    assert name not in (await platform.metrics())["scheduling"]


@pytest.mark.executes
async def test_query_logs(platform, name):
    await platform.create_function(spec(name))
    res = await platform.invoke(name, {})
    logs = await platform.query_logs(function=name)
    assert any(r.message == "hello from the handler" and r.invocation_id == res.invocation_id for r in logs)
    assert await platform.query_logs(function=name, text="no such text anywhere") == []
    assert all(r.invocation_id == res.invocation_id for r in await platform.query_logs(invocation_id=res.invocation_id))
    with pytest.raises(InvalidInput) as info:
        await platform.query_logs(level="loud", limit=0)
    assert fields(info.value) == {"level", "limit"}


# -- alerts -------------------------------------------------------------------------------------
async def test_alert_rules(platform, name):
    with pytest.raises(NotFound) as missing:  # a scope naming no function would never fire
        await platform.create_alert_rule(
            {"name": name, "metric": "failures", "threshold": 0, "scope": f"function:{name}"}
        )
    assert f"scope function:{name}" in str(missing.value)
    await platform.create_function(spec(name))
    rule = await platform.create_alert_rule(
        {"name": name, "metric": "error_rate", "threshold": 50, "scope": f"function:{name}", "for": 0}
    )
    assert (rule.name, rule.metric, rule.comparison, rule.threshold, rule.for_) == (name, "error_rate", ">", 50, 0)
    assert rule.id in {r.id for r in await platform.list_alert_rules()}
    up = await platform.update_alert_rule(name, {"threshold": 75, "severity": "critical"})
    assert (up.id, up.threshold, up.severity, up.metric) == (rule.id, 75, "critical", "error_rate")
    with pytest.raises(Conflict):
        await platform.create_alert_rule({"name": name, "metric": "failures", "threshold": 1})
    with pytest.raises(InvalidInput) as info:
        await platform.create_alert_rule({"name": "Bad Name", "metric": "vibes", "threshold": "high"})
    assert fields(info.value) >= {"name", "metric", "threshold"}
    states = {a.rule: a for a in await platform.alerts()}
    assert name in states and states[name].state in ("inactive", "pending", "firing", "resolved")
    assert isinstance(await platform.alert_history(10), list)
    gone = await platform.delete_alert_rule(rule.id)
    assert gone.id == rule.id
    with pytest.raises(NotFound):
        await platform.delete_alert_rule(name)


# -- the event stream ---------------------------------------------------------------------------
@pytest.mark.executes
async def test_event_stream(platform, name):
    """Subscribe, then make events until the subscription (which starts with the first read)
    sees one: waiting on the stream with a bound, never sleeping."""
    stream = platform.events({"function.created", "invocation.finished"})
    first = asyncio.ensure_future(anext(stream))
    try:
        created = []
        for i in range(50):
            created.append((await platform.create_function(spec(f"{name}-{i}"))).name)
            done, _ = await asyncio.wait({first}, timeout=0.2)
            if done:
                break
        ev = await asyncio.wait_for(first, 10)
        assert isinstance(ev, Event) and ev.kind == "function.created" and ev.data["name"] in created
        await platform.invoke(created[-1], {"name": "sse"})
        while True:
            ev = await asyncio.wait_for(anext(stream), 30)
            assert ev.kind in ("function.created", "invocation.finished")
            if ev.kind == "invocation.finished" and ev.data["function_name"] == created[-1]:
                break
        assert ev.data["status"] == "success" and ev.data["result"]["message"] == "Hello sse"
        assert ev.seq > 0
    finally:
        first.cancel()
        await stream.aclose()


async def test_event_kinds_are_validated(platform):
    with pytest.raises(InvalidInput) as info:
        await anext(platform.events({"nonsense"}))
    assert fields(info.value) == {"kinds"}


# -- about --------------------------------------------------------------------------------------
async def test_health_and_info(platform):
    health = await platform.health()
    assert health["status"] == "ok" and health["service"] == "cloudfn" and health["version"]
    info = await platform.info()
    assert info["version"] == health["version"]
    assert {"python", "nodejs", "go"} <= set(info["runtimes"])


@pytest.mark.executes
async def test_names_of_any_script_are_addresses_without_regard_to_case(platform, name):
    from core.errors import Conflict

    odd = f"函数 Ünïcode {name[-6:]}"  # CJK, a space, capitals with diacritics
    fn = await platform.create_function({"name": odd, "runtime": "python", "code": PY_HELLO})
    assert (await platform.get_function(odd.upper())).id == fn.id
    res = await platform.invoke(odd.lower(), {"name": "x"})
    assert res.success and res.function_name == odd
    assert isinstance(res.duration, int) and isinstance(res.duration_ms, float) and res.duration_ms > 0
    with pytest.raises(Conflict):
        await platform.create_function({"name": odd.casefold(), "runtime": "python", "code": PY_HELLO})
    up = await platform.update_function(odd, {"timeout": 0, "memory": 0, "code": "", "environment": None})
    assert (up.version, up.timeout, up.memory, up.code) == (2, fn.timeout, fn.memory, fn.code)
    await platform.delete_function(odd)


@pytest.mark.executes
async def test_log_lines_stream(platform, name):
    """What a function prints arrives on the event stream as a `log` event within a second of
    the invocation's answer, locally and through a server (it used to be stored but not pushed)."""
    await platform.create_function(spec(name))
    stream = platform.events({"log"})
    first = asyncio.ensure_future(anext(stream))
    try:
        # The remote subscription starts with the first read: invoke until one log event shows.
        for _ in range(50):
            res = await platform.invoke(name, {})
            done, _ = await asyncio.wait({first}, timeout=1.0)
            if done:
                break
        ev = await asyncio.wait_for(first, 1.0)
        while not (ev.data.get("function") == name and ev.data.get("message") == "hello from the handler"):
            ev = await asyncio.wait_for(anext(stream), 1.0)
        assert ev.kind == "log" and ev.data["logger"] == "cloudfn.function"
        # Once subscribed, the next invocation's line must arrive within a second.
        res = await platform.invoke(name, {"name": "again"})
        while True:
            ev = await asyncio.wait_for(anext(stream), 1.0)
            if ev.data.get("invocation_id") == res.invocation_id:
                break
        assert ev.data["message"] == "hello from the handler" and ev.data["level"] == "info"
    finally:
        first.cancel()
        await stream.aclose()
