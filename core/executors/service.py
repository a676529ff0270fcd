"""The execution service: scheduling (global and per-function limits, a bounded queue), warm
worker pools per function version, retirement on update, and the host's protections."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.config import default_max_memory
from core.errors import ConfigError, NotFound
from core.filemodes import private_dir
from core.models import ErrorType, Function, InvokeResult, new_uuid, normalize_runtime
from core.secrets import held_by

from .budget import MemoryBudget
from .demand import BurstStats, Demand, Ewma
from .prewarm import Prewarm
from .runtimes import RUNTIMES, GoRuntime, Runtime
from .sandbox import HostSandbox
from .spawn import BACKGROUND_NICE
from .worker import EVENT_LIMIT_BYTES, NotAdopted, Worker, WorkerInit

# Made once: json.dumps with an option builds a new encoder on every call.
_event_json = json.JSONEncoder(allow_nan=False).encode
MAX_IDLE_WORKERS = 64  # idle workers kept across all functions; the least recently used go first


@dataclass
class ExecutionSettings:
    work_dir: Path  # per-function working folders live under here
    cache_dir: Path  # Go build cache (binaries keyed by code + toolchain)
    max_concurrent: int = 10  # global limit on invocations running at once
    queue_size: int = 100  # how many may wait for a slot; past it -> Throttled
    queue_timeout: float = 10.0  # how long one may wait for a slot before -> Throttled
    keep_warm: float = 300.0  # idle workers are reaped after this many seconds
    sandbox: str = "auto"  # "auto" (use what the host has) | "none" (rlimits only)
    prewarm: int = 0  # pre-started sandboxes kept per runtime that supports them (prewarm.py)
    sandbox_user: str | None = None  # runtime.sandbox_user: who functions run as when we are root
    build_memory: int = 1024  # MB for one Go build
    hardening: bool = True  # uid drop and seccomp; off only to measure their cost (benchmarks)
    max_memory: int = 0  # MB: the sum of live workers' memory limits (budget.py); 0: half the host's
    # "demand": wait for a busy worker or start one, by the numbers (demand.py); "start": every caller
    # that finds no idle worker starts its own (the policy before issue 19; benchmarks only).
    scaling: str = "demand"
    prewarm_max: int | None = None  # the most pre-started sandboxes per runtime under bursts (None: prewarm)
    # fn -> its installed dependency tree (core/deps), mounted read-only into its workers
    deps_tree: Any = None


class _Throttled(Exception):
    pass


class _Limit:
    """A number of slots and a FIFO of waiters, a future each. A freed slot goes straight to the
    first waiter (so a newcomer cannot overtake the queue), and waiting needs no task or
    `wait_for` per waiter: that was a measurable part of every invoke under load."""

    __slots__ = ("size", "used", "waiters")

    def __init__(self, size: int):
        self.size = size
        self.used = 0
        self.waiters: deque[asyncio.Future[bool]] = deque()

    def free(self) -> bool:
        return self.used < self.size and not self.waiters

    def release(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(True)  # the slot changes hands: `used` stays
                return
        self.used -= 1

    async def wait(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bool:
        """Take a slot, waiting until `deadline` (loop time) at most. False: timed out."""
        if self.free():
            self.used += 1
            return True
        fut: asyncio.Future[bool] = loop.create_future()
        self.waiters.append(fut)
        timer = loop.call_at(deadline, _expire, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release()  # handed a slot just as this waiter was cancelled: pass it on
            raise
        finally:
            timer.cancel()
            if not fut.done() or fut.cancelled() or not fut.result():
                with contextlib.suppress(ValueError):
                    self.waiters.remove(fut)


# What a caller waiting for a worker of its function is handed: the worker, why none comes, or
# False (timed out).
Handoff = Worker | InvokeResult | Literal[False]


def _expire(fut: asyncio.Future[bool] | asyncio.Future[Handoff]) -> None:
    if not fut.done():
        fut.set_result(False)


class Scheduler:
    """Slots: a global limit plus an optional per-function one; waiting is bounded in number
    and in time. FIFO per limit."""

    def __init__(self, max_concurrent: int, queue_size: int, queue_timeout: float):
        self.max_concurrent = max(1, max_concurrent)
        self.queue_size = max(0, queue_size)
        self.queue_timeout = queue_timeout
        self.running = 0
        self.queued = 0
        self._global = _Limit(self.max_concurrent)
        self._per_fn: dict[str, _Limit] = {}

    def _fn_limit(self, fn: Function) -> _Limit | None:
        if not fn.max_concurrency:
            return None
        cur = self._per_fn.get(fn.id)
        if cur is None or cur.size != fn.max_concurrency:
            cur = self._per_fn[fn.id] = _Limit(fn.max_concurrency)
        return cur

    async def acquire(self, fn: Function) -> list[_Limit]:
        fn_limit = self._fn_limit(fn)
        limits = [self._global] if fn_limit is None else [fn_limit, self._global]
        if all(lim.free() for lim in limits):
            for lim in limits:  # free right now: no waiting, no queue slot used
                lim.used += 1
            self.running += 1
            return limits
        if self.queued >= self.queue_size:
            raise _Throttled(
                f"too many invocations: {self.running} running and {self.queued} waiting (queue size {self.queue_size})"
            )
        self.queued += 1
        held: list[_Limit] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.queue_timeout
        try:
            for lim in limits:
                if not await lim.wait(loop, deadline):
                    which = "the function's max_concurrency" if lim is fn_limit else "max_concurrent"
                    raise _Throttled(f"no free slot within {self.queue_timeout:g} s (limit: {which})")
                held.append(lim)
        except BaseException:
            for h in held:  # not all taken: what was goes back
                h.release()
            raise
        finally:
            self.queued -= 1
        self.running += 1
        return limits

    def release(self, limits: list[_Limit]) -> None:
        self.running -= 1
        for lim in limits:
            lim.release()


class _Pool:
    """The warm workers of one function version."""

    def __init__(self, fn: Function, runtime: Runtime):
        self.fn = fn
        self.runtime = runtime
        self.idle: deque[Worker] = deque()
        self.busy: set[Worker] = set()
        self.prepared: WorkerInit | None = None
        self.prepare_lock = asyncio.Lock()
        self.retired = False
        self.demand = Demand()  # what its invocations and starts take (demand.py)
        self.waiters: deque[asyncio.Future[Handoff]] = deque()  # callers waiting for a busy worker, FIFO
        self.fresh: dict[Worker, float] = {}  # started and not used yet -> ms its start took
        self.grow_tasks: set[asyncio.Task[None]] = set()  # background starts


class ExecutionService:
    def __init__(self, settings: ExecutionSettings):
        self.settings = settings
        self.settings.work_dir = Path(settings.work_dir)
        self.settings.cache_dir = Path(settings.cache_dir)
        # Explicit modes: under a umask of 000 these were 0777, and anyone could swap a function's code.
        private_dir(self.settings.work_dir, 0o755)
        private_dir(self.settings.cache_dir, 0o755)
        try:
            self.sandbox = HostSandbox(settings.sandbox, user=settings.sandbox_user, hardening=settings.hardening)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.runtimes_ = {
            name: cls(self.settings.work_dir, self.settings.cache_dir, self.sandbox) for name, cls in RUNTIMES.items()
        }
        for rt in self.runtimes_.values():
            rt.deps_tree = settings.deps_tree
        go = self.runtimes_.get("go")
        if isinstance(go, GoRuntime):
            go.build_limits.memory_mb = settings.build_memory
        self._scheduler: Scheduler | None = None
        self._pools: dict[tuple[str, int], _Pool] = {}
        self._newest: dict[str, int] = {}  # highest version seen per function id
        self._floor: dict[str, int] = {}  # versions below this were retired
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        self.budget = MemoryBudget(settings.max_memory or default_max_memory())
        self._memory_waiting = 0
        # (runtime, "adopt" | "fresh") -> a new version's first guess at its cold start (demand.py)
        self._cold_by_runtime: dict[tuple[str, str], Ewma] = {}
        self.burst: dict[str, BurstStats] = {}  # per function id (demand.py)
        self.prewarm = Prewarm(
            self.sandbox,
            self.runtimes_,
            self.settings.work_dir,
            settings.prewarm,
            budget=self.budget,
            maximum=settings.prewarm_max,
        )
        # Secret names -> values (the platform's SecretStore.values); None: no store.
        self.secret_values: Callable[[Iterable[str]], dict[str, str]] | None = None

    # --- scheduling ---------------------------------------------------------------------------
    @property
    def scheduler(self) -> Scheduler:
        if self._scheduler is None:  # made lazily: its semaphores belong to the running loop
            s = self.settings
            self._scheduler = Scheduler(s.max_concurrent, s.queue_size, s.queue_timeout)
        return self._scheduler

    def warm_up(self) -> None:
        """Start the pre-started sandboxes now, in the background, so that the first cold start
        finds one (long-running clients call this at start; otherwise the first invoke does)."""
        if not self._closed:
            self.prewarm.fill()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.ensure_future(self._reap_loop())

    async def _reap_loop(self) -> None:
        interval = max(0.05, min(30.0, self.settings.keep_warm / 4))
        while not self._closed:
            await asyncio.sleep(interval)
            await self._reap()

    async def reap_idle(self) -> int:
        """Stop the workers idle for longer than keep_warm now (the reaper does this on a timer)."""
        before = sum(len(p.idle) for p in self._pools.values())
        await self._reap()
        return before - sum(len(p.idle) for p in self._pools.values())

    async def _reap(self) -> None:
        now = time.monotonic()
        victims = []
        for pool in list(self._pools.values()):
            while pool.idle and now - pool.idle[0].last_used >= self.settings.keep_warm:
                victims.append(pool.idle.popleft())
        idle = [w for p in self._pools.values() for w in p.idle]
        if len(idle) > MAX_IDLE_WORKERS:
            idle.sort(key=lambda w: w.last_used)
            for w in idle[: len(idle) - MAX_IDLE_WORKERS]:
                self._pools[w.key].idle.remove(w)
                victims.append(w)
        for w in victims:
            await w.kill()
        self.prewarm.fill()  # a burst's extra sandboxes go once its demand is past

    # --- invoke -------------------------------------------------------------------------------
    async def invoke(
        self, fn: Function, event: Any, context: dict[str, str] | None = None, request_id: str | None = None
    ) -> InvokeResult:
        """`request_id`: the invocation's id when the caller has one (an asynchronous
        invocation keeps its id across attempts)."""
        request_id = request_id or new_uuid()
        t0 = time.perf_counter()
        try:
            res = await self._invoke(fn, event, context or {}, request_id)
        except Exception as exc:  # a bug of ours must not look like the platform died
            res = InvokeResult.failure(
                ErrorType.WORKER_CRASHED, f"internal error while invoking: {type(exc).__name__}: {exc}"
            )
        res.invocation_id = request_id
        res.function_id = fn.id
        res.function_name = fn.name
        res.function_version = fn.version
        if not res.duration_ms:
            res.duration_ms = (time.perf_counter() - t0) * 1000
        return res

    async def _invoke(self, fn: Function, event: Any, context: dict[str, str], request_id: str) -> InvokeResult:
        if self._closed:
            return InvokeResult.failure(ErrorType.RUNTIME_UNAVAILABLE, "the execution service is shut down")
        runtime = self.runtimes_.get(normalize_runtime(fn.runtime))
        if runtime is None:
            return InvokeResult.failure(ErrorType.RUNTIME_UNAVAILABLE, f"unknown runtime {fn.runtime!r}")
        stale = self._stale(fn)
        if stale:
            return stale
        try:
            event_json = _event_json(event)
        except (TypeError, ValueError) as exc:
            return InvokeResult.failure(ErrorType.INVALID_EVENT, f"the event is not JSON: {exc}")
        size = len(event_json)
        if size > EVENT_LIMIT_BYTES:
            return InvokeResult.failure(
                ErrorType.INVALID_EVENT, f"the event is {size} bytes; the limit is {EVENT_LIMIT_BYTES}"
            )
        if not isinstance(context, dict) or not all(isinstance(k, str) for k in context):
            return InvokeResult.failure(ErrorType.INVALID_EVENT, "the context must be a map of strings")
        ctx = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in context.items()}
        ctx.update(
            function_name=fn.name,
            function_id=fn.id,
            request_id=request_id,
            memory_limit_mb=str(fn.memory),
            function_version=str(fn.version),
        )
        self._start_reaper()
        # One deadline for all waiting: for a slot, then for memory.
        deadline = asyncio.get_running_loop().time() + self.settings.queue_timeout
        try:
            limits = await self.scheduler.acquire(fn)
        except _Throttled as exc:
            return InvokeResult.failure(ErrorType.THROTTLED, str(exc))
        try:
            stale = self._stale(fn)  # an update may have landed while this one waited
            if stale:
                return stale
            return await self._run(fn, runtime, event_json, ctx, deadline)
        finally:
            self.scheduler.release(limits)

    def _stale(self, fn: Function) -> InvokeResult | None:
        if fn.version < self._floor.get(fn.id, 0):
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE,
                f"version {fn.version} of '{fn.name}' was replaced or deleted; invoke the current version",
            )
        return None

    async def _pool(self, fn: Function, runtime: Runtime) -> _Pool:
        key = (fn.id, fn.version)
        newest = self._newest.get(fn.id, 0)
        if fn.version > newest:
            self._newest[fn.id] = fn.version
            for fid, ver in list(self._pools):
                if fid == fn.id and ver < fn.version:
                    self._retire_soon((fid, ver))
        pool = self._pools.get(key)
        if pool is None or pool.fn.code != fn.code or pool.fn.handler != fn.handler:
            if pool is not None:
                await self._retire_pool(key)
            pool = _Pool(fn, runtime)
            self._pools[key] = pool
        return pool

    async def _warm(self, pool: _Pool) -> Worker | None:
        while pool.idle:
            w = pool.idle.pop()  # the most recently used: the warmest
            if not w.dead and w.proc and w.proc.returncode is None:
                return w
            await w.kill()
        return None

    def _worker_gone(self, w: Worker) -> None:
        """A worker ended between invocations (see Worker.on_gone): out of its pool, and stopped."""
        pool = self._pools.get(w.key)
        if pool is not None:
            with contextlib.suppress(ValueError):
                pool.idle.remove(w)
        self._in_background(w.kill())

    def _in_background(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _victims(self, mb: int) -> list[Worker]:
        """Idle workers and pre-started sandboxes, oldest first, that together hold `mb`; none
        if all of them together hold less (reaping them would not make the room)."""
        idle = [w for p in self._pools.values() for w in p.idle] + self.prewarm.idle()
        idle.sort(key=lambda w: w.last_used)
        out, got = [], 0
        for w in idle:
            if got >= mb:
                break
            out.append(w)
            got += self.budget.held.get(w, 0)
        if got < mb:
            return []
        for w in out:
            pool = self._pools.get(w.key)
            if pool is not None and w in pool.idle:
                pool.idle.remove(w)
            else:
                self.prewarm.evict(w)
        return out

    async def _make_room(
        self, fn: Function, pool: _Pool, holder: object, deadline: float, reuse_idle: bool = True, reap: bool = True
    ) -> Worker | InvokeResult | None:
        """Have `holder` hold fn.memory MB of the budget: None once it does. Idle workers are
        reaped for it, oldest first; when they are not enough it waits for a worker to end or go
        idle. A worker of this same function that goes idle meanwhile is returned instead."""
        b = self.budget
        counted = False
        try:
            while True:
                warm = await self._warm(pool) if reuse_idle else None
                if warm is not None:
                    return warm
                short = fn.memory - b.held.get(holder, 0)
                if short <= 0 or b.charge(holder, short):
                    return None
                if not reap:  # a start on a guess: free memory only, and no waiting for it
                    return InvokeResult.failure(ErrorType.THROTTLED, "no free memory for a spare worker")
                victims = self._victims(short - b.free())
                if victims:
                    for v in victims:  # their room is this start's from now on (budget.py)
                        b.move(v, holder)
                    # Shielded: a caller that goes away must not leave a victim half stopped.
                    await asyncio.shield(asyncio.gather(*(v.kill() for v in victims)))
                    continue
                sch = self.scheduler
                if not counted:
                    if sch.queued + self._memory_waiting >= sch.queue_size:
                        return InvokeResult.failure(
                            ErrorType.THROTTLED,
                            f"no room for a new worker of {fn.memory} MB: runtime.max_memory ({b.limit} MB) is held "
                            f"by busy workers ({b.used} MB) and the queue is full ({sch.queue_size})",
                        )
                    self._memory_waiting += 1
                    counted = True
                if not await b.wait_change(deadline):
                    return InvokeResult.failure(
                        ErrorType.THROTTLED,
                        f"no room for a new worker of {fn.memory} MB within {self.settings.queue_timeout:g} s: "
                        f"runtime.max_memory ({b.limit} MB) is held by busy workers ({b.used} MB)",
                    )
        finally:
            if counted:
                self._memory_waiting -= 1

    async def _start_worker(
        self,
        fn: Function,
        runtime: Runtime,
        pool: _Pool,
        deadline: float,
        reuse_idle: bool = True,
        reap: bool = True,
        background: bool = False,
    ) -> tuple[Worker, bool] | InvokeResult:
        """A new worker for `pool` (in its busy set), or a warm one that came back while this
        waited for memory (then False: not a cold start), or why there is none. `background`:
        workers of the function serve meanwhile, so a fresh start runs niced until it is ready
        (measured: a burst's starts at full priority took the CPU from the warm worker and the
        server, and set the p99 of its first seconds)."""
        holder = object()  # this start's share of the budget until its worker holds it
        prepared = pool.prepared
        assert prepared is not None, "a pool's workers start once its function is prepared"
        taken = None
        worker = None
        try:
            if self.prewarm.eligible(fn, runtime.name):
                taken = self.prewarm.take(runtime.name)
                if taken is not None:
                    self.budget.move(taken, holder)  # its cgroup's room counts toward the function's
            room = await self._make_room(fn, pool, holder, deadline, reuse_idle, reap)
            if isinstance(room, Worker):
                pool.busy.add(room)
                return room, False
            if room is not None:
                return room
            failure = None
            if taken is not None:
                pool.busy.add(taken)  # from here on, a retire stops it like any other worker
                taken.on_gone = self._worker_gone
                taken.unnice()  # pre-started niced; from here a caller may wait for it
                try:
                    failure = await taken.adopt(
                        (fn.id, fn.version),
                        prepared,
                        fn.memory,
                        fn.timeout,
                        self.prewarm.files(prepared),
                        runtime.adoption(prepared),
                    )
                    worker = taken
                except NotAdopted:
                    pool.busy.discard(taken)
                    await taken.kill()
                taken = None
            if worker is None:
                worker = Worker((fn.id, fn.version), runtime.name, prepared, self.sandbox, fn.memory, fn.timeout)
                worker.budget = self.budget
                worker.on_gone = self._worker_gone
                pool.busy.add(worker)
                self.budget.move(holder, worker)
                self.budget.shrink(worker, fn.memory)
                if background:
                    worker.nice = BACKGROUND_NICE
                failure = await worker.start()
                worker.unnice()
            else:
                self.budget.move(holder, worker)  # its cgroup has the function's limit now
                self.budget.shrink(worker, fn.memory)
            if failure is None and worker.dead:
                failure = InvokeResult.failure(ErrorType.WORKER_CRASHED, "the worker was stopped while it started")
            if failure is not None:
                pool.busy.discard(worker)
                await worker.kill()  # also releases its memory (start() leaves that to here)
                if worker.retired:
                    failure = InvokeResult.failure(
                        ErrorType.WORKER_CRASHED,
                        "the function was updated or deleted while its worker started; its old code was stopped",
                    )
                return failure
            return worker, True
        except BaseException:
            if worker is not None:  # cancelled (a client gone) while it started: nothing stays
                pool.busy.discard(worker)
                self._in_background(worker.kill())
            raise
        finally:
            if taken is not None:  # not adopted (throttled, cancelled): it counts until it is gone
                self.budget.move(holder, taken)
                self._in_background(taken.kill())
            self.budget.release(holder)

    async def _run(
        self, fn: Function, runtime: Runtime, event_json: str, ctx: dict[str, str], deadline: float
    ) -> InvokeResult:
        pool = await self._pool(fn, runtime)
        worker = await self._warm(pool)
        if worker is None:
            if fn.memory > self.budget.limit:
                return InvokeResult.failure(
                    ErrorType.RUNTIME_UNAVAILABLE,
                    f"the function's memory ({fn.memory} MB) is more than runtime.max_memory ({self.budget.limit} MB),"
                    " the memory all workers together may have; lower its memory or raise runtime.max_memory",
                )
            t0 = time.perf_counter()
            async with pool.prepare_lock:
                if pool.prepared is None:
                    prepared = await runtime.prepare(fn)
                    if isinstance(prepared, InvokeResult):
                        prepared.cold_start = True
                        prepared.init_duration = (time.perf_counter() - t0) * 1000
                        return prepared
                    failure = self._give_secrets(fn, prepared)
                    if failure is not None:
                        return failure
                    pool.prepared = prepared
            found = await self._find_worker(fn, runtime, pool, deadline)
            if isinstance(found, InvokeResult):
                return found
            worker = found
        else:
            pool.busy.add(worker)
        init_ms = pool.fresh.pop(worker, None)  # its first invocation: a cold start
        wi = pool.prepared
        assert wi is not None, "a pool with a worker has its function prepared"
        demand = pool.demand
        began = time.perf_counter()
        demand.running[worker] = began
        try:
            res = await worker.invoke(event_json, ctx, float(fn.timeout))
        except Exception as exc:  # a bug of ours: the worker is in an unknown state, so it goes
            await worker.kill()
            res = InvokeResult.failure(
                ErrorType.WORKER_CRASHED, f"internal error while invoking: {type(exc).__name__}: {exc}"
            )
        except BaseException:
            self._in_background(worker.kill())
            raise
        finally:
            pool.busy.discard(worker)
            demand.running.pop(worker, None)
        demand.invoke.add((time.perf_counter() - began) * 1000)
        if pool.retired and (not worker.dead or (worker.retired and not res.success)):
            await worker.kill()
            res = InvokeResult.failure(
                ErrorType.WORKER_CRASHED,
                "the function was updated or deleted while this invocation ran; its old code was stopped",
                duration_ms=res.duration_ms,
                logs=res.logs,
            )
        elif worker.dead:
            await worker.kill()  # a timeout, crash, flood or bad frame: its cgroup and memory go now
            self._unstrand(fn, runtime, pool)
        elif worker.cpu_used + fn.timeout + 1 >= wi.spec.cpu_seconds:
            await worker.kill()  # near its lifetime CPU budget: replace it
            self._unstrand(fn, runtime, pool)
        else:
            self._offer(pool, worker)
        if init_ms is not None:
            self.prewarm.fill()  # what this cold start took is replaced now, in the background
        res.cold_start = init_ms is not None
        res.init_duration = round(init_ms, 3) if init_ms is not None else 0.0
        if init_ms is not None and wi.notes:
            res.logs = "\n".join(wi.notes) + "\n" + res.logs
        return res

    def _give_secrets(self, fn: Function, prepared: WorkerInit) -> InvokeResult | None:
        """Put the function's secrets into its workers' spec: files for all it holds, variables
        for its secret_env. Only inside the namespace sandbox: without it the runner sees host
        paths (a value would need a host file) and its variables go on `env`'s command line."""
        names = held_by(fn)
        if not names:
            return None
        if not self.sandbox.namespaces:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE,
                "this function holds secrets, which are given only inside the bwrap sandbox, and there is none here "
                f"({self.sandbox.bwrap_problem or 'runtime.sandbox is none'}); `cloudfn info` lists the protections",
            )
        try:
            if self.secret_values is None:
                raise NotFound("no secret store")
            values = self.secret_values(names)
        except NotFound as exc:
            return InvokeResult.failure(
                ErrorType.RUNTIME_UNAVAILABLE,
                f"{exc.message.split(' (')[0]}, which this function holds: set it (cloudfn secrets set NAME) or "
                "remove it from the function's secrets and secret_env",
            )
        prepared.spec.secret_files = {n: values[n].encode() for n in names}
        prepared.spec.env.update({k: values[n] for k, n in (fn.secret_env or {}).items()})
        return None

    async def replace_workers(self, function_id: str) -> None:
        """Stop every worker of the function (busy ones too) without retiring its version: the
        next invocation starts a fresh one, which reads its secrets anew."""
        for key in [k for k in self._pools if k[0] == function_id]:
            await self._retire_pool(key)

    # --- wait or start (demand.py) ------------------------------------------------------------
    def _stats(self, fn: Function, runtime: Runtime) -> BurstStats:
        st = self.burst.get(fn.id)
        if st is None:
            st = self.burst[fn.id] = BurstStats(fn.name, runtime.name)
        st.name = fn.name  # renamed: reported under the new name
        return st

    def _next_start(self, pool: _Pool, runtime: Runtime) -> tuple[str, float]:
        """The kind of the next start and what it is expected to take: an adoption while the
        pre-started sandboxes outnumber the adoptions under way, else a fresh start."""
        kind = "fresh"
        if self.prewarm.eligible(pool.fn, runtime.name):
            pending = sum(1 for s in pool.demand.starts.values() if s[3] == "adopt")
            if self.prewarm.count().get(runtime.name, 0) > pending:
                kind = "adopt"
        rt = self._cold_by_runtime.get((runtime.name, kind))
        return kind, pool.demand.cold_ms(kind, rt.value if rt is not None else None)

    def _cold_guess(self, pool: _Pool, runtime: Runtime) -> float:
        return self._next_start(pool, runtime)[1]

    async def _find_worker(self, fn: Function, runtime: Runtime, pool: _Pool, deadline: float) -> Worker | InvokeResult:
        """No worker is idle: wait for a busy one when it is expected to free up sooner than a
        new one starts; else start one (in the background if some run already, so this caller
        takes whichever is free first)."""
        demand = pool.demand
        if self.settings.scaling == "start":
            return await self._start_inline(fn, runtime, pool, deadline)
        cold_ms = self._cold_guess(pool, runtime)
        wait = demand.expected_wait(len(pool.waiters), cold_ms)
        if wait is not None and wait <= cold_ms:
            return await self._wait_for_worker(fn, runtime, pool, deadline)
        if not demand.running:
            return await self._start_inline(fn, runtime, pool, deadline)
        if len(demand.starts) <= len(pool.waiters):  # one start per waiting caller at most: the limits hold
            self._grow(fn, runtime, pool)
        return await self._wait_for_worker(fn, runtime, pool, deadline)

    async def _wait_for_worker(
        self, fn: Function, runtime: Runtime, pool: _Pool, deadline: float
    ) -> Worker | InvokeResult:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Handoff] = loop.create_future()
        t0 = time.perf_counter()
        demand = pool.demand
        if demand.queued_since is None:
            demand.queued_since = t0
        pool.waiters.append(fut)
        demand.peak = max(demand.peak, len(demand.running) + len(pool.waiters))
        timer = loop.call_at(deadline, _expire, fut)
        try:
            got = await fut
        except asyncio.CancelledError:
            handed = fut.result() if fut.done() and not fut.cancelled() else None
            if isinstance(handed, Worker):
                self._offer(pool, handed)  # handed one just as this caller went away: pass it on
            raise
        finally:
            timer.cancel()
            if not fut.done() or fut.cancelled() or not isinstance(fut.result(), Worker):
                with contextlib.suppress(ValueError):
                    pool.waiters.remove(fut)
        waited = (time.perf_counter() - t0) * 1000
        self._stats(fn, runtime).waited(waited)
        if got is False:
            demand = pool.demand
            return InvokeResult.failure(
                ErrorType.THROTTLED,
                f"no worker of '{fn.name}' came free within {self.settings.queue_timeout:g} s "
                f"({len(demand.running)} busy, {len(demand.starts)} starting)",
            )
        if isinstance(got, InvokeResult):
            return got
        demand = pool.demand
        demand.debt += waited
        now = time.perf_counter()
        if (
            demand.queued_since is not None
            and pool.waiters
            and not pool.retired
            and (now - demand.queued_since) * 1000 >= self._cold_guess(pool, runtime)
            and len(demand.starts) < len(pool.waiters)
        ):
            demand.queued_since = now  # a queue that outlasts a start: one more worker
            self._grow(fn, runtime, pool, "queue")
        return got

    def _offer(self, pool: _Pool, worker: Worker) -> None:
        """A worker free for `pool`: straight to the first waiting caller, else idle."""
        while pool.waiters:
            fut = pool.waiters.popleft()
            if not fut.done():
                pool.busy.add(worker)
                fut.set_result(worker)
                return
        pool.busy.discard(worker)
        pool.fresh.pop(worker, None)  # ready before anyone asked: whoever takes it waits for no start
        pool.demand.queued_since = None  # the queue drained
        pool.idle.append(worker)
        self.budget.wake()  # a start waiting for memory may reap it, or use it
        # The burst is over (a drained queue under steady load is not): no worker runs, and none
        # was handed to a caller that has yet to begin (pool.busy holds both).
        if not pool.demand.running and not pool.busy:
            self._grow_for_next_burst(pool)

    def _grow_for_next_burst(self, pool: _Pool) -> None:
        """The waiting of the last burst paid for more workers: start them now, while the CPU is
        free, up to the most callers seen at once, only in free memory (no idle worker of
        another function is reaped for a guess). Measured: started whenever the queue drained,
        under steady load over REST they took the CPU from the worker and the server (p99 of
        the first 5 s 5x the next)."""
        demand = pool.demand
        # No debt is the usual case (each worker that goes idle with none running asks): decided
        # before the guess, which looks at the pre-started sandboxes and costs more than the rest.
        if demand.debt <= 0 or pool.retired or self._closed or self.settings.scaling != "demand":
            return
        cold_ms = self._cold_guess(pool, pool.runtime)
        if demand.debt < cold_ms:
            return
        have = len(pool.idle) + len(pool.busy | set(demand.running)) + len(demand.starts)
        limit = min(demand.peak, pool.fn.max_concurrency or demand.peak, self.settings.max_concurrent)
        want = min(int(demand.debt // cold_ms), limit - have, self.budget.free() // max(1, pool.fn.memory))
        demand.debt = 0.0
        demand.peak = 0
        for _ in range(max(0, want)):
            self._grow(pool.fn, pool.runtime, pool, "spare")

    def _record_start(self, fn: Function, runtime: Runtime, pool: _Pool, worker: Worker, ms: float, how: str) -> None:
        kind = "adopt" if worker.slot is not None else "fresh"  # a pre-started sandbox has its own folder
        pool.demand.cold[kind].add(ms)
        self._cold_by_runtime.setdefault((runtime.name, kind), Ewma()).add(ms)
        self._stats(fn, runtime).started(ms, how)
        pool.fresh[worker] = ms  # the invocation it serves first reports a cold start, if that one waited

    async def _start_inline(
        self, fn: Function, runtime: Runtime, pool: _Pool, deadline: float
    ) -> Worker | InvokeResult:
        """This caller starts its own worker (nothing runs that could free up for it)."""
        token = object()
        t0 = time.perf_counter()
        kind, guess = self._next_start(pool, runtime)
        pool.demand.starts[token] = (t0, True, guess, kind)
        try:
            started = await self._start_worker(fn, runtime, pool, deadline)
        finally:
            pool.demand.starts.pop(token, None)
        ms = (time.perf_counter() - t0) * 1000
        if isinstance(started, InvokeResult):
            self._start_failed(pool, started, ms)
            return started
        worker, cold = started
        if cold:
            self._record_start(fn, runtime, pool, worker, ms, "caller")
        return worker

    def _start_failed(self, pool: _Pool, failure: InvokeResult, ms: float) -> None:
        """A start that failed (a compile error, a crash at init) counts as a cold start of that
        long and fails every caller waiting on it; throttling is no start at all."""
        if failure.error_type != ErrorType.THROTTLED:
            failure.cold_start = True
            failure.init_duration = ms
        self._fail_stranded(pool, failure)

    def _grow(self, fn: Function, runtime: Runtime, pool: _Pool, why: str = "wait") -> None:
        """Start one more worker in the background; it goes to the first waiting caller. `why`:
        "wait" (a caller would wait longer than a start: it may reap idle workers of other
        functions for memory, as a caller's own start does), "queue" (a queue outlasted a start)
        or "spare" (for the next burst; an idle worker is no answer then): free memory only."""
        token = object()
        kind, guess = self._next_start(pool, runtime)
        pool.demand.starts[token] = (time.perf_counter(), False, guess, kind)
        task = asyncio.ensure_future(self._grow_one(fn, runtime, pool, token, why))
        pool.grow_tasks.add(task)
        task.add_done_callback(pool.grow_tasks.discard)
        self._background.add(task)  # close() waits for it
        task.add_done_callback(self._background.discard)

    async def _grow_one(self, fn: Function, runtime: Runtime, pool: _Pool, token: object, why: str) -> None:
        t0 = pool.demand.starts[token][0]
        deadline = asyncio.get_running_loop().time() + self.settings.queue_timeout
        try:
            background = bool(pool.demand.running) or why == "spare"  # (else its callers wait for it alone)
            started = await self._start_worker(
                fn, runtime, pool, deadline, reuse_idle=why != "spare", reap=why == "wait", background=background
            )
        finally:
            pool.demand.starts.pop(token, None)
        ms = (time.perf_counter() - t0) * 1000
        if isinstance(started, InvokeResult):
            self._start_failed(pool, started, ms)
            return
        worker, cold = started
        pool.busy.discard(worker)
        if pool.retired or worker.dead:
            await worker.kill()  # an update landed while it started: the old code never serves
            return
        if cold:
            self._record_start(fn, runtime, pool, worker, ms, "spare" if why == "spare" else "background")
            self.prewarm.fill()
        self._offer(pool, worker)

    def _fail_stranded(self, pool: _Pool, failure: InvokeResult) -> None:
        """A start failed: callers waiting for a worker that nothing will free get its failure
        (a compile error, say) now rather than at the queue timeout."""
        if pool.demand.running or pool.demand.starts:
            return
        while pool.waiters:
            fut = pool.waiters.popleft()
            if not fut.done():
                fut.set_result(failure.model_copy())

    def _unstrand(self, fn: Function, runtime: Runtime, pool: _Pool) -> None:
        """A worker went away while callers waited for it: start one for them if nothing else
        would free up."""
        if pool.waiters and not pool.demand.running and not pool.demand.starts and not pool.retired:
            self._grow(fn, runtime, pool)

    # --- lifecycle ----------------------------------------------------------------------------
    def _retire_soon(self, key: tuple[str, int]) -> None:
        """Retire without making the caller wait for the old workers to be reaped: they are sent
        SIGKILL now (so no old code runs), the waiting happens in the background."""
        pool = self._pools.get(key)
        if pool is None:
            return
        pool.retired = True
        self._end_waiting(pool)
        for w in list(pool.idle) + list(pool.busy):
            w.retired = True
            w.signal_kill()
        task = asyncio.ensure_future(self._retire_pool(key))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _retire_pool(self, key: tuple[str, int]) -> None:
        pool = self._pools.pop(key, None)
        if pool is None:
            return
        pool.retired = True
        self._end_waiting(pool)
        workers = list(pool.idle) + list(pool.busy)
        pool.idle.clear()
        for w in workers:
            w.retired = True
        # Together, not one after another: each kill may wait seconds for a sandbox's last
        # process, and a forced shutdown with 50 busy workers must not wait 50 times that.
        await asyncio.gather(*(w.kill() for w in workers))

    @staticmethod
    def _end_waiting(pool: _Pool) -> None:
        for task in pool.grow_tasks:  # a start waiting for memory must not outlive its version
            task.cancel()
        while pool.waiters:
            fut = pool.waiters.popleft()
            if not fut.done():
                fut.set_result(
                    InvokeResult.failure(
                        ErrorType.WORKER_CRASHED,
                        "the function was updated or deleted while this invocation waited for a worker; "
                        "invoke the current version",
                    )
                )

    async def retire(self, function_id: str) -> None:
        """After an update or delete: the function's workers stop; no old code runs afterwards."""
        self._floor[function_id] = max(self._floor.get(function_id, 0), self._newest.get(function_id, 0) + 1)
        for key in [k for k in self._pools if k[0] == function_id]:
            await self._retire_pool(key)

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            try:
                await self._reaper
            except (asyncio.CancelledError, Exception):
                pass
        for key in list(self._pools):
            await self._retire_pool(key)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.prewarm.close()
        if self.sandbox.cgroups is not None:
            self.sandbox.cgroups.cleanup()

    # --- reporting ----------------------------------------------------------------------------
    def protections(self) -> dict[str, Any]:
        return dict(
            self.sandbox.report(),
            memory_budget=(f"{self.budget.limit} MB for all workers' memory limits together (runtime.max_memory)"),
        )

    def runtimes(self) -> dict[str, dict[str, Any]]:
        return {name: rt.info() for name, rt in self.runtimes_.items()}

    def stats(self) -> dict[str, Any]:
        per_fn: dict[str, dict[str, int]] = {}
        for (fid, ver), pool in self._pools.items():
            d = per_fn.setdefault(fid, {"warm": 0, "busy": 0, "version": ver})
            d["warm"] += len(pool.idle)
            d["busy"] += len(pool.busy)
            d["version"] = max(d["version"], ver)
        sch = self._scheduler
        return {
            "workers": per_fn,
            "warm_workers": sum(d["warm"] for d in per_fn.values()),
            "busy_workers": sum(d["busy"] for d in per_fn.values()),
            "in_flight": sch.running if sch else 0,
            "queued": sch.queued if sch else 0,
            "max_concurrent": self.settings.max_concurrent,
            "queue_size": self.settings.queue_size,
            "prewarmed": self.prewarm.count(),
            "prewarm_target": self.prewarm.targets(),  # grows with bursts of cold starts (prewarm.py)
            "memory": {
                "max_memory_mb": self.budget.limit,
                "reserved_mb": self.budget.used,
                "peak_reserved_mb": self.budget.peak,
                "waiting": self._memory_waiting,
            },
            "prewarm_problem": self.prewarm.problem,
            # How invocations found a worker, per function id (demand.py).
            "burst": {fid: dict(st.to_dict(), name=st.name) for fid, st in self.burst.items()},
        }
