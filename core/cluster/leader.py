"""Exactly one gateway evaluates alert rules and runs schedules at a time: a lease in a NATS KV
bucket whose entries expire after LEASE_TTL seconds. The holder renews it every RENEW_EVERY
seconds with a compare-and-set on its own revision; when it dies, the entry expires and the next
gateway to try creates it. A holder that fails to renew (NATS unreachable, or someone else holds
the key) stops leading at once, before its lease could have passed to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

log = logging.getLogger("cloudfn.cluster")
BUCKET = "cloudfn-leader"
KEY = "leader"
LEASE_TTL = 5.0  # seconds
RENEW_EVERY = 1.0  # seconds; also how often a follower tries to take an expired lease


class Lease:
    def __init__(self, node: str, on_won: Callable[[], Awaitable[None]], on_lost: Callable[[], Awaitable[None]]):
        self.node = node
        self.on_won = on_won
        self.on_lost = on_lost
        self.leader = False
        self.holder: str | None = None
        self._rev = 0
        self._kv: KeyValue | None = None

    async def run(self, js: JetStreamContext) -> None:
        self._kv = await js.create_key_value(bucket=BUCKET, ttl=LEASE_TTL, history=1)
        try:
            while True:
                await self._step()
                await asyncio.sleep(RENEW_EVERY)  # the lease's own rhythm, not a wait for an event
        finally:
            if self.leader:
                self.leader = False
                with contextlib.suppress(Exception):  # handing over at once rather than at expiry
                    await self._kv.delete(KEY, last=self._rev)
                await self.on_lost()

    async def _step(self) -> None:
        assert self._kv is not None
        try:
            if self.leader:
                self._rev = await self._kv.update(KEY, self.node.encode(), last=self._rev)
            else:
                self._rev = await self._kv.create(KEY, self.node.encode())
                self.leader, self.holder = True, self.node
                log.info("this gateway (%s) now leads the cluster: alerts and schedules run here", self.node)
                await self.on_won()
            self.holder = self.node
        except asyncio.CancelledError:
            raise
        except Exception:  # held by another, or NATS unreachable: not (or no longer) the leader
            if self.leader:
                self.leader = False
                log.warning("this gateway (%s) lost the cluster lease; alerts and schedules stop here", self.node)
                await self.on_lost()
            with contextlib.suppress(Exception):
                entry = await self._kv.get(KEY)
                self.holder = entry.value.decode() if entry.value else None
