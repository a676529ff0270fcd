"""An in-memory PlatformAPI with fixed ids, times and durations, so the console's snapshots are
the same on every run. It keeps the contract (models, validation, errors, events) without any
execution: the conformance suite runs against it too (tests/conformance/conftest.py, "fake"),
skipping the tests marked `executes`. Its clock stands still at T0."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from core import __version__
from core.alerts import check_scope, no_rule, parse_rule, rule_name_taken
from core.api import PlatformAPI
from core.deps.manifest import find_manifest
from core.deps.platform import DependencySupport
from core.errors import FieldError, InvalidInput, NotFound
from core.local import STATUSES, TRIGGERS, check_context
from core.models import (
    EVENT_KINDS,
    NULLABLE_ON_UPDATE,
    RUNTIMES,
    Alert,
    AlertRule,
    AsyncInvocation,
    AttemptError,
    DeadLetter,
    ErrorType,
    Event,
    Function,
    FunctionPatch,
    FunctionTriggers,
    InvocationRecord,
    InvokeResult,
    LogRecord,
    SavedEvent,
    ScheduleStatus,
    StackFrame,
    drop_zero_values,
    name_key,
    parse_patch,
    parse_spec,
)
from core.registry import check_files, name_taken, no_version, not_found
from core.secrets import SecretInfo, SecretStore, held_by, held_secret, no_secret, refuse_missing
from core.triggers.async_invoke import check_async_event
from core.triggers.schedules import next_run

T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

PY_OK = (
    'def handler(event, context):\n    name = event.get("name", "World")\n    return {"message": f"Hello, {name}!"}\n'
)
PY_FAIL = (
    'def check_stock(order_id):\n    raise ValueError(f"order {order_id}: out of stock")\n\n\n'
    'def handler(event, context):\n    return check_stock(event.get("order_id", 42))\n'
)
JS_OK = "async function handler(event, context) {\n  return { sum: (event.a || 0) + (event.b || 0) };\n}\n"
GO_OK = (
    "func handler(event interface{}, context map[string]string) interface{} {\n"
    '\treturn map[string]interface{}{"ok": true}\n}\n'
)

SEED = [
    ("hello-python", "python", PY_OK, "Echoes a greeting."),
    ("fail-python", "python", PY_FAIL, "Always fails, to show stacks."),
    ("sum-nodejs", "nodejs", JS_OK, "Adds a and b."),
    ("ok-go", "go", GO_OK, "Says ok."),
]


class FakePlatform(PlatformAPI):
    def __init__(self, n_extra: int = 0, seed: bool = True) -> None:
        """`seed`: the four functions (and `n_extra` more) the console tests look at; the
        conformance suite starts empty."""
        self.functions: dict[str, Function] = {}
        self.versions: dict[str, list[Function]] = {}
        self.saved: dict[tuple[str, str], SavedEvent] = {}
        self.rules: dict[str, AlertRule] = {}
        self.states: dict[str, Alert] = {}
        self.records: list[InvocationRecord] = []
        self.secrets: dict[str, SecretInfo] = {}
        self.invocations = 0
        self.queue: asyncio.Queue[Event | Exception] | None = None
        self.subscribers = 0
        self.seq = 0
        self.fail_events = 0  # how many times events() fails before it works
        self.data_dir = "/data/cloudfn"
        self.started = False
        self.closed = False
        self.dead: dict[str, DeadLetter] = {}
        self.replayed: list[str] = []
        for i, (name, runtime, code, desc) in enumerate(SEED if seed else []):
            self._add(
                Function(
                    id=f"fn-{i:04d}",
                    name=name,
                    runtime=runtime,
                    code=code,
                    description=desc,
                    created_at=T0,
                    updated_at=T0,
                )
            )
        for i in range(n_extra if seed else 0):
            self._add(
                Function(
                    id=f"fx-{i:05d}", name=f"extra-{i:05d}", runtime="python", code=PY_OK, created_at=T0, updated_at=T0
                )
            )
        self.next_id = len(self.functions)

    def _add(self, fn: Function) -> None:
        self.functions[fn.id] = fn
        self.versions.setdefault(fn.id, []).append(fn)

    def _get(self, ref: str) -> Function:
        # As the registry: an id, a name, then a name without regard to case.
        key = name_key(ref) if isinstance(ref, str) else ref
        for match in (lambda f: ref == f.id, lambda f: ref == f.name, lambda f: name_key(f.name) == key):
            for fn in self.functions.values():
                if match(fn):
                    return fn
        raise not_found(ref, [f.name for f in self.functions.values()])

    def _check_name_free(self, name: str, renaming: str | None = None) -> None:
        taken = next(
            (f.name for f in self.functions.values() if name_key(f.name) == name_key(name) and f.id != renaming), None
        )
        if taken is not None:
            raise name_taken(name, taken)

    def _check_secrets_exist(self, data: Any, patch: bool) -> None:
        if not isinstance(data, dict) or not ({"secrets", "secret_env"} & set(data)):
            return
        spec = parse_patch(data) if patch else parse_spec(data)
        refuse_missing(spec.secrets or [], spec.secret_env or {}, self.secrets.__contains__)

    def _changed(self, kind: str, fn: Function) -> None:
        self._emit(kind, fn.summary().to_doc())  # as the platform: file names and sizes, no texts

    # -- functions
    async def list_functions(self) -> list[Function]:
        self.lists = getattr(self, "lists", 0) + 1
        return [f.summary() for f in self.functions.values()]  # as the platform: file names and sizes only

    async def get_function(self, ref: str) -> Function:
        self.gets = getattr(self, "gets", 0) + 1
        return self._get(ref)

    async def create_function(self, data: dict[str, Any]) -> Function:
        self._check_secrets_exist(data, patch=False)
        # As the registry: a zero means "the default", then the defaults fill in.
        if isinstance(data, dict):
            data = {"timeout": 30, "memory": 128, **drop_zero_values(data, patch=False)}
        spec = parse_spec(data)
        DependencySupport.check(spec, "function")
        self._check_name_free(spec.name)
        fn = Function(**spec.model_dump(), id=f"fn-new-{self.next_id:04d}", created_at=T0, updated_at=T0)
        check_files(fn, "function")
        self.next_id += 1
        self._add(fn)
        self._changed("function.created", fn)
        return fn

    async def update_function(self, ref: str, data: dict[str, Any]) -> Function:
        self._check_secrets_exist(data, patch=True)
        fn = self._get(ref)
        parsed = data if isinstance(data, FunctionPatch) else parse_patch(data)
        patch = {k: getattr(parsed, k) for k in parsed.model_fields_set}  # nested settings stay models
        nulls = [k for k, v in patch.items() if v is None and k not in NULLABLE_ON_UPDATE]
        if nulls:
            raise InvalidInput("function update", [FieldError(k.rstrip("_"), "cannot be null") for k in nulls])
        if "name" in patch and patch["name"] != fn.name:
            self._check_name_free(patch["name"], fn.id)
        new = fn.model_copy(update={**patch, "version": fn.version + 1})
        check_files(new, "function update")  # a new runtime's handler file may clash
        if {"dependencies", "runtime", "source_builds", "files"} & set(patch):
            DependencySupport.check(new, "function update")
        if patch.get("dependencies") and patch["dependencies"] != fn.dependencies:
            await self._install(fn)  # like the platform: installed before the new version is current
        self._add(new)
        self._changed("function.updated", new)
        return new

    async def function_triggers(self, ref: str) -> FunctionTriggers:
        fn = self._get(ref)
        now = T0.timestamp()  # the fake's clock stands still
        schedules = []
        for i, s in enumerate(fn.schedules):
            nxt = next_run(s, None, now) if s.enabled else None
            schedules.append(
                ScheduleStatus(
                    index=i,
                    schedule=s,
                    description=s.describe(),
                    next_run=datetime.fromtimestamp(nxt, UTC) if nxt is not None else None,
                )
            )
        return FunctionTriggers(
            function_id=fn.id,
            function_name=fn.name,
            endpoint=None,
            public=fn.http.public,
            rate_limit=fn.rate_limit,
            schedules=schedules,
            schedules_running=True,
            async_settings=fn.async_,
        )

    async def delete_function(self, ref: str) -> Function:
        fn = self._get(ref)
        del self.functions[fn.id]
        self.versions.pop(fn.id, None)
        self.saved = {k: v for k, v in self.saved.items() if k[0] != fn.id}
        self._changed("function.deleted", fn)
        return fn

    async def function_versions(self, ref: str) -> list[Function]:
        return list(self.versions[self._get(ref).id])

    async def rollback_function(self, ref: str, version: int) -> Function:
        fn = self._get(ref)
        old = next((v for v in self.versions[fn.id] if v.version == version), None)
        if old is None:
            raise no_version(ref, version)
        refuse_missing(old.secrets, old.secret_env, self.secrets.__contains__, f", which version {version} names")
        new = old.model_copy(update={"version": fn.version + 1})
        self._add(new)
        self._changed("function.updated", new)
        return new

    # -- invoke
    async def invoke(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> InvokeResult:
        fn = self._get(ref)
        check_context(context)
        self.invocations += 1
        inv_id = f"inv-{self.invocations:04d}"
        common = dict(
            duration=12.5,
            memory_used=6.0,
            cold_start=self.invocations == 1,
            init_duration=40.0,
            invocation_id=inv_id,
            function_id=fn.id,
            function_name=fn.name,
            function_version=fn.version,
        )
        if fn.name.startswith("fail"):
            result = InvokeResult.failure(
                ErrorType.HANDLER_ERROR,
                "ValueError: order 42: out of stock",
                stack=[
                    StackFrame(file="handler.py", line=2, function="check_stock", column=5),
                    StackFrame(file="handler.py", line=6, function="handler", column=12),
                ],
                logs="checking stock\n",
                **common,
            )
        else:
            greeting = fn.environment.get("GREETING", "Hello")
            result = InvokeResult(
                success=True,
                result={"message": f"{greeting}!", "event": event},
                logs="hi from the function\n",
                **common,
            )
        self.records.insert(
            0,
            InvocationRecord(
                id=inv_id,
                function_id=fn.id,
                function_name=fn.name,
                function_version=fn.version,
                runtime=fn.runtime,
                status="success" if result.success else "failed",
                error_type=result.error_type.value if result.error_type else None,
                error=result.error,
                started_at=T0,
                duration=12.5,
                cold_start=result.cold_start,
                memory_used=6.0,
                event=event,
                result=result.result,
                logs=result.logs,
            ),
        )
        return result

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
        fid = self._get(function).id if function else None
        records = [
            r
            for r in self.records
            if (fid is None or r.function_id == fid)
            and (status is None or r.status == status)
            and (trigger is None or r.trigger == trigger)
            and (since is None or r.started_at >= since.astimezone())
            and (until is None or r.started_at <= until.astimezone())
        ]
        return records[offset : offset + limit]

    # -- asynchronous invocation
    def add_dead_letter(self, name: str, n: int) -> DeadLetter:
        fn = self._get(name)
        d = DeadLetter(
            id=f"dead-{n:04d}",
            function_id=fn.id,
            function_name=fn.name,
            event={"order_id": n},
            reason="retries exhausted: 3 attempt(s) failed (async.max_retries is 2)",
            attempts=3,
            errors=[
                AttemptError(
                    attempt=i, time=T0, error_type="HandlerError", error=f"ValueError: order {n}: out of stock"
                )
                for i in (1, 2, 3)
            ],
            enqueued_at=T0,
            dead_at=T0,
        )
        self.dead[d.id] = d
        return d

    async def invoke_async(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> AsyncInvocation:
        fn = self._get(ref)
        check_context(context)
        check_async_event(event)
        self.invocations += 1
        return AsyncInvocation(
            invocation_id=f"inv-{self.invocations:04d}",
            function_id=fn.id,
            function_name=fn.name,
            status="queued",
            enqueued_at=T0,
        )

    async def invocation_status(self, invocation_id: str, wait: float = 0) -> AsyncInvocation:
        if not 0 <= wait <= 60:
            raise InvalidInput("invocation status", [FieldError("wait", "must be from 0 to 60 seconds")])
        rec = await self.get_invocation(invocation_id)
        return AsyncInvocation(
            invocation_id=rec.id,
            function_id=rec.function_id,
            function_name=rec.function_name,
            status=rec.status,
            asynchronous=False,
            attempts=1,
            record=rec,
        )

    async def list_dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        if not 1 <= limit <= 1000:
            raise InvalidInput("dead letter query", [FieldError("limit", "must be from 1 to 1000")])
        fid = self._get(function).id if function else None
        return [d for d in self.dead.values() if fid is None or d.function_id == fid][:limit]

    def _dead(self, dead_letter_id: str) -> DeadLetter:
        # As the queue: the id, or a unique start of one (no wildcards).
        found = [d for i, d in self.dead.items() if i == dead_letter_id] or [
            d for i, d in self.dead.items() if dead_letter_id and i.startswith(dead_letter_id)
        ]
        if len(found) != 1:
            raise NotFound(f"no dead letter with id {dead_letter_id!r}")
        return found[0]

    async def replay_dead_letter(self, dead_letter_id: str) -> AsyncInvocation:
        d = self.dead.pop(self._dead(dead_letter_id).id)
        self.replayed.append(d.id)
        return AsyncInvocation(
            invocation_id=d.id,
            function_id=d.function_id,
            function_name=d.function_name,
            status="queued",
            enqueued_at=T0,
        )

    async def delete_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        return self.dead.pop(self._dead(dead_letter_id).id)

    async def get_invocation(self, invocation_id: str) -> InvocationRecord:
        found = [r for r in self.records if r.id == invocation_id] or [
            r for r in self.records if invocation_id and r.id.startswith(invocation_id)
        ]
        if len({r.id for r in found}) != 1:
            raise NotFound(f"no invocation with id {invocation_id!r}")
        return found[0]

    # -- saved events
    async def list_saved_events(self, ref: str) -> list[SavedEvent]:
        fn = self._get(ref)
        return sorted((e for (fid, _), e in self.saved.items() if fid == fn.id), key=lambda e: e.name)

    async def save_event(
        self, ref: str, name: str, event: Any, last_result: dict[str, Any] | None = None
    ) -> SavedEvent:
        fn = self._get(ref)
        ev = SavedEvent(function_id=fn.id, name=name, event=event, last_result=last_result, updated_at=T0)
        self.saved[(fn.id, name)] = ev
        return ev

    async def delete_saved_event(self, ref: str, name: str) -> None:
        fn = self._get(ref)
        if self.saved.pop((fn.id, name), None) is None:
            raise NotFound(f"function {fn.name!r} has no saved event named {name!r}")

    # -- metrics, logs, alerts
    async def metrics(self, function: str | None = None) -> dict[str, Any]:
        if function is not None:
            self._get(function)
        stats = {
            "invocations": 10,
            "successes": 9,
            "failures": 1,
            "throttles": 0,
            "timeouts": 0,
            "cold_starts": 2,
            "success_rate": 90.0,
            "error_rate": 10.0,
            "errors_by_type": {"HandlerError": 1},
            "duration_ms": {"avg": 10.0, "min": 1.0, "max": 40.0, "p50": 8.0, "p95": 30.0, "p99": 40.0},
        }
        return {
            "total_executions": 10,
            "success_rate": 90.0,
            "overall": stats,
            "functions": {"hello-python": stats},
            "runtimes": {"python": stats},
        }

    async def prometheus_metrics(self) -> str:
        return ""

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
        return [
            LogRecord(time=T0, level="info", logger="cloudfn.platform", message="platform started"),
            LogRecord(
                time=T0,
                level="warning",
                logger="fn",
                function="fail-python",
                message="fail-python failed: HandlerError",
            ),
        ]

    def _function_exists(self, name: str) -> bool:
        try:
            self._get(name)
        except NotFound:
            return False
        return True

    def _rule(self, ref: str) -> AlertRule:
        for r in self.rules.values():
            if ref in (r.id, r.name):
                return r
        raise no_rule(ref)

    async def list_alert_rules(self) -> list[AlertRule]:
        return list(self.rules.values())

    async def create_alert_rule(self, data: dict[str, Any]) -> AlertRule:
        spec = parse_rule(data)
        check_scope(spec.scope, self._function_exists)
        if any(r.name == spec.name for r in self.rules.values()):
            raise rule_name_taken(spec.name)
        rule = AlertRule(**spec.model_dump(), id=f"rule-{len(self.rules)}", created_at=T0, updated_at=T0)
        self.rules[rule.id] = rule
        return rule

    async def update_alert_rule(self, ref: str, data: dict[str, Any]) -> AlertRule:
        rule = self._rule(ref)
        spec = parse_rule(data, partial_of=rule)
        if spec.scope != rule.scope:
            check_scope(spec.scope, self._function_exists)
        if spec.name != rule.name and any(r.name == spec.name for r in self.rules.values()):
            raise rule_name_taken(spec.name)
        new = AlertRule(**spec.model_dump(), id=rule.id, created_at=rule.created_at, updated_at=T0)
        self.rules[rule.id] = new
        return new

    async def delete_alert_rule(self, ref: str) -> AlertRule:
        return self.rules.pop(self._rule(ref).id)

    async def alerts(self) -> list[Alert]:
        # Every rule has a state, inactive until it is evaluated (the fake never evaluates).
        quiet = [
            Alert(rule=r.name, severity=r.severity, threshold=r.threshold)
            for r in self.rules.values()
            if r.name not in self.states
        ]
        return list(self.states.values()) + quiet

    async def alert_history(self, limit: int = 100) -> list[Alert]:
        return []

    # -- secrets (names and sizes only, as the real ones)
    def _used_by(self, name: str) -> list[str]:
        return sorted(f.name for f in self.functions.values() if name in held_by(f))

    async def set_secret(self, name: str, value: str) -> SecretInfo:
        SecretStore.validate(name, value)
        self.secrets[name] = SecretInfo(name=name, size=len(value.encode()), set_at=T0)
        return self.secrets[name].model_copy(update={"used_by": self._used_by(name)})

    async def list_secrets(self) -> list[SecretInfo]:
        return [
            s.model_copy(update={"used_by": self._used_by(s.name)})
            for s in sorted(self.secrets.values(), key=lambda s: s.name)
        ]

    async def delete_secret(self, name: str, force: bool = False) -> SecretInfo:
        if name not in self.secrets:
            raise no_secret(name)
        used_by = self._used_by(name)
        if used_by and not force:
            raise held_secret(name, used_by)
        return self.secrets.pop(name).model_copy(update={"used_by": used_by})

    async def rotate_secrets_key(self) -> dict[str, Any]:
        return {"rotated": len(self.secrets), "key_source": "fake"}

    # -- live
    async def events(self, kinds: set[str] | None = None) -> AsyncIterator[Event]:
        unknown = set(kinds or ()) - set(EVENT_KINDS)
        if unknown:
            raise InvalidInput(
                "event subscription",
                [FieldError("kinds", f"unknown: {', '.join(sorted(unknown))} (known: {', '.join(EVENT_KINDS)})")],
            )
        if self.fail_events:
            self.fail_events -= 1
            raise ConnectionError("server went away")
        if self.queue is None:
            self.queue = asyncio.Queue()
        self.subscribers += 1
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, Exception):
                    self.queue = None
                    raise item
                if kinds is None or item.kind in kinds:
                    yield item
        finally:
            self.subscribers -= 1

    async def function_dependencies(self, ref: str, rebuild: bool = False) -> dict[str, Any]:
        """Like the platform's: a rebuild streams build events; it holds after the first lines
        until `build_gate` is set, so a test can look at the console mid-install."""
        fn = self._get(ref)
        m = find_manifest(fn.runtime, fn.dependencies, fn.files, fn.source_builds)
        if m is None:
            return {"function": fn.name, "runtime": fn.runtime, "manifest": None, "installed": False, "packages": []}
        report = {
            "function": fn.name,
            "runtime": fn.runtime,
            "manifest": m.file,
            "installed": True,
            "key": "k" * 32,
            "packages": [{"name": "tinypkg", "version": "1.0"}],
        }
        if rebuild:
            await self._install(fn)
        return report

    async def _install(self, fn: Function) -> None:
        base = {"function": fn.name, "runtime": fn.runtime, "key": "k" * 32}
        self.publish("build.started", {**base, "manifest": "requirements.txt"})
        self.publish("build.log", {**base, "line": "Resolved 1 package in 1ms"})
        gate = self.build_gate = getattr(self, "build_gate", None) or asyncio.Event()
        await gate.wait()
        if getattr(self, "build_fails", False):
            self.publish("build.log", {**base, "line": "error: No solution found: reqeusts"})
            self.publish("build.finished", {**base, "ok": False, "error": "No solution found: reqeusts"})
            from core.errors import BuildError

            raise BuildError("installing failed: No solution found: reqeusts", "error: No solution found")
        self.publish("build.log", {**base, "line": " + tinypkg==1.0"})
        self.publish(
            "build.finished", {**base, "ok": True, "packages": [{"name": "tinypkg", "version": "1.0"}], "seconds": 0.25}
        )

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """What a test makes happen on the platform: queued even before the console subscribes."""
        if self.queue is None:
            self.queue = asyncio.Queue()
        self.seq += 1
        self.queue.put_nowait(Event(seq=self.seq, kind=kind, time=T0, data=data))

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        """What the fake's own changes publish: only to a subscriber there now (the stream is
        "from now on"), so a console test's queue holds only what the test put there."""
        if self.subscribers:
            self.publish(kind, data)

    async def health(self) -> dict[str, Any]:
        return {"status": "ok", "service": "cloudfn", "version": __version__}

    async def info(self) -> dict[str, Any]:
        return {"mode": "fake", "version": __version__, "runtimes": list(RUNTIMES)}

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True


def refusing_platform(token: str | None):
    """A RemotePlatform whose server answers health and refuses everything else (401)."""
    import httpx

    from core.remote import RemotePlatform

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/health":
            return httpx.Response(200, json={"service": "cloudfn", "api": 1, "version": "test"})
        return httpx.Response(401, json={"error": "unauthorized", "type": "Unauthorized", "status": 401})

    return RemotePlatform("http://cloudfn.test:8080", token, transport=httpx.MockTransport(answer))
