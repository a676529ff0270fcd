"""The platform's data: functions and invocation results, validated at every write.

Validation reports every bad field at once, by name, as `InvalidInput`; pydantic's own error
type never leaves this module.
"""

from __future__ import annotations

import functools
import os
import re
import unicodedata
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, field_validator, model_validator

from core.errors import FieldError, InvalidInput

RUNTIMES = ("python", "nodejs", "go")
RUNTIME_ALIASES = {"node": "nodejs", "node.js": "nodejs", "py": "python", "python3": "python", "golang": "go"}
NAME_MAX = 64
NAME_PUNCTUATION = frozenset(" -_.")
NAME_RULE = (f"1-{NAME_MAX} letters (any script), digits, spaces, '-', '_' or '.', not only dots, "
             "not starting or ending with a space")
HANDLER_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)?\Z")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# Variables that make a program load other code before its runtime starts (the dynamic loader's,
# iconv's, Node's preloads and inspector): refused, so what runs is the function's code on the
# platform's runtime. They would reach the runtime inside the sandbox only, never a host process.
RESERVED_ENV_RE = re.compile(r"^(LD_\w*|GCONV_PATH|NODE_OPTIONS)\Z")
MAX_CODE_BYTES = 1024 * 1024
TIMEOUT_RANGE = (1, 900)
MEMORY_RANGE = (64, 8192)
CONCURRENCY_RANGE = (1, 1000)
DEFAULT_HANDLER = "handler"
# Fields a client may echo back (a GET then PUT round trip) but never sets.
READ_ONLY_FIELDS = ("id", "version", "created_at", "updated_at")

Runtime = Literal["python", "nodejs", "go"]


