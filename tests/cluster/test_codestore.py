"""A worker reads function versions from the code store with requests that have timeouts
(core/cluster/codestore.py), never through a consumer that can wait for good: against a real
nats-server, every size round-trips, a missing object is named, and nothing is left subscribed."""

from __future__ import annotations

import os

import pytest
from nats.js.errors import ObjectNotFoundError

from core.cluster import codestore
from core.cluster.natsclient import Client


@pytest.mark.parametrize("size", [0, 10, 128 * 1024, 128 * 1024 + 1, 600_000])  # one chunk is 128 KiB
async def test_an_object_of_any_size_reads_back_exactly(nats_server, size):
    nc = Client()
    await nc.connect(nats_server.url, token=nats_server.token)
    try:
        js = nc.jetstream()
        obs = await js.create_object_store("codestore-test")
        blob = os.urandom(size)
        await obs.put(f"v{size}", blob)
        await obs.put("other", b"x" * 1000)  # chunks of another object in the same stream
        assert await codestore.fetch(js, obs, "codestore-test", f"v{size}") == blob
        info = await js.stream_info("OBJ_codestore-test")
        assert info.state.consumer_count == 0  # no consumer made, none left behind to wait
        with pytest.raises(ObjectNotFoundError):
            await codestore.fetch(js, obs, "codestore-test", "never-stored")
    finally:
        await nc.close()


async def test_a_version_stored_again_while_it_is_read_still_reads(nats_server):
    """A put of a name that exists purges the old chunks: a reader that got the old meta finds
    its chunks gone, and reads the meta again (nats-py's own get waited for them for good)."""
    nc = Client()
    await nc.connect(nats_server.url, token=nats_server.token)
    try:
        js = nc.jetstream()
        obs = await js.create_object_store("codestore-race")
        blob = os.urandom(5000)
        await obs.put("v", blob)

        class StoredAgainMidRead:
            """The JetStream context, but the same version is put again just before the first
            chunk is read: between the reader's meta and its chunks, deterministically."""

            replaced = 0

            async def get_msg(self, *args, **kwargs):
                if not self.replaced:
                    self.replaced += 1
                    await obs.put("v", blob)
                return await js.get_msg(*args, **kwargs)

        racing = StoredAgainMidRead()
        assert await codestore.fetch(racing, obs, "codestore-race", "v") == blob
        assert racing.replaced == 1
    finally:
        await nc.close()
