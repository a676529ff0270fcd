"""Schedules: cron and intervals, run by the process that owns the data directory.

Each enabled schedule of each function is one asyncio task that sleeps until its next run and
fires it through `LocalPlatform.run_invocation` (trigger "schedule"). The time of each schedule's
last run is kept in `<data_dir>/schedules.json` (written crash-safe, off the event loop), so a
restart knows what it missed: with `catch_up` one run makes up for all of them, without it they
are skipped (and said so on the event bus). A schedule never overlaps itself by default
(`overlap: skip`); `overlap: queue` lets runs wait for the one in flight, a few at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import StoreCorrupt
from core.models import Function, Schedule, ScheduleStatus, parse_every
from core.storage import atomic_write_bytes, remove_stale_temp_files

log = logging.getLogger("cloudfn.schedules")
STATE_FILE = "schedules.json"
MAX_QUEUED = 5  # runs of one schedule waiting behind the one in flight (overlap: queue)
LATE = 1.0  # seconds past its time a run counts as missed at start (not merely this moment's)


def _tz(schedule: Schedule) -> Any:
    if schedule.timezone:
        from zoneinfo import ZoneInfo

        return ZoneInfo(schedule.timezone)
    from dateutil.tz import tzlocal  # the server's zone with its DST rules (a fixed offset would drift)

    return tzlocal()


def next_after(schedule: Schedule, after: float) -> float | None:
    """The first run time strictly after `after` (epoch seconds); None for a cron expression
    that matches no date (the 30th of February)."""
    if schedule.every is not None:
        return after + parse_every(schedule.every)
    from croniter import CroniterBadDateError, croniter

    start = datetime.fromtimestamp(after, _tz(schedule))
    try:
        return float(croniter(schedule.cron, start, second_at_beginning=True).get_next(float))
    except CroniterBadDateError:
        return None


def next_run(schedule: Schedule, last: float | None, now: float) -> float | None:
    """When a schedule runs next: an interval keeps its rhythm from the last run (or starts one
    interval from now), a cron expression its own."""
    if schedule.every is not None and last is not None:
        step = parse_every(schedule.every)
        if last + step > now:
            return last + step
        return last + step * (int((now - last) // step) + 1)
    return next_after(schedule, now)


class ScheduleState:
    """{function id: {schedule key: last run (epoch seconds)}}, durable."""

    def __init__(self, path: Path):
        self.path = path
        remove_stale_temp_files(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = b""
        try:
            data = json.loads(raw) if raw.strip() else {}
            runs = data.get("last_runs", {}) if isinstance(data, dict) else None
            if not isinstance(runs, dict):
                raise ValueError("no last_runs map")
            self.runs: dict[str, dict[str, float]] = {
                fid: {k: float(v) for k, v in keys.items()} for fid, keys in runs.items()
            }
        except (ValueError, TypeError, AttributeError) as exc:
            raise StoreCorrupt(
                f"the schedule state {path} is corrupt ({exc}); it is left as it is: move it away "
                "to start afresh (schedules then forget when they last ran)"
            ) from None
        self._dirty = False
        self._writer: asyncio.Task[None] | None = None

    def last(self, fn_id: str, key: str) -> float | None:
        return self.runs.get(fn_id, {}).get(key)

    def set(self, fn_id: str, key: str, when: float) -> None:
        self.runs.setdefault(fn_id, {})[key] = when
        self._dirty = True
        if self._writer is None or self._writer.done():
            with contextlib.suppress(RuntimeError):  # no loop: flush() writes
                self._writer = asyncio.get_running_loop().create_task(self._write_soon())

    def forget(self, fn_id: str, keep: AbstractSet[str]) -> None:
        keys = self.runs.get(fn_id)
        if keys is not None and set(keys) - keep:
            for k in set(keys) - keep:
                del keys[k]
            if not keys:
                del self.runs[fn_id]
            self._dirty = True

    async def _write_soon(self) -> None:
        # One thread write at a time; writes asked for meanwhile are joined into the next.
        while self._dirty:
            self._dirty = False
            payload = self._payload()
            await asyncio.to_thread(atomic_write_bytes, self.path, payload)

    def _payload(self) -> bytes:
        return json.dumps({"version": 1, "last_runs": self.runs}, indent=1, sort_keys=True).encode()

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        self.flush()

    def flush(self) -> None:
        if self._dirty:
            self._dirty = False
            atomic_write_bytes(self.path, self._payload())


@dataclass
class _Slot:
    fn_id: str
    index: int
    schedule: Schedule
    task: asyncio.Task[None] | None = None
    next_at: float | None = None
    in_flight: int = 0  # running plus queued
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    runs: set[asyncio.Task[None]] = field(default_factory=set)


Runner = Callable[[Function, Any, dict[str, str]], Awaitable[Any]]


class Scheduler:
    def __init__(
        self,
        state_path: Path,
        functions: Callable[[], list[Function]],
        lookup: Callable[[str], Function | None],
        run: Runner,
        publish: Callable[[str, Any], Any],
        clock: Callable[[], float] = time.time,
    ):
        self.state = ScheduleState(state_path)
        self.functions = functions
        self.lookup = lookup
        self.run = run
        self.publish = publish
        self.clock = clock
        self.running = False
        self._slots: dict[tuple[str, int], _Slot] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.running = True
        self.sync()

    def sync(self) -> None:
        """Match the tasks to the functions' schedules: new ones start, changed or removed ones
        stop (a run in flight finishes), unchanged ones keep their rhythm."""
        if not self.running:
            return
        wanted: dict[tuple[str, int], Schedule] = {}
        for fn in self.functions():
            for i, sched in enumerate(fn.schedules):
                if sched.enabled:
                    wanted[(fn.id, i)] = sched
        for key, slot in list(self._slots.items()):
            if wanted.get(key) != slot.schedule:
                if slot.task is not None:
                    slot.task.cancel()
                del self._slots[key]
        for key, sched in wanted.items():
            if key not in self._slots:
                slot = _Slot(key[0], key[1], sched)
                slot.task = asyncio.get_running_loop().create_task(self._loop(slot), name=f"cloudfn-schedule-{key}")
                self._slots[key] = slot
        fns = {fn.id: fn for fn in self.functions()}
        for fid in list(self.state.runs):
            owner = fns.get(fid)
            self.state.forget(fid, {s.key for s in owner.schedules} if owner else set())

    async def pause(self) -> None:
        """Stop firing (in cluster mode another gateway leads); start() resumes. Runs in flight finish."""
        self.running = False
        tasks = [s.task for s in self._slots.values() if s.task]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._slots.clear()

    async def close(self) -> None:
        self.running = False
        tasks = [s.task for s in self._slots.values() if s.task] + [t for s in self._slots.values() for t in s.runs]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._slots.clear()
        await self.state.close()

    # -- what the API shows -------------------------------------------------------------------
    def status(self, fn: Function) -> list[ScheduleStatus]:
        now = self.clock()
        out = []
        for i, sched in enumerate(fn.schedules):
            slot = self._slots.get((fn.id, i))
            last = self.state.last(fn.id, sched.key)
            if not sched.enabled:
                nxt = None
            elif slot is not None and slot.next_at is not None:
                nxt = slot.next_at
            else:
                nxt = next_run(sched, last, now)
            out.append(
                ScheduleStatus(
                    index=i,
                    schedule=sched,
                    description=sched.describe(),
                    next_run=_dt(nxt),
                    last_run=_dt(last),
                    running=slot.in_flight if slot else 0,
                )
            )
        return out

    # -- the loop of one schedule -------------------------------------------------------------
    async def _loop(self, slot: _Slot) -> None:
        sched = slot.schedule
        now = self.clock()
        last = self.state.last(slot.fn_id, sched.key)
        if last is not None:
            due = next_after(sched, last)
            if due is not None and due < now - LATE:
                if sched.catch_up:
                    self._fire(slot, due, catch_up=True)
                else:
                    self._skipped(slot, due, "missed while the platform was down (catch_up is off)")
        at = next_run(sched, last, now)
        while at is not None:
            slot.next_at = at
            await self._fire_at(slot, at)
            at = next_after(sched, at)
            now = self.clock()
            if at is not None and at < now:  # stalled past a whole period: run on from now, once
                at = next_run(sched, at, now)
        slot.next_at = None  # a date that never comes

    async def _fire_at(self, slot: _Slot, at: float) -> None:
        """Fire at `at` from a timer callback rather than from this task's next step. A loop pass
        runs its due timers first, then the callbacks queued before them: under the endpoints'
        load a task woken by asyncio.sleep resumed behind every request the last poll read (a
        pass or two, 5 ms each), while a timer callback runs at the head of the pass."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        handle: asyncio.TimerHandle

        def due() -> None:
            nonlocal handle
            left = at - self.clock()
            if left > 0:  # the wall clock moved against the monotonic one (set back, or slewed)
                handle = _timer_at(loop, left, due)
                return
            if done.done():
                return
            try:
                self._fire(slot, at)
            except Exception as exc:  # as if raised in this task: the schedule's loop ends, logged
                done.set_exception(exc)
                return
            done.set_result(None)

        handle = _timer_at(loop, at - self.clock(), due)
        try:
            await done
        finally:
            handle.cancel()

    def _event(self, slot: _Slot, scheduled: float, **extra: Any) -> dict[str, Any]:
        fn = self.lookup(slot.fn_id)
        return {
            "function_id": slot.fn_id,
            "function_name": fn.name if fn else "",
            "index": slot.index,
            "schedule": slot.schedule.describe(),
            "scheduled_for": _iso(scheduled),
            **extra,
        }

    def _skipped(self, slot: _Slot, scheduled: float, reason: str) -> None:
        self.publish("schedule.skipped", self._event(slot, scheduled, reason=reason))
        fn = self.lookup(slot.fn_id)
        log.info(
            "schedule %s of %s skipped: %s",
            slot.schedule.describe(),
            fn.name if fn else slot.fn_id,
            reason,
            extra={"function": fn.name if fn else None},
        )

    def _fire(self, slot: _Slot, scheduled: float, catch_up: bool = False) -> None:
        fired = self.clock()
        fn = self.lookup(slot.fn_id)
        if fn is None:
            return
        sched = slot.schedule
        if slot.in_flight and (sched.overlap == "skip" or slot.in_flight > MAX_QUEUED):
            why = (
                "the previous run is still running (overlap: skip)"
                if sched.overlap == "skip"
                else f"{MAX_QUEUED} runs already wait behind the one running (overlap: queue)"
            )
            self._skipped(slot, scheduled, why)
            return
        self.state.set(slot.fn_id, sched.key, scheduled)
        self.publish(
            "schedule.fired",
            self._event(
                slot, scheduled, fired_at=_iso(fired), delay_ms=round((fired - scheduled) * 1000, 3), catch_up=catch_up
            ),
        )
        slot.in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(slot, fn, scheduled))
        slot.runs.add(task)
        task.add_done_callback(slot.runs.discard)

    async def _run(self, slot: _Slot, fn: Function, scheduled: float) -> None:
        context = {"trigger": "schedule", "schedule": slot.schedule.describe(), "scheduled_time": _iso(scheduled)}
        try:
            async with slot.lock:
                current = self.lookup(fn.id) or fn
                await self.run(current, slot.schedule.event, context)
        except asyncio.CancelledError:
            raise
        except Exception:  # a platform fault must not end the schedule
            log.exception("scheduled run of %s failed to start", fn.name)
        finally:
            slot.in_flight -= 1


def _timer_at(loop: asyncio.AbstractEventLoop, left: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
    """A timer that runs `callback` `left` seconds from now, never before. uvloop counts whole
    milliseconds from a truncated clock and rounds the delay, so a plain call_later(left) ran up
    to ~1.5 ms early; the callback then re-armed for the rest, and that waited for the next pass
    of the loop: under the endpoints' load a whole pass, ~5 ms. The delay is counted here from
    the loop's own clock (CLOCK_MONOTONIC for both loops, which time.monotonic reads) and rounded
    up to the millisecond: the timer is due at the first pass past `left`, at most ~1 ms late
    when idle."""
    now = loop.time()
    offset = time.monotonic() - now
    if not 0 <= offset < 1:  # a loop with a clock of its own: its delays are all we know
        offset = 0.0
    return loop.call_later(max(0.0, math.ceil((left + offset) * 1000) / 1000), callback)


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
