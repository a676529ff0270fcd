"""Reading a function version from the cluster's code store (a JetStream object store) with
requests that each have a timeout.

nats-py's `ObjectStore.get` reads the chunks through an ordered push consumer and waits for
them with no timeout. Under load a worker's fetch sometimes never got its chunk: the invocation
hung for good (found in a leaked test worker: two `_serve` tasks parked in `ObjectStore.get`'s
`async for`, with their consumers' heartbeat tasks still running), its gateway answered "no
answer from worker within 60 s", and the worker could not stop. Here the object's meta and each
chunk are fetched with JetStream's message-get API (next message on the chunk subject from a
sequence): a request and an answer each, within the JetStream context's timeout, and no
consumer to leak. The caller checks the content against its digest.
"""

from __future__ import annotations

from typing import Any

from nats.js.errors import NotFoundError, ObjectNotFoundError
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE, OBJ_STREAM_TEMPLATE, ObjectStore


async def fetch(js: Any, obs: ObjectStore, bucket: str, name: str, attempts: int = 3) -> bytes:
    """The object `name`'s bytes. Raises what nats-py raises: ObjectNotFoundError, a timeout.

    A put of a name that exists writes new chunks and purges the old ones; between reading
    the meta and the chunks they can be gone (a gateway storing the same version again), so
    a missing chunk reads the meta again. nats-py's get waited for such a chunk for good."""
    for _ in range(attempts - 1):
        try:
            return await _read(js, obs, bucket, name)
        except ObjectNotFoundError:
            raise  # no such version: nothing to read again
        except NotFoundError:
            continue  # its chunks went: it was stored again meanwhile
    return await _read(js, obs, bucket, name)


async def _read(js: Any, obs: ObjectStore, bucket: str, name: str) -> bytes:
    info = await obs.get_info(name)
    stream = OBJ_STREAM_TEMPLATE.format(bucket=bucket)
    subject = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=info.nuid)
    data = bytearray()
    seq = 1
    while len(data) < (info.size or 0):
        msg = await js.get_msg(stream, seq=seq, subject=subject, next=True)
        data += msg.data or b""
        seq = msg.seq + 1
    return bytes(data)