def new_uuid() -> str:
    """A random (version 4) UUID as text, as str(uuid.uuid4()) but without building the object
    (a few microseconds less on every invocation)."""
    h = bytearray(os.urandom(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _name_char_ok(ch: str) -> bool:
    # Marks (M*) count as part of letters: Devanagari, Thai or Arabic words need them.
    cat = unicodedata.category(ch)
    return cat[0] in "LM" or cat == "Nd" or ch in NAME_PUNCTUATION


def _shown(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')}"


def name_problem(name: Any) -> str:
    """Why `name` cannot name a function, or "". Names reach paths, URLs, terminals and
    Prometheus labels, so the seed's "anything goes" stops at what is unsafe in one of them:
    '/', control and invisible characters (a zero-width space makes two names look alike)."""
    if not isinstance(name, str):
        return f"must be a string of {NAME_RULE}"
    if not name:
        return f"must not be empty: use {NAME_RULE}"
    if len(name) > NAME_MAX:
        return f"is {len(name)} characters long; the limit is {NAME_MAX}: shorten it"
    if "/" in name:
        return f"must not contain '/' (got {name!r}): names are path segments in URLs; use '-' or '.' instead"
    for ch in name:
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") or (ch.isspace() and ch != " "):
            kind = ("a control character" if cat == "Cc" else "a line break" if cat in ("Zl", "Zp")
                    else "whitespace other than a plain space" if ch.isspace() else "an invisible character")
            return f"contains {kind} ({_shown(ch)}) in {name!r}: remove it (only plain spaces may separate words)"
    if name != name.strip(" "):
        return f"must not start or end with a space (got {name!r}): remove the outer spaces"
    if not name.strip("."):
        return f"must not be only dots (got {name!r}): '.' and '..' mean folders in paths; add a letter or digit"
    bad = sorted({ch for ch in name if not _name_char_ok(ch)})
    if bad:
        shown = ", ".join(f"{ch!r} ({_shown(ch)})" for ch in bad[:5])
        return f"may contain only {NAME_RULE}; remove or replace {shown}"
    return ""


def name_key(name: str) -> str:
    """The form two names are compared in: equal keys are the same name (case and Unicode
    normalisation aside), so "My Function" and "my function" cannot both exist."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


@functools.cache
def name_pattern() -> str:
    """NAME_RULE as a regular expression (JSON Schema's dialect and Python's agree on it), for
    the OpenAPI document. Built from the Unicode tables once (~0.3 s), so only when asked."""
    ranges: list[list[int]] = []
    for c in range(0x110000):
        ch = chr(c)
        if ch not in NAME_PUNCTUATION and _name_char_ok(ch):
            if ranges and ranges[-1][1] == c - 1:
                ranges[-1][1] = c
            else:
                ranges.append([c, c])
    letters = "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)
    edge = f"[._\\-{letters}]"
    inner = f"[ ._\\-{letters}]"
    return f"^(?!\\.+$){edge}(?:{inner}{{0,{NAME_MAX - 2}}}{edge})?$"


def normalize_runtime(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        return RUNTIME_ALIASES.get(lowered, lowered)
    return value


class _Editable(BaseModel):
    """Fields a user sets; shared by create, update and the stored function."""

    # By alias both ways: `async` is a Python keyword, so its field is `async_`.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)

    @field_validator("name", check_fields=False)
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None:
            why = name_problem(v)
            if why:
                raise ValueError(why)
        return v

    @field_validator("runtime", mode="before", check_fields=False)
    @classmethod
    def _runtime(cls, v: Any) -> Any:
        v = normalize_runtime(v)
        if v is not None and v not in RUNTIMES:
            raise ValueError(f"must be one of {', '.join(RUNTIMES)} (or node), got {v!r}")
        return v

    @field_validator("handler", check_fields=False)
    @classmethod
    def _handler(cls, v: str | None) -> str | None:
        if v is not None and not HANDLER_RE.match(v):
            raise ValueError(
                f"must be a function name such as 'handler' or 'exports.handler' (got {v!r})"
            )
        return v

    @field_validator("code", check_fields=False)
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.strip():
            raise ValueError("must not be empty")
        if len(v.encode()) > MAX_CODE_BYTES:
            raise ValueError(f"is larger than {MAX_CODE_BYTES // 1024} KiB")
        return v

    @field_validator("environment", check_fields=False)
    @classmethod
    def _environment(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        bad = [k for k in v if not ENV_KEY_RE.match(k)]
        if bad:
            raise ValueError(
                f"variable names must be letters, digits and underscores, not starting with a "
                f"digit (bad: {', '.join(map(repr, bad))})"
            )
        reserved = [k for k in v if RESERVED_ENV_RE.match(k)]
        if reserved:
            raise ValueError(
                f"{', '.join(reserved)} may not be set: variables that load other code into the runtime "
                "(LD_*, GCONV_PATH, NODE_OPTIONS) are reserved; load libraries from the function's code instead"
            )
        nul = [k for k, x in v.items() if "\0" in k or "\0" in str(x)]
        if nul:
            raise ValueError(f"values must not contain a NUL character (in {', '.join(map(repr, nul))})")
        return v


def _int_field(default: Any, bounds: tuple[int, int], description: str) -> Any:
    return Field(default, ge=bounds[0], le=bounds[1], description=description)


# -- asynchronous invocation (issue 16) -------------------------------------------------------
ASYNC_RETRIES_RANGE = (0, 5)
ASYNC_AGE_RANGE = (1, 6 * 3600)  # Lambda's: at most 6 hours
ASYNC_BACKOFF_RANGE = (0.0, 3600.0)
WEBHOOK_RE = re.compile(r"^https?://[^/\s]+\S*\Z")


class AsyncSettings(BaseModel):
    """How the asynchronous queue treats a function's events. The whole block is replaced on
    update (fields left out take their defaults)."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(2, ge=ASYNC_RETRIES_RANGE[0], le=ASYNC_RETRIES_RANGE[1],
                             description="attempts after the first one (Lambda's default: 2)")
    max_event_age: int = Field(ASYNC_AGE_RANGE[1], ge=ASYNC_AGE_RANGE[0], le=ASYNC_AGE_RANGE[1],
                               description="seconds an event may wait, retries included, before it is dead")
    retry_backoff: float = Field(1.0, ge=ASYNC_BACKOFF_RANGE[0], le=ASYNC_BACKOFF_RANGE[1],
                                 description="seconds before the first retry; doubled each time, with jitter")
    on_success: str | None = Field(None, description="a function's name or an http(s) webhook URL")
    on_failure: str | None = Field(None, description="a function's name or an http(s) webhook URL")

    @field_validator("on_success", "on_failure")
    @classmethod
    def _destination(cls, v: str | None) -> str | None:
        if not v:
            return None
        if "://" in v:
            if not WEBHOOK_RE.match(v) or len(v) > 2048:
                raise ValueError("a webhook must be an http:// or https:// URL without spaces, of at most 2048 "
                                 f"characters (got {v[:80]!r})")
            return v
        why = name_problem(v)
        if why:
            raise ValueError(f"must be a function's name or an http(s) URL; as a name it {why}")
        return v


class FunctionSpec(_Editable):
    """What a create request carries."""

    name: str
    runtime: Runtime
    code: str
    handler: str = DEFAULT_HANDLER
    timeout: int = _int_field(30, TIMEOUT_RANGE, "seconds")
    memory: int = _int_field(128, MEMORY_RANGE, "MB")
    environment: dict[str, str] = Field(default_factory=dict)
    description: str = Field("", max_length=1024)
    max_concurrency: int | None = _int_field(None, CONCURRENCY_RANGE, "parallel invocations")
    network: bool = False
    # -- asynchronous invocation (issue 16) --
    async_: AsyncSettings = Field(default_factory=AsyncSettings, alias="async")


class FunctionPatch(_Editable):
    """A partial update: only the fields sent change."""

    name: str | None = None
    runtime: Runtime | None = None
    code: str | None = None
    handler: str | None = None
    timeout: int | None = _int_field(None, TIMEOUT_RANGE, "seconds")
    memory: int | None = _int_field(None, MEMORY_RANGE, "MB")
    environment: dict[str, str] | None = None
    description: str | None = Field(None, max_length=1024)
    max_concurrency: int | None = _int_field(None, CONCURRENCY_RANGE, "parallel invocations")
    network: bool | None = None
    # -- asynchronous invocation (issue 16) --
    async_: AsyncSettings | None = Field(None, alias="async")


class Function(FunctionSpec):
    """A stored function."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=new_uuid)
    version: int = Field(1, ge=1)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    def to_doc(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        kind = err["type"]
        if kind == "missing":
            msg = "is required"
        elif kind == "extra_forbidden":
            msg = "is not a known field"
        elif kind in ("greater_than_equal", "less_than_equal"):
            ctx = err.get("ctx", {})
            bound = ctx.get("ge", ctx.get("le"))
            word = "at least" if kind == "greater_than_equal" else "at most"
            msg = f"must be {word} {bound} (got {err.get('input')!r})"
        elif kind.startswith("int_") or kind.startswith("bool_") or kind.startswith("string_"):
            msg = f"{err['msg'][0].lower()}{err['msg'][1:]} (got {err.get('input')!r})"
        else:
            msg = err["msg"].removeprefix("Value error, ")
        errors.append(FieldError(loc, msg))
    return errors


def parse_spec(data: Any) -> FunctionSpec:
    return _parse(FunctionSpec, data, "function")


def parse_patch(data: Any) -> FunctionPatch:
    return _parse(FunctionPatch, data, "function update")


# The seed's `Function` fields whose zero value (as Go's encoding/json writes an unset field)
# means "the default" on create and "unchanged" on update. `description` and the other fields
# the seed lacks keep "" and 0 as real values, so a client can clear them.
ZERO_MEANS_UNSET_ON_CREATE = ("handler", "timeout", "memory", "environment")
ZERO_MEANS_UNSET_ON_UPDATE = ("name", "runtime", "code", "handler", "timeout", "memory", "environment")


def _is_zero(value: Any) -> bool:
    # Not {}: an empty environment is the default on create anyway, and on update it clears them.
    if value is None or value == "":
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


def drop_zero_values(data: dict[str, Any], patch: bool) -> dict[str, Any]:
    keys = ZERO_MEANS_UNSET_ON_UPDATE if patch else ZERO_MEANS_UNSET_ON_CREATE
    return {k: v for k, v in data.items() if not (k in keys and _is_zero(v))}


def _parse(model: type[BaseModel], data: Any, what: str):
    if not isinstance(data, dict):
        raise InvalidInput(what, [FieldError("body", f"must be an object, got {type(data).__name__}")])
    data = drop_zero_values({k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}, model is FunctionPatch)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(what, _field_errors(exc)) from None


def validation_errors(model: type[BaseModel], data: dict[str, Any]) -> list[FieldError]:
    """Every bad field of `data` for `model`, for callers that merge sources first."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return _field_errors(exc)
    return []


class ErrorType(str, Enum):
    HANDLER_ERROR = "HandlerError"
    COMPILE_ERROR = "CompileError"
    TIMEOUT = "Timeout"
    MEMORY_LIMIT = "MemoryLimitExceeded"
    OUTPUT_TOO_LARGE = "OutputTooLarge"
    THROTTLED = "Throttled"
    RUNTIME_UNAVAILABLE = "RuntimeUnavailable"
    WORKER_CRASHED = "WorkerCrashed"
    INVALID_EVENT = "InvalidEvent"
    INVALID_RESULT = "InvalidResult"


class StackFrame(BaseModel):
    file: str
    line: int
    function: str = ""
    column: int | None = None


class InvokeResult(BaseModel):
    """The seed's invoke answer (success, result, error as a string, duration in ms, memory_used)
    extended with what a user needs to debug."""

    success: bool
    result: Any = None
    error: str = ""
    error_type: ErrorType | None = None
    stack: list[StackFrame] = Field(default_factory=list)
    duration_ms: float = Field(0.0, description="the exact duration in milliseconds")
    memory_used: float = 0.0
    cold_start: bool = False
    init_duration: float = 0.0
    invocation_id: str = Field(default_factory=new_uuid)
    logs: str = ""
    function_id: str = ""
    function_name: str = ""
    function_version: int = 0

    @model_validator(mode="before")
    @classmethod
    def _duration_in(cls, data: Any) -> Any:
        # An answer with only `duration` (the seed's, or a server before duration_ms) still parses.
        if isinstance(data, dict) and "duration" in data:
            data = dict(data)
            duration = data.pop("duration")
            if "duration_ms" not in data:
                data["duration_ms"] = duration
        return data

    @computed_field(description="whole milliseconds, as the seed's int64 (the exact value is duration_ms)")
    @property
    def duration(self) -> int:
        return round(self.duration_ms)

    @duration.setter
    def duration(self, ms: float) -> None:
        self.duration_ms = ms

    @classmethod
    def failure(cls, error_type: ErrorType, message: str, **kw: Any) -> "InvokeResult":
        return cls(success=False, error=message, error_type=error_type, **kw)


# -- observability -------------------------------------------------------------------------
InvocationStatus = Literal["success", "failed", "throttled"]
# How an invocation reached its function: by hand (CLI, console, invoke API), an HTTP endpoint,
# a schedule, the asynchronous queue, or a retry of an asynchronous one.
TRIGGERS = ("manual", "http", "schedule", "async", "retry")
Trigger = Literal["manual", "http", "schedule", "async", "retry"]


class InvocationRecord(BaseModel):
    """One invocation as the history keeps it. Event, result and logs are bounded; a cut one
    is flagged."""

    id: str
    function_id: str
    function_name: str
    function_version: int
    runtime: str
    status: InvocationStatus
    error_type: str | None = None
    error: str = ""
    started_at: datetime
    duration: float = 0.0
    init_duration: float = 0.0
    cold_start: bool = False
    memory_used: float = 0.0
    event: Any = None
    result: Any = None
    logs: str = ""
    event_truncated: bool = False
    result_truncated: bool = False
    logs_truncated: bool = False
    trigger: Trigger = "manual"


# -- asynchronous invocation (issue 16) -------------------------------------------------------
AsyncState = Literal["queued", "running", "success", "failed", "dead", "throttled"]


class AttemptError(BaseModel):
    """One failed attempt of an asynchronous invocation."""

    attempt: int
    time: datetime
    error_type: str | None = None
    error: str = ""


class AsyncInvocation(BaseModel):
    """Where an invocation stands. For an asynchronous one: queued (waiting for its first
    attempt), running, failed (an attempt failed and a retry is due at `next_attempt_at`),
    success, or dead (a dead letter). A synchronous one reports its history status. `record`
    is the history record of the latest attempt, once there is one."""

    invocation_id: str
    function_id: str = ""
    function_name: str = ""
    status: AsyncState
    asynchronous: bool = True
    attempts: int = 0
    errors: list[AttemptError] = Field(default_factory=list)
    enqueued_at: datetime | None = None
    next_attempt_at: datetime | None = None
    record: "InvocationRecord | None" = None


class DeadLetter(BaseModel):
    """An asynchronous invocation that exhausted its retries, aged out, or whose function was
    deleted: its event and every attempt's error, kept until replayed or deleted."""

    id: str
    function_id: str
    function_name: str
    event: Any = None
    context: dict[str, str] = Field(default_factory=dict)
    reason: str
    attempts: int = 0
    errors: list[AttemptError] = Field(default_factory=list)
    enqueued_at: datetime
    dead_at: datetime


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class LogRecord(BaseModel):
    """A structured log line: the platform's own, or one a function printed."""

    time: datetime
    level: str
    logger: str
    message: str
    function: str | None = None
    invocation_id: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


EVENT_KINDS = (
    "function.created", "function.updated", "function.deleted",
    "invocation.started", "invocation.finished",
    "log", "alert.fired", "alert.resolved",
    # asynchronous invocation (issue 16)
    "async.queued", "async.retry_scheduled", "async.dead_lettered",
)
EventKind = Literal[
    "function.created", "function.updated", "function.deleted",
    "invocation.started", "invocation.finished",
    "log", "alert.fired", "alert.resolved",
    # asynchronous invocation (issue 16)
    "async.queued", "async.retry_scheduled", "async.dead_lettered",
]


class Event(BaseModel):
    """What the event bus carries to the console's live panes, the SSE stream and the alert
    engine. `data` is the JSON form of the subject: a Function, an InvocationRecord, a LogRecord
    or an Alert."""

    seq: int = 0
    kind: EventKind
    time: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)


ALERT_METRICS = (
    "error_rate", "success_rate", "failures", "duration_p95", "duration_avg",
    "throttles", "timeouts", "invocation_rate", "cold_starts",
)
AlertMetric = Literal[
    "error_rate", "success_rate", "failures", "duration_p95", "duration_avg",
    "throttles", "timeouts", "invocation_rate", "cold_starts",
]
AlertState = Literal["inactive", "pending", "firing", "resolved"]


class AlertRuleSpec(BaseModel):
    """A user's alert rule. Rates are percentages (0-100), durations milliseconds,
    invocation_rate per second; scope is `all`, `function:NAME` or `runtime:RUNTIME`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    metric: AlertMetric
    comparison: Literal[">", ">=", "<", "<="] = ">"
    threshold: float
    scope: str = "all"
    window: int = Field(300, ge=1, le=86400, description="seconds of data the metric is computed over")
    for_: int = Field(0, alias="for", ge=0, le=86400, description="seconds the condition must hold before firing")
    severity: Literal["info", "warning", "critical"] = "warning"
    enabled: bool = True
    webhook: str | None = None
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_-]{0,62}\Z", v):
            raise ValueError("must be 1-63 lowercase letters, digits, dashes or underscores")
        return v

    @field_validator("scope")
    @classmethod
    def _scope(cls, v: str) -> str:
        kind, _, target = v.partition(":")
        if v == "all" or (kind == "function" and not name_problem(target)) or (kind == "runtime" and target in RUNTIMES):
            return v
        raise ValueError("must be all, function:NAME or runtime:python|nodejs|go")

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        if v and not re.match(r"^https?://", v):
            raise ValueError("must be an http:// or https:// URL")
        return v or None


class AlertRule(AlertRuleSpec):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str = Field(default_factory=new_uuid)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Alert(BaseModel):
    """A rule's current state, or one transition of it in the alert history."""

    rule: str
    state: AlertState = "inactive"
    severity: str = "warning"
    value: float | None = None
    threshold: float | None = None
    summary: str = ""
    since: datetime | None = None  # when the current state began
    fired_at: datetime | None = None
    resolved_at: datetime | None = None


class SavedEvent(BaseModel):
    """A named test event of a function, with the last result it produced (for a diff)."""

    function_id: str
    name: str
    event: Any = None
    last_result: dict[str, Any] | None = None
    updated_at: datetime = Field(default_factory=utcnow)
