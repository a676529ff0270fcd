"""The asynchronous queue on NATS JetStream, for cluster mode (`cluster.nats_url`).

Every gateway of a cluster consumes the same queue, so an invocation accepted by a gateway that
dies is run by another. What lives where:

- `CLOUDFN_ASYNC`, a work-queue stream (`cloudfn.async.q.<function id>`): one message per
  accepted invocation, published with its id as `Nats-Msg-Id` (a retried publish is dropped by
  the server). One durable pull consumer shared by all gateways, explicit acks: an acked
  message is gone; one not acked within `ack_wait` (the gateway died) goes to another gateway.
  A gateway running a long function keeps its messages with in-progress acks, so `ack_wait`
  bounds how long a dead gateway's work waits, not how long a function may run. A retry is a
  `nak` with the backoff as its delay: the server holds it back, no gateway polls for it.
  `max_deliver` bounds the deliveries of an invocation that never reaches an outcome (its
  gateways keep dying): the last one becomes a dead letter instead of running.
- `cloudfn-async-state`, a KV bucket: each invocation's state, attempts and errors (without the
  event), so `invocation status` answers from any gateway, and a redelivered message carries on
  from the attempts already made. Entries expire with DONE_KEEP_SECONDS.
- `CLOUDFN_ASYNC_DEAD`, a limits stream of dead letters with their event, for list, replay and
  delete (core/triggers/jsdead.py).

Delivery is at least once, as with SQLite: a gateway killed after an attempt ran but before its
ack hands the message to another, which runs it again under the same invocation id (unless the
state already says success). The `AsyncQueue` interface is synchronous, called from the gateway's
event loop; nats-py is asynchronous, so the queue keeps its own connection on its own loop in a
thread, and each call waits for one JetStream round trip (~0.1-0.3 ms on loopback). Claims never
wait: a fetch loop on that thread pulls as many messages as the invoker has free workers and
wakes the invoker's dispatcher.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from core.config import Config
from core.errors import Unavailable
from core.triggers.jsdead import DEAD_STREAM_CONFIG, DeadLetters, is_id, scan
from core.triggers.queue import DONE_KEEP_SECONDS, DeadItem, QueuedInvocation

log = logging.getLogger("cloudfn.async")
STREAM = "CLOUDFN_ASYNC"
STATE_BUCKET = "cloudfn-async-state"
CONSUMER = "cloudfn-async-gateways"
SUBJECT = "cloudfn.async.q"
CALL_TIMEOUT = 10.0  # seconds for one JetStream operation before the caller gets Unavailable
FETCH_POLL = 5.0  # seconds a pull waits on the server for work before asking again
T = TypeVar("T")


class JetStreamQueue:
    """`AsyncQueue` on JetStream; see the module's docstring."""

    def __init__(self, config: Config, ack_wait: float = 30.0, max_deliver: int = 50) -> None:
        self.path = f"JetStream stream {STREAM} at {config['cluster.nats_url']}"
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self._config = config
        self._lock = threading.Lock()
        self._buffer: deque[tuple[QueuedInvocation, Msg | None]] = (
            deque()
        )  # None: held by the server  # fetched, not yet claimed
        self._claimed: dict[str, Msg] = {}
        self._seqs: dict[str, int] = {}  # ids listed by queued_for -> their stream sequence
        self._capacity = 0
        self._waker: Callable[[], None] | None = None
        self._depth = 0
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._kv: KeyValue | None = None
        self._psub: Any = None
        self._room: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        self._watching: dict[str, list[asyncio.Future[None]]] = {}  # ids waited on -> their waiters
        self._dead = DeadLetters(lambda: self._js)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cloudfn-jetstream-queue", daemon=True)
        self._thread.start()
        self._ready: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)

    # -- the thread's side ---------------------------------------------------------------------
    async def _connect(self) -> None:
        from core.cluster.connect import connect

        nc = await connect(self._config, "cloudfn-async-queue")
        js = nc.jetstream()
        await _ensure_stream(
            js,
            api.StreamConfig(
                name=STREAM,
                subjects=[f"{SUBJECT}.*"],
                retention=api.RetentionPolicy.WORK_QUEUE,
                storage=api.StorageType.FILE,
                duplicate_window=120.0,
            ),
        )
        await _ensure_stream(js, DEAD_STREAM_CONFIG)
        self._kv = await js.create_key_value(bucket=STATE_BUCKET, ttl=DONE_KEEP_SECONDS, history=1)
        self._psub = await js.pull_subscribe(
            f"{SUBJECT}.*",
            durable=CONSUMER,
            stream=STREAM,
            config=api.ConsumerConfig(
                ack_policy=api.AckPolicy.EXPLICIT,
                ack_wait=self.ack_wait,
                max_deliver=self.max_deliver,
                max_ack_pending=-1,
            ),
        )
        self._depth = (await js.stream_info(STREAM)).state.messages
        await nc.subscribe(
            f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.{CONSUMER}",
            queue="cloudfn-async-max-deliveries",
            cb=self._on_max_deliveries,
        )
        await nc.subscribe(f"$KV.{STATE_BUCKET}.>", cb=self._on_state)
        self._room = asyncio.Event()
        self._nc, self._js = nc, js
        self._tasks.append(asyncio.create_task(self._keep_claims()))

    async def _fetch_loop(self) -> None:
        assert self._room is not None and self._psub is not None
        while True:
            with self._lock:
                want = self._capacity - len(self._buffer) - len(self._claimed)
            if want <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                # One at a time: nats-py's fetch(n) holds a message that came on a waiting pull
                # until n arrived or the timeout passed (measured: p99 0.5-1.1 s end to end).
                # A message already waiting comes at once with the next fetch's no-wait probe.
                msgs = await self._psub.fetch(1, timeout=FETCH_POLL)
            except TimeoutError:  # nats-py's own and asyncio's (it raises both): nothing came, ask again
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS reconnecting: ask again once it answers
                log.warning("fetching asynchronous invocations from JetStream failed: %s", exc or type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), 1.0)
                continue
            for msg in msgs:
                try:
                    await self._take(msg)
                except Exception:
                    log.exception("an asynchronous invocation from JetStream could not be read; it is redelivered")
            if self._buffer and self._waker is not None:
                self._waker()

    async def _take(self, msg: Msg) -> None:
        item = QueuedInvocation.from_doc(json.loads(msg.data))
        delivered = msg.metadata.num_delivered or 1
        if delivered > 1:  # a retry or a redelivery: the state holds the attempts made so far
            state = await self._state(item.id)
            if state is not None:
                if state.get("state") in ("success", "dead"):
                    await msg.ack()  # it ended; the gateway that ended it died before its ack
                    return
                item.attempt, item.errors = state.get("attempt", 0), state.get("errors") or []
                item.not_before = state.get("not_before", item.not_before)
        if delivered >= self.max_deliver:
            item.give_up = (
                f"delivered {delivered} times without succeeding (JetStream max_deliver {self.max_deliver}): "
                "its retries, or the gateways running it, never reached an outcome"
            )
        with self._lock:
            self._buffer.append((item, msg))

    async def _on_max_deliveries(self, advisory: Msg) -> None:
        """The server gave up on a message (its last delivery went to a gateway that died too):
        it stays in the stream undelivered, so one gateway (a queue group) takes it from there
        and hands it to its invoker to be dead-lettered."""
        try:
            seq = int(json.loads(advisory.data)["stream_seq"])
            assert self._js is not None
            raw = await self._js.get_msg(STREAM, seq=seq)
        except NotFoundError:
            return  # dead-lettered or acked meanwhile
        except Exception:
            log.exception("a JetStream max-deliveries advisory could not be handled")
            return
        item = QueuedInvocation.from_doc(json.loads(raw.data or b"{}"))
        state = await self._state(item.id)
        if state is not None:
            if state.get("state") in ("success", "dead"):
                await self._delete_seq(STREAM, seq)
                return
            item.attempt, item.errors = state.get("attempt", 0), state.get("errors") or []
        item.give_up = (
            f"delivered {self.max_deliver} times without succeeding (JetStream max_deliver): "
            "the last gateway running it stopped before it ended"
        )
        self._seqs[item.id] = seq
        with self._lock:
            self._buffer.append((item, None))
        if self._waker is not None:
            self._waker()

    async def _keep_claims(self) -> None:
        """In-progress acks for the messages held here, so a function longer than ack_wait keeps
        its message; a gateway that dies stops sending them and the message moves on."""
        while True:
            await asyncio.sleep(self.ack_wait / 3)  # the ack deadline's own rhythm
            with self._lock:
                held = [m for _, m in self._buffer if m is not None] + list(self._claimed.values())
            for msg in held:
                with contextlib.suppress(Exception):
                    await msg.in_progress()
            with contextlib.suppress(Exception):
                assert self._js is not None
                self._depth = (await self._js.stream_info(STREAM)).state.messages

    async def _state(self, invocation_id: str) -> dict[str, Any] | None:
        assert self._kv is not None
        try:
            entry = await self._kv.get(invocation_id)
        except Exception:  # nats-py raises KeyNotFoundError, KeyDeletedError
            return None
        if not entry.value:
            return None
        doc: dict[str, Any] = json.loads(entry.value)
        return doc

    async def _put_state(self, item: QueuedInvocation, **extra: Any) -> None:
        assert self._kv is not None
        await self._kv.put(item.id, json.dumps({**item.to_doc(with_event=False), **extra}).encode())

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
        try:
            self._ready.result(timeout)
        except concurrent.futures.TimeoutError:
            coro.close()
            raise Unavailable(f"the asynchronous queue ({self.path}) is not connected yet; retry shortly") from None
        except Exception as exc:
            coro.close()
            detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise Unavailable(f"the asynchronous queue ({self.path}) is unavailable: {detail}") from None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Unavailable(f"the asynchronous queue ({self.path}) did not answer within {timeout:g} s") from None

    def _free(self) -> None:
        if self._room is not None:
            self._loop.call_soon_threadsafe(self._room.set)

    # -- AsyncQueue ----------------------------------------------------------------------------
    def set_waker(self, wake: Callable[[], None], capacity: int) -> None:
        """Start pulling: up to `capacity` messages held at once; `wake` (thread-safe) when some came."""
        self._waker, self._capacity = wake, capacity
        self._call(self._start_fetching())

    async def _start_fetching(self) -> None:
        self._tasks.append(asyncio.create_task(self._fetch_loop()))

    def enqueue(self, item: QueuedInvocation, msg_id: str | None = None) -> None:
        item.state = "queued"

        async def run() -> None:
            assert self._js is not None
            body = json.dumps(item.to_doc(), ensure_ascii=False).encode()
            await asyncio.gather(
                self._js.publish(
                    f"{SUBJECT}.{item.function_id}", body, stream=STREAM, headers={"Nats-Msg-Id": msg_id or item.id}
                ),
                self._put_state(item),
            )

        self._call(run())
        self._depth += 1

    def depth(self) -> int:
        return self._depth

    def claim(self, limit: int, now: float) -> list[QueuedInvocation]:
        out: list[QueuedInvocation] = []
        with self._lock:
            while self._buffer and len(out) < limit:
                item, msg = self._buffer.popleft()
                if msg is not None:
                    self._claimed[item.id] = msg
                out.append(item)
        for it in out:  # said, not waited for: claim never blocks the caller's loop
            it.state = "running"
            asyncio.run_coroutine_threadsafe(self._put_state(it), self._loop)
        return out

    def _settle(self, item: QueuedInvocation, how: Callable[[Msg], Coroutine[Any, Any, Any]]) -> Any:
        """What ends this gateway's hold on the item: `how` on its message if it holds one, else
        (an item listed by queued_for) its message is deleted from the stream."""
        with self._lock:
            msg = self._claimed.pop(item.id, None)
        seq = self._seqs.pop(item.id, None)
        self._free()
        if msg is not None:
            return how(msg)
        return self._delete_seq(STREAM, seq)

    async def _delete_seq(self, stream: str, seq: int | None) -> None:
        if seq is not None and self._js is not None:
            with contextlib.suppress(NotFoundError, nats.errors.Error):
                await self._js.delete_msg(stream, seq)

    def ack(self, item: QueuedInvocation, state: str = "success") -> None:
        item.state = state
        settle = self._settle(item, lambda m: m.ack_sync())

        async def run() -> None:
            await self._put_state(item)  # first: a redelivery after a lost ack sees it ended
            await settle

        self._call(run())
        self._depth = max(0, self._depth - 1)

    def retry_later(self, item: QueuedInvocation, not_before: float) -> None:
        item.not_before, item.state = not_before, "queued"
        settle = self._settle(item, lambda m: m.nak(delay=max(0.0, not_before - time.time())))

        async def run() -> None:
            await self._put_state(item)  # first: the redelivery reads the attempts from it
            await settle

        self._call(run())

    def dead_letter(self, item: QueuedInvocation, reason: str) -> DeadItem:
        dead = DeadItem(item, reason, time.time())
        item.state = "dead"
        settle = self._settle(item, lambda m: m.term())

        async def run() -> None:
            # The dead letter before the term: a crash between them leaves a duplicate, never a loss.
            await self._dead.put(item, reason, dead.dead_at)
            await self._put_state(item, reason=reason, dead_at=dead.dead_at)
            await settle

        self._call(run())
        self._depth = max(0, self._depth - 1)
        return dead

    def recover(self) -> int:
        return 0  # JetStream redelivers a dead owner's messages after ack_wait on its own

    def next_due(self) -> float | None:
        return None  # retries wait on the server (nak with a delay); the fetch loop wakes the invoker

    def stats(self, now: float) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            assert self._js is not None
            info = await self._js.stream_info(STREAM)
            consumer = await self._js.consumer_info(STREAM, CONSUMER)
            dead = await self._dead.count()
            oldest = None
            if info.state.messages:
                with contextlib.suppress(NotFoundError):
                    first = await self._js.get_msg(STREAM, seq=info.state.first_seq, next=True)
                    oldest = json.loads(first.data or b"{}").get("enqueued_at")
            self._depth = info.state.messages
            return {
                "depth": info.state.messages,
                "running": consumer.num_ack_pending,
                "dead_letters": dead,
                "oldest_age": None if oldest is None else max(0.0, now - oldest),
            }

        return self._call(run())

    def status(self, invocation_id: str) -> tuple[str, QueuedInvocation | DeadItem | None] | None:
        if not is_id(invocation_id):
            return None
        doc = self._call(self._state(invocation_id))
        if doc is None:
            return None
        item = QueuedInvocation.from_doc(doc)
        if item.state == "dead":
            return "dead", DeadItem(item, doc.get("reason", ""), doc.get("dead_at", 0.0))
        if item.state == "queued" and item.errors:
            return "failed", item
        return item.state, item

    def watch_settled(self, invocation_id: str) -> concurrent.futures.Future[None]:
        """Done once the invocation succeeded or became a dead letter, whichever gateway ran it;
        cancel it to stop watching."""
        return asyncio.run_coroutine_threadsafe(self._watch_settled(invocation_id), self._loop)

    async def _watch_settled(self, invocation_id: str) -> None:
        if not is_id(invocation_id):
            return  # no such invocation: nothing to wait for
        await asyncio.wrap_future(self._ready)
        done = asyncio.get_running_loop().create_future()
        self._watching.setdefault(invocation_id, []).append(done)
        try:
            # Read once the subscription below is live for it: an outcome put before is seen here.
            state = await self._state(invocation_id)
            if state is None or state.get("state") in ("success", "dead"):
                return
            await done
        finally:
            waiting = self._watching.get(invocation_id, [])
            if done in waiting:
                waiting.remove(done)
            if not waiting:
                self._watching.pop(invocation_id, None)

    async def _on_state(self, msg: Msg) -> None:
        """Every state put of the cluster (a plain subscription on the KV's subjects: no consumer
        per waiter, ~2 ms each measured); read only for the ids someone here waits on."""
        key = msg.subject.rsplit(".", 1)[-1]
        waiting = self._watching.get(key)
        if not waiting or not msg.data:
            return
        with contextlib.suppress(ValueError):
            if json.loads(msg.data).get("state") in ("success", "dead"):
                for fut in waiting:
                    if not fut.done():
                        fut.set_result(None)

    # -- dead letters (core/triggers/jsdead.py) --------------------------------------------------
    def dead_letters(self, function_id: str | None = None, limit: int = 100) -> list[DeadItem]:
        return self._call(self._dead.listed(function_id, limit))

    def find_dead(self, id_or_prefix: str, exact: bool = False) -> list[DeadItem]:
        return self._call(self._dead.find(id_or_prefix, exact))

    def take_dead(self, invocation_id: str, now: float) -> QueuedInvocation | None:
        doc = self._call(self._dead.take(invocation_id))
        if doc is None:
            return None
        item = QueuedInvocation.from_doc(doc)
        item.attempt, item.errors, item.enqueued_at, item.not_before = 0, [], now, now
        # A fresh message id: the first one may still be in the server's duplicate window.
        self.enqueue(item, msg_id=f"{item.id}.replay.{now}")
        return item

    def delete_dead(self, invocation_id: str) -> DeadItem | None:
        return self._call(self._dead.delete(invocation_id))

    def trim_dead(self, keep: int) -> list[str]:
        return self._call(self._dead.trim(keep))

    def queued_for(self, function_id: str) -> list[QueuedInvocation]:
        async def listed() -> list[tuple[int, dict[str, Any]]]:
            assert self._js is not None
            return await scan(self._js, STREAM, f"{SUBJECT}.{function_id}")

        found = self._call(listed())
        with self._lock:
            held = {i.id for i, _ in self._buffer} | set(self._claimed)
        out = []
        for seq, doc in found:
            state = self._call(self._state(doc["id"]))
            if doc["id"] in held or (state or {}).get("state") == "running":
                continue
            self._seqs[doc["id"]] = seq
            out.append(QueuedInvocation.from_doc(doc))
        return out

    def close(self) -> None:
        """Messages held here go back to the others at once rather than after ack_wait."""
        if self._closed:
            return
        self._closed = True

        async def run() -> None:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(Exception):  # first: no nak'ed message comes back to this pull
                await self._psub.unsubscribe()
            with self._lock:
                held = [m for _, m in self._buffer if m is not None] + list(self._claimed.values())
                self._buffer.clear()
                self._claimed.clear()
            for msg in held:
                with contextlib.suppress(Exception):
                    await msg.nak()
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.flush(2)  # the naks leave before the connection closes
                with contextlib.suppress(Exception):
                    await self._nc.close()  # not drain: it would wait on the cancelled pull
            # What nats-py leaves behind (its KV watchers' timers) ends with the loop.
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        if self._ready.done() and not self._ready.cancelled() and self._ready.exception() is None:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(run(), self._loop).result(CALL_TIMEOUT)
        self._ready.cancel()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)


async def _ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    """Created by the first gateway; the others find it (same config, so add is idempotent)."""
    try:
        await js.add_stream(config)
    except Exception:  # exists with another config (an older cloudfn): bring it to ours
        await js.update_stream(config)
