"""Dead letters kept within `async.max_dead_letters` (the oldest dropped, counted, announced),
and secret values masked in what users see of queued events (dead letters, their errors, the
status view, the event stream) while the function still receives the event as sent. A real
LocalPlatform as root with the real sandbox; waits are on the event bus, never sleeps."""

from __future__ import annotations

import asyncio
import base64

import pytest

from core.config import load_config
from core.local import LocalPlatform

FAILS = "def handler(event, context):\n    raise ValueError('no ' + str(event))\n"
SECRET = "Held-Secret-Value-5e1f9a"
B64 = base64.b64encode(SECRET.encode()).decode()
# Fails saying whether the event carried the held value (and its base64) exactly as sent, and
# leaks the value into its error.
LEAKY = """
import base64
def handler(event, context):
    held = open("/run/secrets/api-key").read()
    same = event["token"] == held and event["b64"] == base64.b64encode(held.encode()).decode()
    raise ValueError(("received-as-sent " if same else "received-changed ") + held + " " + event["b64"])
"""


def spec(name: str, code: str, **kw) -> dict:
    return {"name": name, "runtime": "python", "code": code, **kw}


async def next_event(stream, kind: str, timeout: float = 60):
    async def find():
        async for ev in stream:
            if ev.kind == kind:
                return ev

    return await asyncio.wait_for(find(), timeout)


def leaks(text: str) -> bool:
    return SECRET in text or B64.rstrip("=") in text


@pytest.fixture
async def capped(data_dir):
    p = LocalPlatform(
        load_config(flags={"storage.data_dir": str(data_dir), "async.max_dead_letters": 3}), install_examples=False
    )
    yield p
    await p.close()


async def test_past_the_cap_the_oldest_dead_letters_are_dropped_counted_and_announced(capped):
    p = capped
    await p.create_function(spec("fails", FAILS, **{"async": {"max_retries": 0}}))
    stream = p.events({"async.dead_lettered", "async.dead_letters_dropped"})
    for i in range(5):
        await p.invoke_async("fails", {"n": i})
    order: list[str] = []
    dropped: list[str] = []
    while len(order) < 5 or len(dropped) < 2:
        ev = await _any(stream)
        if ev.kind == "async.dead_lettered":
            order.append(ev.data["id"])
        else:
            assert ev.data["max_dead_letters"] == 3 and ev.data["count"] == len(ev.data["invocation_ids"])
            dropped += ev.data["invocation_ids"]
    assert dropped == order[:2]  # the oldest, in the order they died
    kept = await p.list_dead_letters()
    assert sorted(d.id for d in kept) == sorted(order[2:])
    snap = await p.metrics()
    assert snap["async"]["dead_letters"] == 3 and snap["async"]["dead_letters_dropped"] == 2
    assert "cloudfn_async_dead_letters_dropped_total 2" in await p.prometheus_metrics()
    # A dropped one is gone for good: its status says dead (the outcome is remembered) but
    # replaying it is a clear NotFound.
    from core.errors import NotFound

    with pytest.raises(NotFound, match="no dead letter"):
        await p.replay_dead_letter(order[0])


async def _any(stream, timeout: float = 60):
    return await asyncio.wait_for(anext(aiter(stream)), timeout)


async def test_the_cap_is_a_setting_with_a_sane_default(config):
    assert config["async.max_dead_letters"] == 10_000
    from core.config import ConfigError

    with pytest.raises(ConfigError, match="max_dead_letters"):
        load_config(flags={"async.max_dead_letters": 0})


@pytest.fixture
async def platform(data_dir):
    p = LocalPlatform(load_config(flags={"storage.data_dir": str(data_dir)}), install_examples=False)
    yield p
    await p.close()


async def test_held_secrets_are_masked_in_dead_letters_not_in_what_the_function_gets(platform):
    p = platform
    await p.set_secret("api-key", SECRET)
    await p.create_function(spec("leaky", LEAKY, secrets=["api-key"], **{"async": {"max_retries": 0}}))
    stream = p.events({"async.dead_lettered"})
    event = {"token": SECRET, "b64": B64, "note": f"bearer {SECRET}"}
    accepted = await p.invoke_async("leaky", event, {"ctx": SECRET})
    seen = await next_event(stream, "async.dead_lettered")
    (dead,) = await p.list_dead_letters()
    assert dead.id == accepted.invocation_id
    # The function got the event as sent (it says so in its error)...
    assert "received-as-sent" in dead.errors[0].error
    # ...and nothing users see holds the value or its base64.
    assert dead.event == {"token": "***", "b64": "***", "note": "bearer ***"} and dead.context == {"ctx": "***"}
    shown = [
        dead.model_dump_json(),
        repr(seen.data),
        (await p.invocation_status(accepted.invocation_id)).model_dump_json(),
    ]
    for text in shown:
        assert not leaks(text), text
    assert "***" in dead.errors[0].error
    # The history record of the attempt was already masked; it stays so.
    rec = (await p.invocation_status(accepted.invocation_id)).record
    assert rec is not None and not leaks(rec.model_dump_json())

    # A replay runs the stored event, unmasked, again.
    stream = p.events({"async.dead_lettered"})
    await p.replay_dead_letter(dead.id)
    await next_event(stream, "async.dead_lettered")
    (again,) = await p.list_dead_letters()
    assert "received-as-sent" in again.errors[0].error and not leaks(again.model_dump_json())

    # Deleted, the function no longer says what it held: every secret is masked.
    await p.delete_function("leaky")
    (orphan,) = await p.list_dead_letters()
    assert orphan.event["token"] == "***" and not leaks(orphan.model_dump_json())
    removed = await p.delete_dead_letter(orphan.id)
    assert not leaks(removed.model_dump_json())
