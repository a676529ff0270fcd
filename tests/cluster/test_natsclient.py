"""core/cluster/natsclient.py overrides two private methods of nats-py's client (pinned exactly):
these check, against a real nats-server, that messages still reach it the way it assumes."""

from __future__ import annotations

import asyncio

from core.cluster.natsclient import Client


async def _client(nats_server) -> Client:
    nc = Client()
    await nc.connect(nats_server.url, token=nats_server.token)
    return nc


async def test_a_plain_message_goes_straight_to_the_direct_handler(nats_server):
    nc = await _client(nats_server)
    try:
        got: asyncio.Queue = asyncio.Queue()
        slow: asyncio.Queue = asyncio.Queue()

        async def cb(msg) -> None:
            await slow.put(msg)

        await nc.subscribe_direct("t.direct", lambda s, r, d: got.put_nowait((s, r, d)), cb)
        await nc.publish("t.direct", b"payload", reply="t.answer.7")
        subject, reply, data = await asyncio.wait_for(got.get(), 10)
        assert (subject, reply, data) == (b"t.direct", b"t.answer.7", b"payload")
        assert slow.empty()  # not also through nats-py's subscription queue
        assert nc.stats["in_msgs"] >= 1
    finally:
        await nc.close()


async def test_a_message_with_headers_goes_to_the_callback(nats_server):
    nc = await _client(nats_server)
    try:
        direct: list = []
        slow: asyncio.Queue = asyncio.Queue()

        async def cb(msg) -> None:
            await slow.put(msg)

        await nc.subscribe_direct("t.headers", lambda *a: direct.append(a), cb)
        await nc.publish("t.headers", b"x", headers={"Status": "503"})
        msg = await asyncio.wait_for(slow.get(), 10)
        assert msg.data == b"x" and msg.headers == {"Status": "503"}
        assert direct == []
    finally:
        await nc.close()


async def test_unsubscribing_forgets_the_direct_handler(nats_server):
    nc = await _client(nats_server)
    try:
        seen: list = []

        async def cb(msg) -> None:
            seen.append(msg)

        sub = await nc.subscribe_direct("t.gone", lambda *a: seen.append(a), cb)
        await sub.unsubscribe()
        assert sub._id not in nc._direct
        await nc.publish("t.gone", b"late")
        await nc.flush()  # a round trip: the server has routed (or dropped) it by now
        assert seen == []
    finally:
        await nc.close()
