"""Asynchronous invocation, retries and dead letters: the same assertions for LocalPlatform and
for RemotePlatform over a real `cloudfn serve`. Waiting is `invocation_status(id, wait=...)`,
which returns when the invocation settles (an event inside the platform, not a poll)."""

from __future__ import annotations

import pytest

from core.errors import InvalidInput, NotFound
from core.models import AsyncInvocation, DeadLetter

# Fails until the third attempt; the attempt number and the invocation id come from the context.
FLAKY = (
    "def handler(event, context):\n"
    "    if int(context['attempt']) < 3:\n"
    "        raise RuntimeError('not yet, attempt ' + context['attempt'])\n"
    "    return {'attempt': context['attempt'], 'id': context['request_id'], 'type': context['invocation_type'],\n"
    "            'event': event}\n"
)
ALWAYS_FAILS = "def handler(event, context):\n    raise ValueError('broken ' + context['attempt'])\n"
FIXED = "def handler(event, context):\n    return {'fixed': True, 'attempt': context.get('attempt'), 'event': event}\n"
FAST = {"retry_backoff": 0.02}


def spec(name: str, code: str, **kw) -> dict:
    return {"name": name, "runtime": "python", "code": code, **kw}


async def settle(platform, invocation_id: str) -> AsyncInvocation:
    view = await platform.invocation_status(invocation_id, wait=60)
    assert view.status in ("success", "dead"), view
    return view


@pytest.mark.executes
async def test_fails_twice_then_succeeds_with_the_attempt_in_the_context(platform, name):
    await platform.create_function(spec(name, FLAKY, **{"async": FAST}))
    accepted = await platform.invoke_async(name, {"n": 1}, {"user": "ada"})
    assert accepted.status == "queued" and accepted.function_name == name
    view = await settle(platform, accepted.invocation_id)
    assert view.status == "success" and view.asynchronous and view.attempts == 3
    assert [e.error for e in view.errors] == ["RuntimeError: not yet, attempt 1", "RuntimeError: not yet, attempt 2"]
    assert view.record.result == {"attempt": "3", "id": accepted.invocation_id, "type": "Event", "event": {"n": 1}}
    records = await platform.list_invocations(function=name)
    assert [r.id for r in records] == [accepted.invocation_id] * 3  # one id across the attempts
    assert [(r.trigger, r.status) for r in records] == [("retry", "success"), ("retry", "failed"), ("async", "failed")]
    assert len(await platform.list_invocations(function=name, trigger="retry")) == 2
    assert [r.status for r in await platform.list_invocations(function=name, trigger="async")] == ["failed"]
    assert await platform.list_invocations(function=name, trigger="manual") == []
    snap = await platform.metrics()
    assert snap["async"]["retries"] >= 2 and "depth" in snap["async"] and "oldest_age" in snap["async"]
    assert "cloudfn_async_queue_depth" in await platform.prometheus_metrics()


@pytest.mark.executes
async def test_exhausted_retries_make_a_dead_letter_that_replays_once_fixed(platform, name):
    fn = await platform.create_function(spec(name, ALWAYS_FAILS, **{"async": {**FAST, "max_retries": 1}}))
    accepted = await platform.invoke_async(name, {"order": 42})
    view = await settle(platform, accepted.invocation_id)
    assert view.status == "dead" and view.attempts == 2
    dead = await platform.list_dead_letters(name)
    assert len(dead) == 1 and isinstance(dead[0], DeadLetter)
    d = dead[0]
    assert (d.id, d.function_id, d.event, d.attempts) == (accepted.invocation_id, fn.id, {"order": 42}, 2)
    assert [(e.attempt, e.error_type, e.error) for e in d.errors] == [
        (1, "HandlerError", "ValueError: broken 1"),
        (2, "HandlerError", "ValueError: broken 2"),
    ]
    assert "retries exhausted" in d.reason and d.dead_at >= d.enqueued_at
    assert d.id in {x.id for x in await platform.list_dead_letters()}

    await platform.update_function(name, {"code": FIXED})
    replayed = await platform.replay_dead_letter(d.id[:13])  # a unique start of the id is enough
    assert (replayed.invocation_id, replayed.status) == (d.id, "queued")
    view = await settle(platform, d.id)
    assert view.status == "success" and view.record.result == {"fixed": True, "attempt": "1", "event": {"order": 42}}
    assert await platform.list_dead_letters(name) == []
    with pytest.raises(NotFound):
        await platform.replay_dead_letter(d.id)


