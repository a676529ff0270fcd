"""The dead letters of the JetStream async queue (core/triggers/jsqueue.py).

`CLOUDFN_ASYNC_DEAD` is a limits stream with one message per subject,
`cloudfn.async.dead.<function id>.<invocation id>`: a dead letter with its event and reason, for
list, replay and delete from any gateway. Stream sequence is age order, so `trim` deletes the
oldest first. Every method here is a coroutine run on the queue's own loop (its `_call`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

import nats.errors
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from core.triggers.queue import DeadItem, QueuedInvocation

DEAD_STREAM = "CLOUDFN_ASYNC_DEAD"
DEAD_SUBJECT = "cloudfn.async.dead"
DEAD_STREAM_CONFIG = api.StreamConfig(
    name=DEAD_STREAM,
    subjects=[f"{DEAD_SUBJECT}.*.*"],
    retention=api.RetentionPolicy.LIMITS,
    storage=api.StorageType.FILE,
    max_msgs_per_subject=1,
)
PREFIX_MATCHES = 5  # dead letters find() lists for an id prefix

_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def is_id(text: str) -> bool:
    """An id as cloudfn makes them. Anything else never reaches a KV key or a subject, where `*`
    or `>` would be wildcards matching other invocations (nats-py's KV get happens to answer
    nothing for them; subjects built here, such as the dead-letter lookup, would match)."""
    return _ID.fullmatch(text) is not None


async def scan(
    js: JetStreamContext, stream: str, subject: str, limit: int | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """The stream's messages on `subject` (wildcards allowed) with their sequences, oldest first."""
    out: list[tuple[int, dict[str, Any]]] = []
    seq = 1
    while limit is None or len(out) < limit:
        try:
            raw = await js.get_msg(stream, seq=seq, subject=subject, next=True)
        except NotFoundError:
            break
        seq = int(raw.seq or 0)
        out.append((seq, json.loads(raw.data or b"{}")))
        seq += 1
    return out


def dead_item(doc: dict[str, Any]) -> DeadItem:
    return DeadItem(QueuedInvocation.from_doc(doc), doc.get("reason", ""), doc.get("dead_at", 0.0))


class DeadLetters:
    """The dead-letter stream of one queue; `js` answers its JetStream context once connected."""

    def __init__(self, js: Callable[[], JetStreamContext | None]) -> None:
        self._js_of = js

    @property
    def _js(self) -> JetStreamContext:
        js = self._js_of()
        assert js is not None  # the queue's _call runs nothing before it is connected
        return js

    async def put(self, item: QueuedInvocation, reason: str, dead_at: float) -> None:
        body = json.dumps({**item.to_doc(), "reason": reason, "dead_at": dead_at}, ensure_ascii=False)
        await self._js.publish(f"{DEAD_SUBJECT}.{item.function_id}.{item.id}", body.encode(), stream=DEAD_STREAM)

    async def count(self) -> int:
        return int((await self._js.stream_info(DEAD_STREAM)).state.messages)

    async def listed(self, function_id: str | None, limit: int) -> list[DeadItem]:
        found = await scan(self._js, DEAD_STREAM, f"{DEAD_SUBJECT}.{function_id or '*'}.*")
        return [dead_item(d) for _, d in reversed(found)][:limit]

    async def _one(self, invocation_id: str) -> tuple[int, dict[str, Any]] | None:
        if not is_id(invocation_id):
            return None
        found = await scan(self._js, DEAD_STREAM, f"{DEAD_SUBJECT}.*.{invocation_id}", limit=1)
        return found[0] if found else None

    async def find(self, id_or_prefix: str, exact: bool) -> list[DeadItem]:
        hit = await self._one(id_or_prefix)
        if hit is not None or exact:
            return [dead_item(hit[1])] if hit else []
        if not is_id(id_or_prefix):
            return []
        found = await scan(self._js, DEAD_STREAM, f"{DEAD_SUBJECT}.*.*")
        return [dead_item(d) for _, d in found if str(d.get("id", "")).startswith(id_or_prefix)][:PREFIX_MATCHES]

    async def _remove(self, seq: int) -> bool:
        try:
            return bool(await self._js.delete_msg(DEAD_STREAM, seq))
        except (NotFoundError, nats.errors.Error):
            return False  # another gateway replayed or deleted it first

    async def take(self, invocation_id: str) -> dict[str, Any] | None:
        """The dead letter's document, removed from the stream; None when there is none (or another
        gateway took it first), so only one gateway replays it."""
        hit = await self._one(invocation_id)
        if hit is None or not await self._remove(hit[0]):
            return None
        return hit[1]

    async def delete(self, invocation_id: str) -> DeadItem | None:
        doc = await self.take(invocation_id)
        return None if doc is None else dead_item(doc)

    async def trim(self, keep: int) -> list[str]:
        """The oldest deleted until `keep` remain; answers the ids this gateway deleted."""
        count = await self.count()
        if count <= keep:
            return []
        dropped = []
        for seq, doc in await scan(self._js, DEAD_STREAM, f"{DEAD_SUBJECT}.*.*", limit=count - keep):
            with contextlib.suppress(NotFoundError, nats.errors.Error):  # another gateway trimmed it
                await self._js.delete_msg(DEAD_STREAM, seq)
                dropped.append(str(doc.get("id")))
        return dropped
