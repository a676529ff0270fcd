"""`LocalPlatform`: the whole platform in this process, owning one data directory.

Every invocation becomes an InvocationRecord that feeds the history, the metrics, the logs (what
the function printed) and the event bus, from which the console, the SSE stream and the alert
engine read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from core import __version__, paths
from core import secrets as sec
from core.alerts import AlertEngine
from core.api import PlatformAPI
from core.bundle import bundles_in
from core.config import Config
from core.deps.manifest import has_dependencies
from core.deps.platform import DEPS_DIR, DependencySupport
from core.errors import Conflict, FieldError, InvalidInput, NotFound
from core.events import EventBus
from core.filemodes import secure_data_dir
from core.history import MAX_LOGS, bounded
from core.logs import LogHub, attach, detach, truncate
from core.metrics import Metrics
from core.models import (
    Alert,
    AlertRule,
    AsyncInvocation,
    DeadLetter,
    ErrorType,
    Event,
    Function,
    FunctionTriggers,
    InvocationRecord,
    InvokeResult,
    LogRecord,
    SavedEvent,
    Trigger,
    parse_patch,
    parse_spec,
    utcnow,
)
from core.registry import Registry
from core.storage import DataDirLock, mask_url, open_backend
from core.triggers.async_invoke import AsyncInvoker
from core.triggers.queue import QUEUE_FILE, AsyncQueue, SqliteQueue
from core.triggers.ratelimit import STATE_FILE as RATE_FILE
from core.triggers.ratelimit import RateLimiter
from core.triggers.schedules import STATE_FILE as SCHEDULE_FILE
from core.triggers.schedules import Scheduler

log = logging.getLogger("cloudfn.platform")
REGISTRY_FILE = "registry.json"
ALERTS_FILE = "alerts.json"
CODE_DIR = "versions"
EXAMPLES_KEY = "examples_installed"
STATUSES = ("success", "failed", "throttled")
TRIGGERS = ("manual", "http", "schedule", "async", "retry")


class LocalPlatform(PlatformAPI):
    # With cluster.nats_url, invocations go to `cloudfn worker`s (core/cluster/dispatch.py); a
    # worker's own platform (core/cluster/worker.py) says False.
    dispatch_over_nats = True

    def __init__(
        self,
        config: Config,
        command: str = "cloudfn",
        install_examples: bool = True,
        announce: bool = True,
        serve_socket: bool = False,
        run_schedules: bool | None = None,
        consume_async: bool | None = None,
    ):
        """`announce`: log "platform started/stopped" (the long-running owners; a CLI call that
        merely passes through would fill the logs with them). `serve_socket`: serve the API on
        the data directory's private socket once started, for the other `cloudfn` processes.
        `run_schedules` (default: `announce`): run the functions' schedules once started; a
        command passing through must not fire them (nor catch up missed runs) on its way.
        `consume_async` (default: `announce`): run queued asynchronous invocations; a CLI call
        that passes through only queues them, for the next long-running owner."""
        self.config = config
        self.announce = announce
        self.run_schedules = announce if run_schedules is None else run_schedules
        self.consume_async = announce if consume_async is None else consume_async
        self.endpoint_base: str | None = None  # set by `cloudfn serve`: its URL, for endpoints' URLs
        self.serve_socket = serve_socket
        self._owner_socket: Any = None
        self.data_dir = config.data_dir
        self.location = f"local {self.data_dir}"
        # Installed dependencies are read by the sandbox user too (core/deps/cache.py sets their modes).
        secure_data_dir(self.data_dir, open_inside=[config.work_dir, self.data_dir / DEPS_DIR])
        self.lock = DataDirLock(self.data_dir)
        self.lock.acquire({"command": command, "version": __version__})
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_task: asyncio.Task[int] | None = None  # History.flush: the records written
        self._started = False
        self._closed = False
        try:
            # The registry, alert rules and history: the data directory's files, or PostgreSQL
            # shared with other processes (storage.url); the lock above still guards this
            # directory's local things (socket, sandboxes' folders, caches, the async queue).
            self.storage = open_backend(config["storage.url"], self.data_dir)
            self.store = self.storage.documents(REGISTRY_FILE.removesuffix(".json"))
            self.registry = Registry(
                self.store,
                default_timeout=config["runtime.default_timeout"],
                max_versions=config["storage.max_versions"],
                default_memory=config["runtime.default_memory"],
                blobs=self.storage.blobs(self.data_dir / CODE_DIR),
            )
            if install_examples:
                self._install_examples_once()
            self.bus = EventBus()
            self.logs = LogHub(self.data_dir / "logs", publish=self.bus.publish)
            attach(self.logs, config["monitor.log_level"])
            self.history = self.storage.history(
                self.data_dir / "history",
                max_records=config["monitor.history_max_records"],
                max_age=timedelta(days=config["monitor.history_max_age_days"]),
            )
            # Before anything runs: a wrong or missing key stops the start with what to do.
            # On shared storage the secrets are shared too (a cluster's gateways see one set).
            shared = self.storage.documents("secrets") if self.storage.shared else None
            self.secrets = sec.SecretStore(self.data_dir, config["secrets.key_file"], shared=shared)
            self._needles: dict[tuple[str, ...], list[str]] = {}
            self._previous: dict[str, str] = {}  # a secret's value before its last set or delete
            self.secrets.on_change = self._secrets_changed_elsewhere
            self.metrics_engine = Metrics()
            self.alert_engine = AlertEngine(
                self.storage.documents(ALERTS_FILE.removesuffix(".json")),
                self.metrics_engine,
                publish=self.bus.publish,
                function_exists=self._function_exists,
            )
            self.deps = DependencySupport(self)
            self.executor = self._make_executor()
            self.executor.secret_values = self.secrets.values
            # -- triggers (issue 16): rate limits and schedules --
            self.rate_limiter = RateLimiter(self.data_dir / RATE_FILE)
            self.scheduler = Scheduler(
                self.data_dir / SCHEDULE_FILE,
                self.registry.list,
                self._function_by_id,
                self._scheduled_run,
                self.bus.publish,
            )
            self.queue: AsyncQueue = self._make_queue()
            self.async_invoker = AsyncInvoker(
                self,
                self.queue,
                workers=config["async.workers"],
                webhook_timeout=config["async.webhook_timeout"],
                webhook_allow_private=config["async.webhook_allow_private"],
                max_queued=config["async.max_queued"],
                max_dead=config["async.max_dead_letters"],
            )
        except BaseException:
            if hasattr(self, "logs"):  # a failed start leaves no handler on the `cloudfn` logger
                detach(self.logs)
                self.logs.shutdown()
            if hasattr(self, "storage"):
                self.storage.close()
            self.lock.release()
            raise

    def _install_examples_once(self) -> None:
        """The first start on an empty data directory installs the bundled examples; deleting
        them later does not bring them back."""
        if self.registry.get_meta(EXAMPLES_KEY):
            return
        if not self.registry.list():
            for bundle in bundles_in(paths.bundled_functions_dir()):
                try:
                    self.registry.create(bundle.spec)
                except Conflict:
                    continue  # another gateway sharing the storage installed it first
                if bundle.event is not None:
                    self.registry.save_event(bundle.spec.name, "sample", bundle.event)
        self.registry.set_meta(EXAMPLES_KEY, True)

    def _make_queue(self) -> AsyncQueue:
        """A cluster's gateways share one queue on JetStream (any of them runs what another
        accepted); one machine keeps it in a SQLite file of the data directory."""
        c = self.config
        if c["cluster.nats_url"] and self.dispatch_over_nats:
            import core.cluster  # noqa: F401  (first: without nats-py it names what to install)
            from core.triggers.jsqueue import JetStreamQueue

            return JetStreamQueue(c, ack_wait=c["cluster.async_ack_wait"])
        return SqliteQueue(self.data_dir / QUEUE_FILE, sync=c["async.sync"])

    def _make_executor(self) -> Any:
        from core.executors import ExecutionService, ExecutionSettings

        c = self.config
        local = ExecutionService(
            ExecutionSettings(
                work_dir=c.work_dir,
                cache_dir=c.cache_dir,
                max_concurrent=c["runtime.max_concurrent"],
                queue_size=c["runtime.queue_size"],
                keep_warm=c["runtime.keep_warm"],
                sandbox=c["runtime.sandbox"],
                sandbox_user=c["runtime.sandbox_user"],
                build_memory=c["runtime.build_memory"],
                prewarm=c["runtime.prewarm"],
                max_memory=c["runtime.max_memory"],
                prewarm_max=c["runtime.prewarm_max"],
                deps_tree=self.deps.tree_of,
            )
        )
        if c["cluster.nats_url"] and self.dispatch_over_nats:
            from core.cluster.dispatch import NatsDispatcher

            dispatcher = NatsDispatcher(c, local, self.bus)
            dispatcher.remote_finished = self._record_remote
            self._remote_counts: dict[str, int] = {}  # invocations other gateways finished, by gateway
            return dispatcher
        return local

    def _record_remote(self, data: dict[str, Any]) -> None:
        """Another gateway's finished invocation (cluster events): counted in this gateway's
        metrics, so counts, rates and the leader's alert rules cover the whole cluster."""
        if self.config["monitor.enable_metrics"]:
            self.metrics_engine.record(
                InvocationRecord.model_validate({k: v for k, v in data.items() if k != "gateway"})
            )
            gateway = str(data.get("gateway"))
            self._remote_counts[gateway] = self._remote_counts.get(gateway, 0) + 1

    async def start(self) -> None:
        """Start the background work (history flushing, alert evaluation, the pre-started
        sandboxes). Called by the long-running clients (console, server) and by the first
        invocation."""
        self._start_background()

    def _start_background(self) -> None:
        if self._started or self._closed:
            return
        self._started = True
        self._tasks = [asyncio.create_task(self._flush_history_loop(), name="cloudfn-history-flush")]
        self.executor.warm_up()
        self.deps.prepare()
        if self.consume_async:
            self.async_invoker.start()
        lead = getattr(self.executor, "lead", None)  # cluster mode: only while this gateway holds the lease
        if lead is not None:
            lead(self._lead, self._follow)
        else:
            self._tasks.extend(self._lead_tasks())
        if self.serve_socket:
            self.start_socket()
        if self.announce:
            log.info("platform started", extra={"data_dir": str(self.data_dir)})

    def _lead_tasks(self) -> list[asyncio.Task[None]]:
        """What exactly one node of a cluster runs: alert evaluation and the schedules."""
        interval = self.config["monitor.alert_interval"]
        if self.run_schedules:
            self.scheduler.start()
        return [asyncio.create_task(self.alert_engine.run(interval), name="cloudfn-alerts")] if interval else []

    async def _lead(self) -> None:
        self._leading = self._lead_tasks()

    async def _follow(self) -> None:
        for task in getattr(self, "_leading", []):
            task.cancel()
        await asyncio.gather(*getattr(self, "_leading", []), return_exceptions=True)
        self._leading = []
        await self.scheduler.pause()

    def start_socket(self) -> None:
        """Serve the API on `<data_dir>/cloudfn.sock` (0600) from the running loop, so other
        `cloudfn` processes on this directory attach instead of being refused."""
        if self._owner_socket is not None or self._closed:
            return
        from core.server.owner import OwnerSocket, SocketUnavailable, socket_path

        sock = OwnerSocket(self, socket_path(self.data_dir))
        try:
            sock.start()
        except SocketUnavailable as exc:  # only sharing is lost: this process still works
            log.warning("%s; other cloudfn processes on this data directory will be refused meanwhile", exc.message)
            return
        self._owner_socket = sock

    async def _flush_history_loop(self, interval: float = 1.0) -> None:
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(self.history.flush)

    # -- functions -----------------------------------------------------------------------
    async def list_functions(self) -> list[Function]:
        # from memory: no file is read; names and sizes of the files only (get_function has them)
        return [fn.summary() for fn in self.registry.list()]

    async def get_function(self, ref: str) -> Function:
        return self.registry.get(ref)

    async def create_function(self, data: dict[str, Any]) -> Function:
        self._check_secrets_exist(data, patch=False)
        spec = self.registry.spec_from(data)
        self.deps.check(spec, "function")
        if self.deps.manifest_of(spec) is not None:  # installed before the function exists
            self.registry.check_name_free(spec.name)
            with self.deps.holding():
                await self.deps.ensure(spec)
                fn = await asyncio.to_thread(self.registry.create, spec)
        else:
            fn = await asyncio.to_thread(self.registry.create, spec)
        self._changed("function.created", fn)
        return fn

    async def update_function(self, ref: str, data: dict[str, Any]) -> Function:
        self._check_secrets_exist(data, patch=True)
        # The new dependencies install while the current version keeps serving; a failed
        # install raises BuildError and nothing changes.
        patch = await self.deps.before_update(ref, data)
        fn = await asyncio.to_thread(self.registry.update, ref, patch)
        await self.executor.retire(fn.id)
        self._changed("function.updated", fn)
        return fn

    async def delete_function(self, ref: str) -> Function:
        fn = await asyncio.to_thread(self.registry.delete, ref)
        self.async_invoker.function_deleted(fn)
        await self.executor.retire(fn.id)
        # The workers' copies of its code (work_dir/<id>/v<n>-<hash>, see runtimes/base.py), once
        # no worker of it is left: they stayed on disk for ever.
        await asyncio.to_thread(shutil.rmtree, self.config.work_dir / fn.id, True)
        self.metrics_engine.forget_function(fn.name)
        self.executor.burst.pop(fn.id, None)  # its scheduling counts go with it
        self._changed("function.deleted", fn)
        return fn

    async def function_versions(self, ref: str) -> list[Function]:
        return await asyncio.to_thread(self.registry.versions, ref)

    async def rollback_function(self, ref: str, version: int) -> Function:
        old = next((v for v in await self.function_versions(ref) if v.version == version), None)
        if old is not None:  # its secrets may have been deleted and its dependencies collected since
            self._refuse_missing_secrets(old.secrets, old.secret_env, f", which version {version} names")
            await self.deps.ensure(old)
        fn = await asyncio.to_thread(self.registry.rollback, ref, version)
        await self.executor.retire(fn.id)
        self._changed("function.updated", fn)
        return fn

    def _check_secrets_exist(self, data: Any, patch: bool) -> None:
        """Every secret a create or update names must exist (the shape is checked first, so
        other bad fields are reported together as usual)."""
        if not isinstance(data, dict) or not ({"secrets", "secret_env"} & set(data)):
            return
        spec = parse_patch(data) if patch else parse_spec(data)
        self._refuse_missing_secrets(spec.secrets or [], spec.secret_env or {})

    def _refuse_missing_secrets(self, names: list[str], env: dict[str, str], where: str = "") -> None:
        sec.refuse_missing(names, env, self.secrets.exists, where)

    def _changed(self, kind: str, fn: Function) -> None:
        self.scheduler.sync()
        if kind == "function.deleted":
            self.rate_limiter.forget(fn.id)
        log.info("%s %s (version %d)", kind.replace(".", " "), fn.name, fn.version, extra={"function": fn.name})
        self.bus.publish(kind, fn.summary().to_doc())  # files' texts stay out (up to 5 MiB)

    # -- invoke --------------------------------------------------------------------------
    async def invoke(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> InvokeResult:
        fn = await self.get_function(ref)
        check_context(context)
        return await self.run_invocation(fn, event, context or {})

    async def run_invocation(
        self,
        fn: Function,
        event: Any,
        context: dict[str, str],
        trigger: Trigger = "manual",
        invocation_id: str | None = None,
    ) -> InvokeResult:
        """Every way of invoking a function ends here (the invoke API, HTTP endpoints, schedules,
        the asynchronous queue), so limits, history, metrics and events treat them alike.
        `invocation_id`: kept by every attempt of an asynchronous invocation."""
        await self.start()
        started_at = utcnow()
        self.metrics_engine.started(fn.name)
        self.bus.publish(
            "invocation.started",
            lambda: {
                "function_id": fn.id,
                "function_name": fn.name,
                "function_version": fn.version,
                "started_at": started_at.isoformat(),
            },
        )
        try:
            limit = fn.rate_limit
            wait = self.rate_limiter.check(fn) if limit is not None else 0.0
            if limit is not None and wait:
                result = InvokeResult.failure(
                    ErrorType.THROTTLED,
                    f"rate limit of {fn.name} exceeded ({limit.requests_per_second:g} per second, "
                    f"burst {limit.burst}): retry in {wait:.3g} s",
                    retry_after=wait,
                )
            else:
                result = (has_dependencies(fn) and await self.deps.missing(fn)) or await self.executor.invoke(
                    fn, event, context, request_id=invocation_id
                )
        finally:
            self.metrics_engine.finished(fn.name)
        # The result is this call's own object: filled in place, not copied. The executor has
        # usually named the function already (a pydantic assignment is ~1 µs each).
        if (result.function_id, result.function_name, result.function_version) != (fn.id, fn.name, fn.version):
            result.function_id, result.function_name, result.function_version = fn.id, fn.name, fn.version
        self._record(fn, event, result, started_at, trigger)
        return result

    # -- triggers (issue 16) ---------------------------------------------------------------
    def _function_by_id(self, fn_id: str) -> Function | None:
        try:
            return self.registry.get(fn_id)
        except NotFound:
            return None

    async def _scheduled_run(self, fn: Function, event: Any, context: dict[str, str]) -> InvokeResult:
        return await self.run_invocation(fn, event, context, trigger="schedule")

    async def function_triggers(self, ref: str) -> FunctionTriggers:
        """Endpoint (no URL here: `cloudfn serve` gives it one), rate limit, and the schedules
        with their next and last runs."""
        fn = await self.get_function(ref)
        endpoint = f"{self.endpoint_base}/fn/{quote(fn.name, safe='')}" if self.endpoint_base else None
        return FunctionTriggers(
            function_id=fn.id,
            function_name=fn.name,
            endpoint=endpoint,
            public=fn.http.public,
            rate_limit=fn.rate_limit,
            schedules=self.scheduler.status(fn),
            schedules_running=self.scheduler.running,
            async_settings=fn.async_,
        )

    def _record(
        self, fn: Function, event: Any, result: InvokeResult, started_at: datetime, trigger: Trigger = "manual"
    ) -> InvocationRecord:
        throttled = result.error_type == ErrorType.THROTTLED
        status = "success" if result.success else ("throttled" if throttled else "failed")
        ev, ev_cut, _ = bounded(event)
        res, res_cut, safe = bounded(result.result)
        if safe is not result.result:  # the caller gets what the history keeps, never an unsendable value
            result.result = safe
        logs = truncate(result.logs, MAX_LOGS)
        error = truncate(result.error, 4096)
        found = self._secret_needles(fn)
        if found:  # what is kept and shown later never holds the values (the caller's own answer does)
            ev, res, logs, error = (
                sec.mask(ev, found),
                sec.mask(res, found),
                sec.mask_text(logs, found),
                sec.mask_text(error, found),
            )
        rec = InvocationRecord(
            id=result.invocation_id,
            function_id=fn.id,
            function_name=fn.name,
            function_version=fn.version,
            runtime=fn.runtime,
            status=status,
            error_type=result.error_type.value if result.error_type else None,
            error=error,
            started_at=started_at,
            duration=round(result.duration_ms, 3),  # exact: warm invocations take well under 1 ms
            init_duration=result.init_duration,
            cold_start=result.cold_start,
            memory_used=result.memory_used,
            event=ev,
            result=res,
            logs=logs,
            event_truncated=ev_cut,
            result_truncated=res_cut,
            logs_truncated=len(result.logs) > MAX_LOGS,
            trigger=trigger,
        )
        if self.history.add(rec):
            self._spawn_flush()
        if self.config["monitor.enable_metrics"]:  # the seed's switch; alerts read these too
            self.metrics_engine.record(rec)
        if result.logs:
            self.logs.function_output(
                fn.name, rec.id, sec.mask_text(result.logs, found) if found else result.logs, when=started_at
            )
        if not result.success:
            log.log(
                logging.INFO if status == "throttled" else logging.WARNING,
                "%s failed: %s: %s",
                fn.name,
                rec.error_type,
                rec.error.splitlines()[0] if rec.error else "",
                extra={"function": fn.name, "invocation_id": rec.id},
            )
        self.bus.publish("invocation.finished", lambda: rec.model_dump(mode="json"))
        return rec

    def _secret_needles(self, fn: Function) -> list[str]:
        names = tuple(sec.held_by(fn))
        if not names:
            return []
        found = self._needles.get(names)
        if found is None:
            current = self.secrets.values(n for n in names if self.secrets.exists(n))
            # Previous values too: an invocation that ran with one may be recorded after the set.
            found = self._needles[names] = sec.needles(
                [*current.values(), *(self._previous[n] for n in names if n in self._previous)]
            )
        return found

    def _spawn_flush(self) -> None:
        """Flush a full batch from a thread, one flush at a time, off the invocation path."""
        if self._flush_task is not None and not self._flush_task.done():
            return
        with contextlib.suppress(RuntimeError):  # no running loop: close() flushes
            self._flush_task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.history.flush))

    async def list_invocations(
        self,
        function: str | None = None,
        status: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
        trigger: str | None = None,
    ) -> list[InvocationRecord]:
        errors = []
        if status is not None and status not in STATUSES:
            errors.append(FieldError("status", f"must be one of {', '.join(STATUSES)}"))
        if trigger is not None and trigger not in TRIGGERS:
            errors.append(FieldError("trigger", f"must be one of {', '.join(TRIGGERS)}"))
        if not 1 <= limit <= 1000:
            errors.append(FieldError("limit", "must be from 1 to 1000"))
        if offset < 0:
            errors.append(FieldError("offset", "must not be negative"))
        if errors:
            raise InvalidInput("history query", errors)
        function_id = (await self.get_function(function)).id if function else None
        return self.history.query(function_id, status, _aware(since), _aware(until), limit, offset, trigger)

    async def get_invocation(self, invocation_id: str) -> InvocationRecord:
        return self.history.get(invocation_id)

    # -- asynchronous invocation (issue 16) ----------------------------------------------
    async def invoke_async(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> AsyncInvocation:
        """Queue an invocation durably and answer at once (status queued)."""
        fn = await self.get_function(ref)
        check_context(context)
        self._start_background()
        item = self.async_invoker.accept(fn, event, context)
        return AsyncInvocation(
            invocation_id=item.id,
            function_id=fn.id,
            function_name=fn.name,
            status="queued",
            enqueued_at=datetime.fromtimestamp(item.enqueued_at, UTC),
        )

    async def invocation_status(self, invocation_id: str, wait: float = 0) -> AsyncInvocation:
        """An asynchronous invocation's state (queued, running, failed with a retry due,
        success, dead) with its latest history record; a synchronous one's history status.
        `wait` (0-60 s): first wait until it has succeeded or become a dead letter."""
        if not 0 <= wait <= 60:
            raise InvalidInput("invocation status", [FieldError("wait", "must be from 0 to 60 seconds")])
        if wait:
            self._start_background()
            self.async_invoker.start()  # a caller waiting for the outcome: run it, even as a passing CLI call
            await self.async_invoker.wait_settled(invocation_id, wait)
        view = self.async_invoker.status(invocation_id)
        record = None
        try:
            record = self.history.get(view.invocation_id if view else invocation_id)
        except NotFound:
            if view is None:
                raise
        if view is None:
            assert record is not None
            return AsyncInvocation(
                invocation_id=record.id,
                function_id=record.function_id,
                function_name=record.function_name,
                status=record.status,
                asynchronous=False,
                attempts=1,
                record=record,
            )
        view.record = record
        return view

    async def list_dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        if not 1 <= limit <= 1000:
            raise InvalidInput("dead letter query", [FieldError("limit", "must be from 1 to 1000")])
        function_id = (await self.get_function(function)).id if function else None
        return [self.async_invoker.dead_letter_view(d) for d in self.queue.dead_letters(function_id, limit)]

    async def replay_dead_letter(self, dead_letter_id: str) -> AsyncInvocation:
        """Queue a dead letter again (same invocation id, fresh retries and age)."""
        self._start_background()
        return self.async_invoker.replay(dead_letter_id)

    async def delete_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        return self.async_invoker.delete(dead_letter_id)

    # -- saved events --------------------------------------------------------------------
    async def list_saved_events(self, ref: str) -> list[SavedEvent]:
        return await asyncio.to_thread(self.registry.saved_events, ref)

    async def save_event(
        self, ref: str, name: str, event: Any, last_result: dict[str, Any] | None = None
    ) -> SavedEvent:
        return await asyncio.to_thread(self.registry.save_event, ref, name, event, last_result)

    async def delete_saved_event(self, ref: str, name: str) -> None:
        await asyncio.to_thread(self.registry.delete_saved_event, ref, name)

    # -- metrics -------------------------------------------------------------------------
    async def metrics(self, function: str | None = None) -> dict[str, Any]:
        name = (await self.get_function(function)).name if function else None
        count = len(await self.list_functions())
        return self.metrics_snapshot(name, count)

    def metrics_snapshot(self, function: str | None, function_count: int) -> dict[str, Any]:
        stats = self.executor.stats()
        snap = self.metrics_engine.snapshot(function, function_count=function_count, warm_workers=stats["warm_workers"])
        snap["queued"] = stats["queued"]
        snap["events_dropped"] = self.bus.dropped
        # How invocations found a worker (issue 19): cold starts, background and spare starts,
        # queue waits, per function name.
        sched = _scheduling_by_name(stats)
        snap["scheduling"] = {function: sched[function]} if function in sched else ({} if function else sched)
        snap["async"] = self.async_invoker.stats()
        if "nodes" in stats:  # cluster mode: each worker's share (served, load, capacity)
            snap["nodes"] = stats["nodes"]
            # The counts above are the cluster's (other gateways' invocations arrive as events);
            # which gateway served how many, since this one started:
            remote = dict(self._remote_counts)
            own = snap["total_executions"] - sum(remote.values())
            snap["gateways"] = {self.executor.node: own, **remote}
        return snap

    async def prometheus_metrics(self) -> str:
        count = len(await self.list_functions())
        stats = self.executor.stats()
        text = self.metrics_engine.prometheus(
            function_count=count, warm_workers=stats["warm_workers"], scheduling=_scheduling_by_name(stats)
        )
        return text + async_prometheus(self.async_invoker.stats())

    # -- logs ----------------------------------------------------------------------------
    async def query_logs(
        self,
        level: str | None = None,
        function: str | None = None,
        invocation_id: str | None = None,
        text: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 200,
    ) -> list[LogRecord]:
        errors = []
        if level is not None and level.lower() not in ("debug", "info", "warning", "warn", "error", "critical"):
            errors.append(FieldError("level", "must be one of debug, info, warning, error, critical"))
        if not 1 <= limit <= 10_000:
            errors.append(FieldError("limit", "must be from 1 to 10000"))
        if errors:
            raise InvalidInput("log query", errors)
        return await asyncio.to_thread(
            self.logs.query, level, function, invocation_id, text, _aware(since), _aware(until), limit
        )

    # -- secrets -------------------------------------------------------------------------
    def _secret_users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for fn in self.registry.list():
            for name in sec.held_by(fn):
                users.setdefault(name, []).append(fn.name)
        return users

    def _holders(self, name: str) -> list[Function]:
        return [fn for fn in self.registry.list() if name in sec.held_by(fn)]

    def _secrets_changed_elsewhere(self, before: dict[str, str]) -> None:
        """A set or delete through another gateway: mask the old values too, and drop the
        cached masks (that gateway told the workers to replace theirs)."""
        self._previous.update(before)
        self._needles.clear()

    async def set_secret(self, name: str, value: str) -> sec.SecretInfo:
        old = self.secrets.values([name]).get(name) if self.secrets.exists(name) else None
        info = await asyncio.to_thread(self.secrets.set, name, value)
        if old is not None and old != value:
            self._previous[name] = old
        self._needles.clear()
        # Before answering: no warm worker keeps serving the old value (or lacks the new one).
        holders = self._holders(name)
        for fn in holders:
            await self.executor.replace_workers(fn.id)
        log.info("secret %s set (%d bytes); %d function(s) hold it", name, info.size, len(holders))
        if len(value) < sec.MIN_MASK_CHARS:
            log.warning(
                "secret %s is shorter than %d characters: it is not masked in logs and history",
                name,
                sec.MIN_MASK_CHARS,
            )
        info.used_by = sorted(fn.name for fn in holders)
        return info

    async def list_secrets(self) -> list[sec.SecretInfo]:
        return self.secrets.info(self._secret_users())

    async def delete_secret(self, name: str, force: bool = False) -> sec.SecretInfo:
        found = [s for s in self.secrets.info(self._secret_users()) if s.name == name]
        if not found:
            raise sec.no_secret(name)
        info = found[0]
        if info.used_by and not force:
            raise sec.held_secret(name, info.used_by)
        self._previous[name] = self.secrets.values([name])[name]
        await asyncio.to_thread(self.secrets.delete, name)
        self._needles.clear()
        for fn in self._holders(name):
            await self.executor.replace_workers(fn.id)
        forced = f" (forced; held by {', '.join(info.used_by)})" if info.used_by else ""
        log.info("secret %s deleted%s", name, forced)
        return info

    async def rotate_secrets_key(self) -> dict[str, Any]:
        count = await asyncio.to_thread(self.secrets.rotate_key)
        log.info("secrets key rotated: %d secret(s) re-encrypted", count)
        return {"rotated": count, "key_source": self.secrets.key_source}

    # -- alerts --------------------------------------------------------------------------
    def _function_exists(self, name: str) -> bool:
        try:
            self.registry.get(name)
        except NotFound:
            return False
        return True

    async def list_alert_rules(self) -> list[AlertRule]:
        return await asyncio.to_thread(self.alert_engine.rules)

    async def create_alert_rule(self, data: dict[str, Any]) -> AlertRule:
        return await asyncio.to_thread(self.alert_engine.create, data)

    async def update_alert_rule(self, ref: str, data: dict[str, Any]) -> AlertRule:
        return await asyncio.to_thread(self.alert_engine.update, ref, data)

    async def delete_alert_rule(self, ref: str) -> AlertRule:
        return await asyncio.to_thread(self.alert_engine.delete, ref)

    async def alerts(self) -> list[Alert]:
        return await asyncio.to_thread(self.alert_engine.current)

    async def alert_history(self, limit: int = 100) -> list[Alert]:
        return await asyncio.to_thread(self.alert_engine.history, limit)

    # -- live ----------------------------------------------------------------------------
    def events(self, kinds: set[str] | None = None) -> AsyncIterator[Event]:
        """Subscribes at once (inside the running loop), so no event published after this call
        returns is missed."""
        self._start_background()
        return aiter(self.bus.subscribe(kinds))

    # -- dependencies ----------------------------------------------------------------------
    async def function_dependencies(self, ref: str, rebuild: bool = False) -> dict[str, Any]:
        return await self.deps.report(await self.get_function(ref), rebuild)

    # -- about ---------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "service": "cloudfn", "version": __version__}

    async def info(self) -> dict[str, Any]:
        c = self.config
        return {
            "version": __version__,
            "mode": "local",
            "python": sys.version.split()[0],
            "paths": {
                "config_file": str(c.file) + ("" if c.file_exists else " (not present)"),
                "data_dir": str(c.data_dir),
                "registry": self.store.location,
                "history": self.history.location,
                "async_queue": str(getattr(self.queue, "path", "")),
                "logs": str(self.logs.path),
                "work_dir": str(c.work_dir),
                "cache_dir": str(c.cache_dir),
                "dependencies": str(self.deps.root),
                "bundled_functions": str(paths.bundled_functions_dir()),
                "bundled_themes": str(paths.bundled_themes_dir()),
                "user_themes": str(paths.user_themes_dir()),
            },
            "settings": {name: {"value": _plain(s.value, name), "source": s.source} for name, s in c.settings.items()},
            "ignored_config": list(c.ignored),
            "runtimes": self.executor.runtimes(),
            "protections": self.executor.protections(),
            "functions": len(await self.list_functions()),
            "secrets": self.secrets.describe(),
            "storage": {
                "backend": self.storage.kind,
                "location": self.storage.describe(),
                "shared": self.storage.shared,
            },
            **getattr(self.executor, "cluster_info", dict)(),  # cluster mode: its nodes (core/cluster)
        }

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._owner_socket is not None:  # first: no new request while closing
                await self._owner_socket.stop()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._flush_task is not None:
                await asyncio.gather(self._flush_task, return_exceptions=True)
            await self.scheduler.close()  # before the executor: no run starts on a closing one
            self.rate_limiter.save()
            await self.async_invoker.close()
            await self.executor.close()
            await self.deps.close()
            await self.alert_engine.close()
            self.history.flush()
            if self.announce and self._started:
                log.info("platform stopped")
            detach(self.logs)
            self.logs.shutdown()
            self.alert_engine.store.close()
            self.queue.close()
            self.store.close()
            self.storage.close()
        finally:
            self.lock.release()


def check_context(context: Any) -> None:
    if context is not None and (
        not isinstance(context, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in context.items())
    ):
        raise InvalidInput("invocation", [FieldError("context", "must be a map of strings to strings")])


def async_prometheus(stats: dict[str, Any]) -> str:
    """The asynchronous queue's figures in the Prometheus text format."""
    oldest = stats["oldest_age"] or 0.0
    rows = [
        ("cloudfn_async_queue_depth", "gauge", "asynchronous invocations queued or running", stats["depth"]),
        ("cloudfn_async_oldest_age_seconds", "gauge", "age of the oldest queued asynchronous invocation", oldest),
        ("cloudfn_async_dead_letters", "gauge", "dead letters kept", stats["dead_letters"]),
        ("cloudfn_async_accepted_total", "counter", "asynchronous invocations accepted", stats["accepted"]),
        ("cloudfn_async_retries_total", "counter", "retries scheduled", stats["retries"]),
        (
            "cloudfn_async_dead_lettered_total",
            "counter",
            "invocations that became dead letters",
            stats["dead_lettered"],
        ),
        (
            "cloudfn_async_dead_letters_dropped_total",
            "counter",
            "oldest dead letters dropped past async.max_dead_letters",
            stats["dead_letters_dropped"],
        ),
    ]
    return "".join(f"# HELP {n} {h}\n# TYPE {n} {t}\n{n} {v:g}\n" for n, t, h, v in rows)


def _aware(when: datetime | None) -> datetime | None:
    """A time without an offset is the caller's local time."""
    return when.astimezone() if when is not None and when.tzinfo is None else when


def _plain(value: Any, name: str = "") -> Any:
    if name == "storage.url" and isinstance(value, str):
        return mask_url(value)
    return str(value) if isinstance(value, Path) else value


def _scheduling_by_name(executor_stats: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for st in executor_stats.get("burst", {}).values():
        st = dict(st)
        out[st.pop("name")] = st
    return out
