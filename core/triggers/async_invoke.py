"""Asynchronous invocation: accept (durably queue) now, run soon, retry with backoff, dead-letter.

`AsyncInvoker` is owned by the LocalPlatform that owns the data directory (only that process
runs consumers), or, in cluster mode, by each gateway, all consuming one JetStream queue
(core/triggers/jsqueue.py). It reads and writes the queue only through `AsyncQueue`
(core/triggers/queue.py), so the logic here is the same for both backends. Every attempt goes through
`LocalPlatform.run_invocation(..., trigger="async" | "retry")`, under the same invocation id;
the context carries `attempt` ("1", "2", ...) and `invocation_type` ("Event"), so a function
can deduplicate: delivery is at least once.

Retries follow Lambda: `async.max_retries` failed attempts after the first (0..5, default 2),
exponential backoff from `async.retry_backoff` with equal jitter (half fixed, half random, so
a burst of failures does not retry in lockstep), and `async.max_event_age` bounding the whole.
A Throttled attempt is retried without spending a retry, until the event ages out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import secrets as sec
from core.errors import FieldError, InvalidInput, NotFound, QueueFull
from core.models import (
    AsyncInvocation,
    AttemptError,
    DeadLetter,
    ErrorType,
    Function,
    InvokeResult,
    Trigger,
    new_uuid,
)
from core.triggers import webhooks
from core.triggers.queue import AsyncQueue, DeadItem, QueuedInvocation

if TYPE_CHECKING:
    from core.local import LocalPlatform

log = logging.getLogger("cloudfn.async")
MAX_EVENT_BYTES = 256 * 1024  # Lambda's asynchronous payload limit
MAX_BACKOFF = 900.0  # seconds: no single wait longer than a quarter hour
MAX_DESTINATION_DEPTH = 3  # on_success/on_failure chains (A -> B -> A ...) stop here


def _ts(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


def _errors(item: QueuedInvocation, found: list[str] | None = None) -> list[AttemptError]:
    return [
        AttemptError(
            attempt=e.get("attempt", 0),
            time=_ts(e.get("time", 0.0)),
            error_type=e.get("error_type"),
            error=sec.mask_text(e.get("error", ""), found or []),
        )
        for e in item.errors
    ]


def dead_letter_model(dead: DeadItem, found: list[str] | None = None) -> DeadLetter:
    """A dead letter as users see it: `found` (core/secrets.py needles) masked in its event,
    context, reason and errors. The queue keeps the event as sent, for a replay."""
    it, found = dead.item, found or []
    return DeadLetter(
        id=it.id,
        function_id=it.function_id,
        function_name=it.function_name,
        event=sec.mask(it.event, found),
        context=sec.mask(it.context, found),
        reason=sec.mask_text(dead.reason, found),
        attempts=it.attempt,
        errors=_errors(it, found),
        enqueued_at=_ts(it.enqueued_at),
        dead_at=_ts(dead.dead_at),
    )


def _discard(_: object) -> None:
    pass


def backoff(base: float, retry: int) -> float:
    """Seconds before retry number `retry` (1, 2, ...): base * 2^(retry-1), half of it random."""
    full = min(MAX_BACKOFF, base * 2.0 ** (retry - 1))
    return full / 2 + random.uniform(0, full / 2)


class AsyncInvoker:
    def __init__(
        self,
        platform: LocalPlatform,
        queue: AsyncQueue,
        workers: int = 4,
        webhook_timeout: float = 5.0,
        webhook_allow_private: bool = False,
        max_queued: int = 100_000,
        max_dead: int = 10_000,
    ):
        self.platform = platform
        self.queue = queue
        self.workers = workers
        self.webhook_timeout = webhook_timeout
        self.webhook_allow_private = webhook_allow_private
        self.max_queued = max_queued
        self.max_dead = max_dead
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[None], QueuedInvocation] = {}
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}  # invocation id -> callers awaiting its end
        # Succeeded, but acked only once the history holds their record on disk: a crash before
        # that runs them again rather than losing the record (at least once, as seen in history).
        self._unacked: dict[str, QueuedInvocation] = {}
        self._acker: asyncio.Task[None] | None = None
        self._ack_wake: asyncio.Event | None = None
        self.counts = {
            "accepted": 0,
            "retries": 0,
            "dead_lettered": 0,
            "succeeded": 0,
            "destinations_failed": 0,
            "dead_letters_dropped": 0,
        }

    # -- accept ----------------------------------------------------------------------------
    def accept(self, fn: Function, event: Any, context: dict[str, str] | None, depth: int = 0) -> QueuedInvocation:
        """Durably queue one invocation (committed when this returns) and wake a consumer."""
        check_async_event(event)
        if self.queue.depth() >= self.max_queued:
            raise QueueFull(
                f"the asynchronous queue is full ({self.max_queued} invocations waiting, "
                "async.max_queued): retry later, or raise the limit"
            )
        now = time.time()
        item = QueuedInvocation(
            id=new_uuid(),
            function_id=fn.id,
            function_name=fn.name,
            event=event,
            context=dict(context or {}),
            enqueued_at=now,
            not_before=now,
            depth=depth,
        )
        self.queue.enqueue(item)
        self.counts["accepted"] += 1
        self.platform.bus.publish(
            "async.queued", lambda: {"invocation_id": item.id, "function_id": fn.id, "function_name": fn.name}
        )
        self._kick(later=True)
        return item

    def _kick(self, later: bool = False) -> None:
        """Wake the dispatcher. `later`: two loop turns from now, so that the server's 202
        (written at the start of the next turn, see http_protocol.py) leaves before the
        attempt starts. Woken at once, the attempt ran first and the 202 waited for it
        (measured: the invocation ended 0.8 ms after the request, the 202 arrived after 1.4)."""
        if self._wake is None:
            return
        if later:
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
                loop.call_soon(loop.call_soon, self._wake.set)
                return
        self._wake.set()

    # -- consume ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._dispatcher is not None:
            return
        recovered = self.queue.recover()
        if recovered:
            log.warning(
                "%d asynchronous invocation(s) were running when the last owner stopped; running them again "
                "(at least once: the same invocation id)",
                recovered,
            )
        self._wake = asyncio.Event()
        self._ack_wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.queue.set_waker(lambda: _discard(loop.call_soon_threadsafe(self._kick)), self.workers)
        self._dispatcher = asyncio.create_task(self._dispatch(), name="cloudfn-async-dispatch")
        self._acker = asyncio.create_task(self._ack_loop(), name="cloudfn-async-ack")

    async def _ack_loop(self) -> None:
        assert self._ack_wake is not None
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            try:
                await self._ack_flushed()
            except Exception:  # a full disk, say: unacked items rerun at the next start, never lost
                log.exception("acknowledging finished asynchronous invocations failed; retrying on the next one")

    async def _ack_flushed(self) -> None:
        """Flush the history (one fsync for every success since the last one), then ack."""
        if not self._unacked:
            return
        batch = list(self._unacked.values())
        await asyncio.to_thread(self.platform.history.flush)
        for item in batch:
            self.queue.ack(item, "success")
            self._unacked.pop(item.id, None)

    async def _dispatch(self) -> None:
        while not self._stopping:
            try:
                await self._dispatch_once()
            except Exception:  # the queue's store failed (a full disk, say): say so, try again shortly
                log.exception("the asynchronous queue could not be read; trying again in a second")
                assert self._wake is not None
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), 1.0)

    async def _dispatch_once(self) -> None:
        """Claim what is due for the free workers, then wait for a wake-up (an accept, a
        finished attempt) or for the next retry's time."""
        assert self._wake is not None
        self._wake.clear()
        for item in self.queue.claim(self.workers - len(self._running), time.time()):
            task = asyncio.create_task(self._attempt(item), name=f"cloudfn-async-{item.id}")
            self._running[task] = item
            task.add_done_callback(self._finished)
        timeout = None
        if len(self._running) < self.workers:
            due = self.queue.next_due()
            if due is not None:
                timeout = max(0.0, due - time.time())
                if timeout == 0.0:
                    return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            log.error("an asynchronous attempt failed inside cloudfn", exc_info=task.exception())
        self._kick()

    async def _attempt(self, item: QueuedInvocation) -> None:
        try:
            fn = self.platform.registry.get(item.function_id)
        except NotFound:
            fn = None
        if item.give_up:
            self._dead(item, fn, item.give_up)
            return
        if fn is None:
            self._dead(item, None, f"the function {item.function_name!r} was deleted before the event ran")
            return
        settings = fn.async_
        age = time.time() - item.enqueued_at
        if age > settings.max_event_age:
            self._dead(
                item, fn, f"aged out: waited {age:.0f} s, longer than async.max_event_age ({settings.max_event_age} s)"
            )
            return
        item.attempt += 1
        ctx = {**item.context, "attempt": str(item.attempt), "invocation_type": "Event"}
        trigger: Trigger = "async" if item.attempt == 1 else "retry"
        try:
            result = await self.platform.run_invocation(fn, item.event, ctx, trigger=trigger, invocation_id=item.id)
        except asyncio.CancelledError:
            item.attempt -= 1  # stopped by a shutdown: not an attempt; it runs at the next start
            with contextlib.suppress(Exception):
                self.queue.retry_later(item, time.time())
            raise
        except Exception as exc:  # a bug of ours: a failed attempt, never an item stuck as running
            log.exception("asynchronous attempt %s of %s failed inside cloudfn", item.attempt, fn.name)
            result = InvokeResult.failure(ErrorType.WORKER_CRASHED, f"internal error: {type(exc).__name__}: {exc}")
        if result.success:
            self._unacked[item.id] = item
            if self._ack_wake is not None:
                self._ack_wake.set()
            self._settled(item.id)
            self.counts["succeeded"] += 1
            self._destination(fn, item, result, "Success")
            return
        item.errors.append(
            {
                "attempt": item.attempt,
                "time": time.time(),
                "error_type": result.error_type.value if result.error_type else None,
                "error": sec.mask_text((result.error or "")[:2048], self.platform._secret_needles(fn)),
            }
        )
        throttled = result.error_type == ErrorType.THROTTLED
        failures = sum(1 for e in item.errors if e.get("error_type") != ErrorType.THROTTLED.value)
        if not throttled and failures > settings.max_retries:
            self._dead(
                item,
                fn,
                f"retries exhausted: {item.attempt} attempt(s) failed (async.max_retries is {settings.max_retries})",
                result,
            )
            return
        delay = backoff(settings.retry_backoff or 0.0, len(item.errors))
        due = time.time() + delay
        if due - item.enqueued_at > settings.max_event_age:
            self._dead(
                item,
                fn,
                f"aged out: the next retry would come after async.max_event_age ({settings.max_event_age} s)",
                result,
            )
            return
        self.queue.retry_later(item, due)
        self.counts["retries"] += 1
        self.platform.bus.publish(
            "async.retry_scheduled",
            lambda: {
                "invocation_id": item.id,
                "function_id": fn.id,
                "function_name": fn.name,
                "attempt": item.attempt,
                "error_type": item.errors[-1]["error_type"],
                "retry_at": datetime.fromtimestamp(due, UTC).isoformat(),
                "delay": delay,
            },
        )

    def _dead(
        self, item: QueuedInvocation, fn: Function | None, reason: str, result: InvokeResult | None = None
    ) -> None:
        dead = self.queue.dead_letter(item, reason)
        self._settled(item.id)
        self.counts["dead_lettered"] += 1
        log.warning(
            "asynchronous invocation %s of %s is a dead letter: %s",
            item.id,
            item.function_name,
            reason,
            extra={"function": item.function_name, "invocation_id": item.id},
        )
        self.platform.bus.publish("async.dead_lettered", lambda: self.dead_letter_view(dead).model_dump(mode="json"))
        self._trim_dead()
        if fn is not None:
            self._destination(
                fn, item, result, "RetriesExhausted" if "retries" in reason else "EventAgeExceeded", reason
            )

    def _trim_dead(self) -> None:
        """Past async.max_dead_letters the oldest go: a function failing forever must not fill
        the disk. Dropped ones are counted and named in an event, never silently lost."""
        dropped = self.queue.trim_dead(self.max_dead)
        if not dropped:
            return
        self.counts["dead_letters_dropped"] += len(dropped)
        log.warning(
            "%d dead letter(s) dropped, the oldest past async.max_dead_letters (%d): %s",
            len(dropped),
            self.max_dead,
            ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""),
        )
        self.platform.bus.publish(
            "async.dead_letters_dropped",
            lambda: {"invocation_ids": dropped, "count": len(dropped), "max_dead_letters": self.max_dead},
        )

    # -- destinations ----------------------------------------------------------------------
    def _destination(
        self, fn: Function, item: QueuedInvocation, result: InvokeResult | None, condition: str, reason: str = ""
    ) -> None:
        target = fn.async_.on_success if condition == "Success" else fn.async_.on_failure
        if not target:
            return
        body = {
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "requestContext": {
                "requestId": item.id,
                "functionName": fn.name,
                "condition": condition,
                "approximateInvokeCount": item.attempt,
                "reason": reason,
            },
            "requestPayload": item.event,
            "responsePayload": (
                result.result
                if result is not None and result.success
                else {
                    "errorType": result.error_type.value if result and result.error_type else None,
                    "errorMessage": result.error if result else reason,
                }
            ),
        }
        task = asyncio.create_task(self._deliver(fn, item, target, body), name=f"cloudfn-destination-{item.id}")
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _deliver(self, fn: Function, item: QueuedInvocation, target: str, body: dict[str, Any]) -> None:
        try:
            if "://" in target:
                status = await webhooks.send(target, body, self.webhook_timeout, self.webhook_allow_private)
                if status >= 300:
                    raise RuntimeError(f"it answered HTTP {status}")
                return
            if item.depth >= MAX_DESTINATION_DEPTH:
                raise RuntimeError(f"the chain of destinations is {item.depth} deep; stopping here to end a loop")
            self.accept(self.platform.registry.get(target), body, {}, depth=item.depth + 1)
        except Exception as exc:  # a destination never fails the invocation: counted and logged
            self.counts["destinations_failed"] += 1
            what = exc if isinstance(exc, (webhooks.WebhookRefused, NotFound, RuntimeError)) else repr(exc)
            log.warning(
                "destination %s of %s (invocation %s) not reached: %s",
                target[:200],
                fn.name,
                item.id,
                what,
                extra={"function": fn.name, "invocation_id": item.id},
            )

    # -- the API's view ----------------------------------------------------------------------
    def _needles(self, function_id: str) -> list[str]:
        """The secret values to mask in what is shown of a function's queued events: those it
        holds, or, once it is deleted (what it held is gone with it), every secret."""
        try:
            return self.platform._secret_needles(self.platform.registry.get(function_id))
        except NotFound:
            store = self.platform.secrets
            return sec.needles([*store.values(store.names()).values(), *self.platform._previous.values()])

    def dead_letter_view(self, dead: DeadItem) -> DeadLetter:
        return dead_letter_model(dead, self._needles(dead.item.function_id))

    def _settled(self, invocation_id: str) -> None:
        for fut in self._waiters.pop(invocation_id, ()):
            if not fut.done():
                fut.set_result(None)

    async def wait_settled(self, invocation_id: str, timeout: float) -> None:
        """Return once the invocation succeeded or became a dead letter, or after `timeout`
        seconds: callers wait on the event itself, not by polling."""
        if invocation_id in self._unacked:
            return
        found = self.queue.status(invocation_id)
        if found is None or found[0] in ("success", "dead"):
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.setdefault(invocation_id, []).append(fut)
        # A shared queue (JetStream): another gateway may run it; its state says when it ends.
        watch = getattr(self.queue, "watch_settled", None)
        remote = watch(invocation_id) if watch is not None else None
        if remote is not None:
            remote.add_done_callback(lambda _: _discard(loop.call_soon_threadsafe(self._settled, invocation_id)))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if remote is not None:
                remote.cancel()
            waiting = self._waiters.get(invocation_id)
            if waiting is not None and fut in waiting:
                waiting.remove(fut)
                if not waiting:
                    del self._waiters[invocation_id]

    def status(self, invocation_id: str) -> AsyncInvocation | None:
        done = self._unacked.get(invocation_id)
        found = ("success", done) if done is not None else self.queue.status(invocation_id)
        if found is None:
            return None
        state, what = found
        item = what.item if isinstance(what, DeadItem) else what
        if item is None:
            return None
        next_at = _ts(item.not_before) if state == "failed" else None
        return AsyncInvocation(
            invocation_id=invocation_id,
            function_id=item.function_id,
            function_name=item.function_name,
            status=state,
            attempts=item.attempt,
            errors=_errors(item, self._needles(item.function_id)),
            enqueued_at=_ts(item.enqueued_at) if item.enqueued_at else None,
            next_attempt_at=next_at,
        )

    def find_dead(self, ref: str) -> DeadItem:
        if not ref:
            raise InvalidInput("dead letter", [FieldError("id", "is required")])
        found = self.queue.find_dead(ref)
        exact = [d for d in found if d.item.id == ref]
        if exact:
            return exact[0]
        if len(found) == 1:
            return found[0]
        if found:
            raise InvalidInput(
                "dead letter",
                [FieldError("id", f"{ref!r} is the start of several dead letters' ids ; give more characters")],
            )
        raise NotFound(f"no dead letter with id {ref!r} (nor one starting with it; `cloudfn dead-letters` lists them)")

    def replay(self, ref: str) -> AsyncInvocation:
        dead = self.find_dead(ref)
        try:
            fn = self.platform.registry.get(dead.item.function_id)
        except NotFound:
            raise NotFound(
                f"the function {dead.item.function_name!r} of dead letter {dead.item.id} no longer exists; "
                "create it again (a new function has a new id) or delete the dead letter"
            ) from None
        item = self.queue.take_dead(dead.item.id, time.time())
        if item is None:
            raise NotFound(f"dead letter {dead.item.id} was replayed or deleted meanwhile")
        self.platform.bus.publish(
            "async.queued",
            lambda: {"invocation_id": item.id, "function_id": fn.id, "function_name": fn.name, "replay": True},
        )
        self._kick()
        return AsyncInvocation(
            invocation_id=item.id,
            function_id=fn.id,
            function_name=fn.name,
            status="queued",
            enqueued_at=_ts(item.enqueued_at),
        )

    def delete(self, ref: str) -> DeadLetter:
        dead = self.find_dead(ref)
        gone = self.queue.delete_dead(dead.item.id)
        if gone is None:
            raise NotFound(f"dead letter {dead.item.id} was replayed or deleted meanwhile")
        return self.dead_letter_view(gone)

    def function_deleted(self, fn: Function) -> int:
        """Its waiting events become dead letters now, saying why (running ones find out when they end)."""
        items = self.queue.queued_for(fn.id)
        for item in items:
            self._dead(item, None, f"the function {fn.name!r} was deleted while the event was queued")
        return len(items)

    def stats(self) -> dict[str, Any]:
        s = self.queue.stats(time.time())
        return {**s, **self.counts}

    # -- stop --------------------------------------------------------------------------------
    async def close(self, grace: float = 10.0) -> None:
        """Stop claiming; let attempts in flight finish for `grace` seconds, then put the rest
        back in the queue. Queued work stays for the next start."""
        self._stopping = True
        self._kick()
        if self._dispatcher is not None:
            await asyncio.gather(self._dispatcher, return_exceptions=True)
        running = list(self._running)
        if running:
            _, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._acker is not None:
            self._acker.cancel()
            await asyncio.gather(self._acker, return_exceptions=True)
        await self._ack_flushed()
        for task in list(self._side_tasks):
            task.cancel()
        await asyncio.gather(*self._side_tasks, return_exceptions=True)


def check_async_event(event: Any) -> None:
    """An asynchronous event is stored: JSON, and at most MAX_EVENT_BYTES."""
    try:
        size = len(json.dumps(event, ensure_ascii=False, allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInput("asynchronous invocation", [FieldError("event", f"is not JSON: {exc}")]) from None
    if size > MAX_EVENT_BYTES:
        raise InvalidInput(
            "asynchronous invocation",
            [
                FieldError(
                    "event",
                    f"is {size} bytes; an asynchronous event may be at most {MAX_EVENT_BYTES} bytes "
                    "(send a reference to larger data instead)",
                )
            ],
        )
