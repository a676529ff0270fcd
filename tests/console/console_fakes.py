"""An in-memory PlatformAPI with fixed ids, times and durations, so the console's snapshots are
the same on every run. It keeps the contract's shapes (models, errors) without any execution."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from core.api import PlatformAPI
from core.errors import FieldError, InvalidInput, NotFound
from core.models import (
    Alert,
    AlertRule,
    AsyncInvocation,
    AttemptError,
    DeadLetter,
    ErrorType,
    Event,
    Function,
    FunctionTriggers,
    InvocationRecord,
    InvokeResult,
    LogRecord,
    SavedEvent,
    ScheduleStatus,
    StackFrame,
    parse_patch,
    parse_spec,
)

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
    def __init__(self, n_extra: int = 0) -> None:
        self.functions: dict[str, Function] = {}
        self.versions: dict[str, list[Function]] = {}
        self.saved: dict[tuple[str, str], SavedEvent] = {}
        self.rules: dict[str, AlertRule] = {}
        self.states: dict[str, Alert] = {}
        self.records: list[InvocationRecord] = []
        self.invocations = 0
        self.queue: asyncio.Queue[Event | Exception] | None = None
        self.fail_events = 0  # how many times events() fails before it works
        self.data_dir = "/data/cloudfn"
        self.started = False
        self.closed = False
        self.dead: dict[str, DeadLetter] = {}
        self.replayed: list[str] = []
        for i, (name, runtime, code, desc) in enumerate(SEED):
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
        for i in range(n_extra):
            self._add(
                Function(
                    id=f"fx-{i:05d}", name=f"extra-{i:05d}", runtime="python", code=PY_OK, created_at=T0, updated_at=T0
                )
            )

    def _add(self, fn: Function) -> None:
        self.functions[fn.id] = fn
        self.versions.setdefault(fn.id, []).append(fn)

    def _get(self, ref: str) -> Function:
        for fn in self.functions.values():
            if ref in (fn.id, fn.name):
                return fn
        raise NotFound(f"function {ref!r} not found")

    # -- functions
    async def list_functions(self) -> list[Function]:
        self.lists = getattr(self, "lists", 0) + 1
        return [f.summary() for f in self.functions.values()]  # as the platform: file names and sizes only

    async def get_function(self, ref: str) -> Function:
        self.gets = getattr(self, "gets", 0) + 1
        return self._get(ref)

    async def create_function(self, data: dict[str, Any]) -> Function:
        spec = parse_spec(data)
        if any(f.name == spec.name for f in self.functions.values()):
            raise InvalidInput("function", [FieldError("name", "is taken")])
        fn = Function(**spec.model_dump(), id=f"fn-new-{len(self.functions):04d}", created_at=T0, updated_at=T0)
        self._add(fn)
        return fn

    async def update_function(self, ref: str, data: dict[str, Any]) -> Function:
        fn = self._get(ref)
        parsed = parse_patch(data)
        patch = {k: getattr(parsed, k) for k in parsed.model_fields_set}  # nested settings stay models
        if patch.get("dependencies") and patch["dependencies"] != fn.dependencies:
            await self._install(fn)  # like the platform: installed before the new version is current
        new = fn.model_copy(update={**patch, "version": fn.version + 1})
        self._add(new)
        return new

    async def function_triggers(self, ref: str) -> FunctionTriggers:
        fn = self._get(ref)
        schedules = [
            ScheduleStatus(index=i, schedule=s, description=s.describe(), next_run=T0 if s.enabled else None)
            for i, s in enumerate(fn.schedules)
        ]
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
        return fn

    async def function_versions(self, ref: str) -> list[Function]:
        return list(self.versions[self._get(ref).id])

    async def rollback_function(self, ref: str, version: int) -> Function:
        fn = self._get(ref)
        old = next(v for v in self.versions[fn.id] if v.version == version)
        new = old.model_copy(update={"version": fn.version + 1})
        self._add(new)
        return new

    # -- invoke
    async def invoke(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> InvokeResult:
        fn = self._get(ref)
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
        self, function=None, status=None, since=None, until=None, limit=50, offset=0, trigger=None
    ):
        records = [r for r in self.records if trigger is None or r.trigger == trigger]
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

    async def invoke_async(self, ref: str, event: Any = None, context: dict[str, str] | None = None):
        fn = self._get(ref)
        self.invocations += 1
        return AsyncInvocation(
            invocation_id=f"inv-{self.invocations:04d}",
            function_id=fn.id,
            function_name=fn.name,
            status="queued",
            enqueued_at=T0,
        )

    async def invocation_status(self, invocation_id: str, wait: float = 0) -> AsyncInvocation:
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
        fid = self._get(function).id if function else None
        return [d for d in self.dead.values() if fid is None or d.function_id == fid][:limit]

    async def replay_dead_letter(self, dead_letter_id: str) -> AsyncInvocation:
        d = self.dead.pop(dead_letter_id, None)
        if d is None:
            raise NotFound(f"no dead letter with id {dead_letter_id!r}")
        self.replayed.append(d.id)
        return AsyncInvocation(
            invocation_id=d.id,
            function_id=d.function_id,
            function_name=d.function_name,
            status="queued",
            enqueued_at=T0,
        )

    async def delete_dead_letter(self, dead_letter_id: str) -> DeadLetter:
        d = self.dead.pop(dead_letter_id, None)
        if d is None:
            raise NotFound(f"no dead letter with id {dead_letter_id!r}")
        return d

    async def get_invocation(self, invocation_id: str) -> InvocationRecord:
        for r in self.records:
            if r.id == invocation_id:
                return r
        raise NotFound(invocation_id)

    # -- saved events
    async def list_saved_events(self, ref: str) -> list[SavedEvent]:
        fn = self._get(ref)
        return [e for (fid, _), e in self.saved.items() if fid == fn.id]

    async def save_event(self, ref, name, event, last_result=None) -> SavedEvent:
        fn = self._get(ref)
        ev = SavedEvent(function_id=fn.id, name=name, event=event, last_result=last_result, updated_at=T0)
        self.saved[(fn.id, name)] = ev
        return ev

    async def delete_saved_event(self, ref: str, name: str) -> None:
        self.saved.pop((self._get(ref).id, name), None)

    # -- metrics, logs, alerts
    async def metrics(self, function: str | None = None) -> dict[str, Any]:
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
        self, level=None, function=None, invocation_id=None, text=None, since=None, until=None, limit=200
    ):
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

    async def list_alert_rules(self) -> list[AlertRule]:
        return list(self.rules.values())

    async def create_alert_rule(self, data: dict[str, Any]) -> AlertRule:
        rule = AlertRule.model_validate({**data, "id": f"rule-{len(self.rules)}", "created_at": T0, "updated_at": T0})
        self.rules[rule.id] = rule
        return rule

    async def update_alert_rule(self, ref: str, data: dict[str, Any]) -> AlertRule:
        rule = self.rules[ref]
        new = AlertRule.model_validate({**rule.model_dump(by_alias=True), **data})
        self.rules[ref] = new
        return new

    async def delete_alert_rule(self, ref: str) -> AlertRule:
        return self.rules.pop(ref)

    async def alerts(self) -> list[Alert]:
        return list(self.states.values())

    async def alert_history(self, limit: int = 100) -> list[Alert]:
        return []

    # -- secrets (names and sizes only, as the real ones)
    async def set_secret(self, name: str, value: str):
        from core.secrets import SecretInfo, SecretStore

        SecretStore.validate(name, value)
        self.__dict__.setdefault("secrets", {})[name] = SecretInfo(
            name=name, size=len(value.encode()), set_at=datetime.now(UTC)
        )
        return self.secrets[name]

    async def list_secrets(self):
        return sorted(self.__dict__.get("secrets", {}).values(), key=lambda s: s.name)

    async def delete_secret(self, name: str, force: bool = False):
        from core.errors import NotFound

        if name not in self.__dict__.get("secrets", {}):
            raise NotFound(f"no secret named {name!r}")
        return self.secrets.pop(name)

    async def rotate_secrets_key(self) -> dict[str, Any]:
        return {"rotated": len(self.__dict__.get("secrets", {})), "key_source": "fake"}

    # -- live
    async def events(self, kinds: set[str] | None = None) -> AsyncIterator[Event]:
        if self.fail_events:
            self.fail_events -= 1
            raise ConnectionError("server went away")
        if self.queue is None:
            self.queue = asyncio.Queue()
        while True:
            item = await self.queue.get()
            if isinstance(item, Exception):
                self.queue = None
                raise item
            yield item

    async def function_dependencies(self, ref: str, rebuild: bool = False) -> dict[str, Any]:
        """Like the platform's: a rebuild streams build events; it holds after the first lines
        until `build_gate` is set, so a test can look at the console mid-install."""
        fn = self._get(ref)
        report = {
            "function": fn.name,
            "runtime": fn.runtime,
            "manifest": "requirements.txt",
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
        if self.queue is None:
            self.queue = asyncio.Queue()
        self.queue.put_nowait(Event(kind=kind, time=T0, data=data))

    async def health(self) -> dict[str, Any]:
        return {"status": "ok"}

    async def info(self) -> dict[str, Any]:
        return {"mode": "fake"}

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
