"""`PlatformAPI`: the one interface the console, the command line and the REST server use.

`LocalPlatform` implements it in process; `RemotePlatform` talks to a `cloudfn serve` over HTTP.
One conformance suite runs against both. Functions are addressed by id or by name (`ref`).
Methods raise a `CloudfnError` subclass for what a caller did wrong (InvalidInput, NotFound,
Conflict) or for a platform that cannot answer (Unavailable), never a library's exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from core.models import (
    Alert,
    AlertRule,
    AsyncInvocation,
    DeadLetter,
    Event,
    Function,
    FunctionTriggers,
    InvocationRecord,
    InvokeResult,
    LogRecord,
    SavedEvent,
)
from core.secrets import SecretInfo


@runtime_checkable
class PlatformAPI(Protocol):
    """Implementations subclass it, so that the type checker holds each to it (scripts/check) and
    they share the context manager: `async with LocalPlatform(...) as p:` starts and closes."""

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Start what runs in the background (a local platform's history flushing, alert
        evaluation, pre-started sandboxes). Long-running clients call it once; safe to call
        again, and a platform used without it still answers every method."""
        ...

    async def close(self) -> None:
        """Stop the background work and release what the platform holds; safe to call again."""
        ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- functions ---------------------------------------------------------------------
    async def list_functions(self) -> list[Function]: ...

    async def get_function(self, ref: str) -> Function: ...

    async def create_function(self, data: dict[str, Any]) -> Function: ...

    async def update_function(self, ref: str, data: dict[str, Any]) -> Function: ...

    async def delete_function(self, ref: str) -> Function: ...

    async def function_versions(self, ref: str) -> list[Function]: ...

    async def rollback_function(self, ref: str, version: int) -> Function: ...

    # -- triggers (issue 16) -----------------------------------------------------------
    async def function_triggers(self, ref: str) -> FunctionTriggers:
        """The endpoint (its URL when a server serves it), rate limit and schedules with their
        next and last runs."""

    # -- dependencies ------------------------------------------------------------------
    async def function_dependencies(self, ref: str, rebuild: bool = False) -> dict[str, Any]:
        """{function, runtime, manifest (file name or None), installed, key, packages: [{name,
        version}], bytes, seconds, installed_at}. `rebuild` reinstalls first (BuildError if it fails)."""
        ...

    # -- invocations -------------------------------------------------------------------
    async def invoke(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> InvokeResult: ...

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
        """Newest first. `function` is a name or id; `status` success, failed or throttled;
        `trigger` manual, http, schedule, async or retry."""
        ...

    async def get_invocation(self, invocation_id: str) -> InvocationRecord: ...

    # -- asynchronous invocation (issue 16) ----------------------------------------------
    async def invoke_async(self, ref: str, event: Any = None, context: dict[str, str] | None = None) -> AsyncInvocation:
        """Queue durably, answer at once (status queued); the attempts run in the background."""
        ...

    async def invocation_status(self, invocation_id: str, wait: float = 0) -> AsyncInvocation:
        """queued, running, failed (a retry is due), success or dead, with the latest record;
        `wait` up to that many seconds (0-60) for it to succeed or become a dead letter."""
        ...

    async def list_dead_letters(self, function: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Newest first; `function` is a name or id."""
        ...

    async def replay_dead_letter(self, dead_letter_id: str) -> AsyncInvocation:
        """Queue it again (same id, fresh retries); the id may be a unique start of one."""
        ...

    async def delete_dead_letter(self, dead_letter_id: str) -> DeadLetter: ...

    # -- saved test events (per function) ----------------------------------------------
    async def list_saved_events(self, ref: str) -> list[SavedEvent]: ...

    async def save_event(
        self, ref: str, name: str, event: Any, last_result: dict[str, Any] | None = None
    ) -> SavedEvent: ...

    async def delete_saved_event(self, ref: str, name: str) -> None: ...

    # -- metrics -----------------------------------------------------------------------
    async def metrics(self, function: str | None = None) -> dict[str, Any]:
        """The JSON snapshot: the seed's fields (total_executions, success_rate, failure_rate,
        avg/min/max_execution_time, runtime_distribution, errors_by_type, uptime_seconds,
        function_count) plus per-function, per-runtime stats and time series."""
        ...

    async def prometheus_metrics(self) -> str: ...

    # -- logs --------------------------------------------------------------------------
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
        """Oldest first within the newest `limit` matches; `level` is a minimum level."""
        ...

    # -- alerts ------------------------------------------------------------------------
    async def list_alert_rules(self) -> list[AlertRule]: ...

    async def create_alert_rule(self, data: dict[str, Any]) -> AlertRule: ...

    async def update_alert_rule(self, ref: str, data: dict[str, Any]) -> AlertRule: ...

    async def delete_alert_rule(self, ref: str) -> AlertRule: ...

    async def alerts(self) -> list[Alert]:
        """The current state of every rule."""
        ...

    async def alert_history(self, limit: int = 100) -> list[Alert]:
        """Transitions (pending, firing, resolved), newest first."""
        ...

    # -- secrets (write-only: no method returns a value) ----------------------------------
    async def set_secret(self, name: str, value: str) -> SecretInfo:
        """Create or replace; every warm worker of a function holding it is replaced first."""
        ...

    async def list_secrets(self) -> list[SecretInfo]: ...

    async def delete_secret(self, name: str, force: bool = False) -> SecretInfo:
        """Conflict while a function holds it, unless `force`."""
        ...

    async def rotate_secrets_key(self) -> dict[str, Any]:
        """Re-encrypt every secret under a new key: {"rotated": N, "key_source": ...}."""
        ...

    # -- live --------------------------------------------------------------------------
    def events(self, kinds: set[str] | None = None) -> AsyncIterator[Event]:
        """An endless stream of bus events (function changes, invocations, log lines, alerts),
        from now on. A slow reader loses events rather than stalling the platform."""
        ...

    # -- about -------------------------------------------------------------------------
    async def health(self) -> dict[str, Any]: ...

    async def info(self) -> dict[str, Any]: ...