@pytest.mark.executes
async def test_delete_a_dead_letter(platform, name):
    await platform.create_function(spec(name, ALWAYS_FAILS, **{"async": {"max_retries": 0}}))
    accepted = await platform.invoke_async(name, None)
    assert (await settle(platform, accepted.invocation_id)).attempts == 1
    gone = await platform.delete_dead_letter(accepted.invocation_id)
    assert gone.id == accepted.invocation_id and gone.errors[0].error == "ValueError: broken 1"
    assert await platform.list_dead_letters(name) == []
    for call in (
        platform.delete_dead_letter(accepted.invocation_id),
        platform.replay_dead_letter("no-such-letter"),
        platform.replay_dead_letter("%"),
        platform.delete_dead_letter("_"),
    ):  # no LIKE wildcards
        with pytest.raises(NotFound):
            await call


@pytest.mark.executes
async def test_status_of_a_synchronous_invocation_and_of_none(platform, name):
    await platform.create_function(spec(name, FIXED))
    res = await platform.invoke(name, {"a": 1})
    view = await platform.invocation_status(res.invocation_id)
    assert (view.status, view.asynchronous, view.record.id) == ("success", False, res.invocation_id)
    assert (await platform.get_invocation(res.invocation_id)).trigger == "manual"
    with pytest.raises(NotFound):
        await platform.invocation_status("no-such-invocation")
    with pytest.raises(InvalidInput) as info:
        await platform.invocation_status(res.invocation_id, wait=100)
    assert {e.field for e in info.value.errors} == {"wait"}


async def test_bad_async_settings_are_named_and_nothing_is_stored(platform, name):
    bad = {"max_retries": 9, "max_event_age": 0, "retry_backoff": -1, "on_failure": "ftp://x", "colour": 1}
    with pytest.raises(InvalidInput) as info:
        await platform.create_function(spec(name, FIXED, **{"async": bad}))
    fields = {e.field for e in info.value.errors}
    assert {"async.max_retries", "async.max_event_age", "async.retry_backoff", "async.on_failure"} <= fields
    assert "async.colour" in fields or "async" in fields
    with pytest.raises(NotFound):
        await platform.get_function(name)
    fn = await platform.create_function(spec(name, FIXED, **{"async": {"max_retries": 5, "on_success": "other"}}))
    assert (fn.async_.max_retries, fn.async_.on_success, fn.async_.max_event_age) == (5, "other", 21600)
    with pytest.raises(InvalidInput) as info:
        await platform.update_function(name, {"async": {"max_retries": -1}})
    assert {e.field for e in info.value.errors} == {"async.max_retries"}
    up = await platform.update_function(name, {"async": {"max_retries": 0}})
    assert (up.async_.max_retries, up.async_.on_success, up.version) == (0, None, 2)  # replaced as a whole
    assert (await platform.get_function(name)).async_.max_retries == 0


async def test_async_invoke_refuses_what_a_sync_one_refuses(platform, name):
    with pytest.raises(NotFound):
        await platform.invoke_async(name + "-missing", {})
    await platform.create_function(spec(name, FIXED))
    with pytest.raises(InvalidInput):
        await platform.invoke_async(name, {}, {"n": 1})
    with pytest.raises(InvalidInput) as info:
        await platform.invoke_async(name, "x" * 300_000)
    assert {e.field for e in info.value.errors} == {"event"}
    with pytest.raises(InvalidInput):
        await platform.list_invocations(trigger="carrier-pigeon")
    with pytest.raises(NotFound):
        await platform.list_dead_letters(name + "-missing")
