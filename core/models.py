"""The platform's data: functions and invocation results, validated at every write.

Validation reports every bad field at once, by name, as `InvalidInput`; pydantic's own error
type never leaves this module.
"""

from __future__ import annotations

import functools
import math
import os
import re
import unicodedata
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal, TypeVar, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from core.errors import FieldError, InvalidInput
from core.funcfiles import files_errors

Runtime = Literal["python", "nodejs", "go"]
RUNTIMES: tuple[str, ...] = get_args(Runtime)  # the one list of runtime names; executors map each to a class
RUNTIME_ALIASES = {"node": "nodejs", "node.js": "nodejs", "py": "python", "python3": "python", "golang": "go"}
NAME_MAX = 64
NAME_PUNCTUATION = frozenset(" -_.")
NAME_RULE = (
    f"1-{NAME_MAX} letters (any script), digits, spaces, '-', '_' or '.', not only dots, "
    "not starting or ending with a space"
)
HANDLER_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)?\Z")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
# Variables that make a program load other code before its runtime starts (the dynamic loader's,
# iconv's, Node's preloads and inspector): refused, so what runs is the function's code on the
# platform's runtime. They would reach the runtime inside the sandbox only, never a host process.
RESERVED_ENV_RE = re.compile(r"^(LD_\w*|GCONV_PATH|NODE_OPTIONS)\Z")
MAX_CODE_BYTES = 1024 * 1024
# Secrets (issue 17; the store is core/secrets.py): a name becomes a file name under
# /run/secrets/ in the sandbox, so no '/' and no leading dot.
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
SECRET_NAME_RULE = "1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
MAX_SECRETS_PER_FUNCTION = 50
TIMEOUT_RANGE = (1, 900)
MEMORY_RANGE = (64, 8192)
CONCURRENCY_RANGE = (1, 1000)
DEFAULT_HANDLER = "handler"
# Fields a client may echo back (a GET then PUT round trip) but never sets.
READ_ONLY_FIELDS = ("id", "version", "created_at", "updated_at", "file_sizes")
# Fields of an update whose null is a value (none), not a mistake.
NULLABLE_ON_UPDATE = ("max_concurrency", "rate_limit")


def new_uuid() -> str:
    """A random (version 4) UUID as text, as str(uuid.uuid4()) but without building the object.
    Kept for its cost, measured (timeit, 2026-12): 1.0 us against 2.4 us; an invocation makes two
    (request and invocation ids), ~3 us of a 0.18-0.25 ms warm invoke (README, performance).
    tests/test_libraries.py checks that uuid.UUID reads each as version 4."""
    h = bytearray(os.urandom(16))
    h[6] = (h[6] & 0x0F) | 0x40
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def utcnow() -> datetime:
    return datetime.now(UTC)


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
            kind = (
                "a control character"
                if cat == "Cc"
                else "a line break"
                if cat in ("Zl", "Zp")
                else "whitespace other than a plain space"
                if ch.isspace()
                else "an invisible character"
            )
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
    model_config = ConfigDict(
        extra="forbid",
        str_strip_whitespace=False,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

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
            raise ValueError(f"must be a function name such as 'handler' or 'exports.handler' (got {v!r})")
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

    @field_validator("dependencies", check_fields=False)
    @classmethod
    def _dependencies(cls, v: str | None) -> str | None:
        from core.deps.manifest import MAX_MANIFEST_BYTES

        if v is not None and len(v.encode()) > MAX_MANIFEST_BYTES:
            raise ValueError(f"is larger than {MAX_MANIFEST_BYTES // 1024} KiB: list fewer packages")
        if v is not None and "\0" in v:
            raise ValueError("must not contain a NUL character")
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

    # -- secrets (issue 17) --
    @field_validator("secrets", check_fields=False)
    @classmethod
    def _secrets(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        bad = [n for n in v if not SECRET_NAME_RE.match(n)]
        if bad:
            raise ValueError(f"secret names must be {SECRET_NAME_RULE} (bad: {', '.join(map(repr, bad))})")
        if len(set(v)) > MAX_SECRETS_PER_FUNCTION:
            raise ValueError(f"a function may hold at most {MAX_SECRETS_PER_FUNCTION} secrets")
        return list(dict.fromkeys(v))

    @field_validator("secret_env", check_fields=False)
    @classmethod
    def _secret_env(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is None:
            return v
        cls._environment(v)  # the keys follow `environment`'s rules
        bad = [n for n in v.values() if not SECRET_NAME_RE.match(n)]
        if bad:
            raise ValueError(f"values are secret names, {SECRET_NAME_RULE} (bad: {', '.join(map(repr, bad))})")
        if len(set(v.values())) > MAX_SECRETS_PER_FUNCTION:
            raise ValueError(f"a function may hold at most {MAX_SECRETS_PER_FUNCTION} secrets")
        return v


def _int_field(default: Any, bounds: tuple[int, int], description: str) -> Any:
    return Field(default, ge=bounds[0], le=bounds[1], description=description)


# -- triggers (issue 16): HTTP endpoint, rate limit, schedules -----------------------------------
# The rules below are regular expressions and a list, not parsers' opinions, so that the API's
# JSON Schema (core/server/schema.py) states exactly what is accepted (the fuzzer checks both ways).
EVERY_LOOSE_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)\Z")
# Whole numbers, at least 1 s: 1000ms-99999999ms, 1s-9999999s, 1m-99999m, 1h-999h.
EVERY_PATTERN = r"^(?:[1-9][0-9]{3,7}ms|[1-9][0-9]{0,6}s|[1-9][0-9]{0,4}m|[1-9][0-9]{0,2}h)$"
EVERY_RE = re.compile(EVERY_PATTERN.replace("$", r"\Z"))
EVERY_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SCHEDULES = 10
MAX_SCHEDULE_EVENT = 64 * 1024
RATE_MAX = 100_000
CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron_field(num: str, names: str = "") -> str:
    val = f"(?:{num}|{names})" if names else f"(?:{num})"
    item = f"(?:\\*|{val}(?:-{val})?)(?:/[1-9][0-9]?)?"
    return f"{item}(?:,{item})*"


def _any_case(*words: str) -> str:
    # [jJ][aA][nN] rather than an inline flag: the same in Python's and JSON Schema's (ECMA) regexes.
    return "|".join("".join(f"[{c.lower()}{c.upper()}]" for c in w) for w in words)


_CRON_SEC = _cron_field("[1-5]?[0-9]")
_CRON_FIVE = " ".join(
    [
        _cron_field("[1-5]?[0-9]"),
        _cron_field("1?[0-9]|2[0-3]"),
        _cron_field("[1-9]|[12][0-9]|3[01]"),
        _cron_field(
            "[1-9]|1[0-2]",
            _any_case("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        ),
        _cron_field("[0-7]", _any_case("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
    ]
)
# minute hour day month weekday, optionally seconds first; numbers, names, *, ranges, lists, steps.
CRON_PATTERN = f"^(?:@(?:{'|'.join(m[1:] for m in CRON_MACROS)})|(?:{_CRON_SEC} )?{_CRON_FIVE})$"
CRON_RE = re.compile(CRON_PATTERN.replace("$", r"\Z"))


def parse_every(text: str) -> float:
    """'1500ms', '30s', '5m', '1h' in seconds; ValueError saying what is accepted."""
    m = EVERY_LOOSE_RE.match(text) if isinstance(text, str) else None
    # EVERY_RE accepts a subset of EVERY_LOOSE_RE, so a strict match always has its groups.
    if m is not None and EVERY_RE.match(text):
        return float(m.group(1)) * EVERY_UNITS[m.group(2)]
    if m is None:
        raise ValueError(f"must be a whole number and a unit, such as 30s, 5m, 1h or 1500ms (got {text!r})")
    seconds = float(m.group(1)) * EVERY_UNITS[m.group(2)]
    if seconds < 1:
        raise ValueError(f"is {text}; the shortest interval is 1s")
    if "." in m.group(1) or m.group(1).startswith("0"):
        raise ValueError(f"must be a whole number without leading zeros (got {text!r}): write 1500ms, not 1.5s")
    raise ValueError(f"is {text}; the longest is 999h (or 99999m, 9999999s): use cron for rarer runs")


def cron_problem(expr: str) -> str:
    """Why `expr` is not a schedule ("" when it is): 5 fields (minute hour day month weekday) or
    6 with seconds first (as Quartz and robfig/cron write them), one space apart, or a macro
    such as @hourly. A valid expression that never matches a date (the 30th of February) is
    accepted and never runs: its next run shows as none."""
    if CRON_RE.match(expr):
        return ""
    fields = expr.split(" ")
    if not expr.strip():
        return "must not be empty: write 5 fields (minute hour day month weekday), e.g. '*/5 * * * *'"
    if expr.startswith("@"):
        return f"unknown macro {expr!r}; known: {', '.join(CRON_MACROS)}"
    if len(fields) not in (5, 6) or "" in fields:
        return (
            f"has {len(expr.split())} fields{' (or extra spaces)' if '' in fields else ''}; write 5 (minute hour "
            "day month weekday) or 6 with seconds first, one space apart, e.g. '*/5 * * * *' or '*/10 * * * * *'"
        )
    return (
        f"is not valid cron syntax (got {expr!r}): each field is *, a number in its range (second and minute "
        "0-59, hour 0-23, day 1-31, month 1-12 or jan-dec, weekday 0-7 or sun-sat), a range a-b, a list a,b "
        "or a step */n"
    )


@functools.cache
def timezones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def timezone_problem(name: str) -> str:
    if name in timezones():
        return ""
    return f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin, America/New_York or UTC"


def _json_number(v: Any, integral: bool = False) -> Any:
    """JSON Schema's number (integer: a whole one): not a bool, not a string."""
    if v is None:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"must be a {'whole number' if integral else 'number'} (got {v!r})")
    if integral and isinstance(v, float):
        if not v.is_integer():
            raise ValueError(f"must be a whole number (got {v!r})")
        return int(v)
    return v


def _json_bool(v: Any) -> Any:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false (got {v!r})")
    return v


def _json_str(v: Any) -> Any:
    if v is not None and not isinstance(v, str):
        raise ValueError(f"must be a string (got {v!r})")
    return v


class HttpTrigger(BaseModel):
    """The function's endpoint, /fn/<name>[/<path>]: it needs the bearer token unless public."""

    model_config = ConfigDict(extra="forbid")
    public: bool = Field(False, description="answer without a token, as a Lambda function URL with auth NONE")

    @field_validator("public", mode="before")
    @classmethod
    def _bool(cls, v: Any) -> Any:
        return _json_bool(v)


class RateLimit(BaseModel):
    """A token bucket: `burst` calls at once, refilled at `requests_per_second`."""

    model_config = ConfigDict(extra="forbid")
    requests_per_second: float = Field(gt=0, le=RATE_MAX, description="sustained calls per second (> 0)")
    burst: int | None = Field(None, ge=1, le=RATE_MAX, description="calls allowed at once; default: ceil(rate)")

    @field_validator("requests_per_second", mode="before")
    @classmethod
    def _rate_number(cls, v: Any) -> Any:
        return _json_number(v)

    @field_validator("burst", mode="before")
    @classmethod
    def _burst_number(cls, v: Any) -> Any:
        return _json_number(v, integral=True)

    @model_validator(mode="after")
    def _default_burst(self) -> RateLimit:
        if self.burst is None:
            self.burst = max(1, math.ceil(self.requests_per_second))
        return self


class Schedule(BaseModel):
    """One schedule: `cron` or `every`, in the server's time zone unless `timezone` names one."""

    model_config = ConfigDict(extra="forbid")
    cron: str | None = Field(None, description="5 fields, or 6 with seconds first, or @hourly and the like")
    every: str | None = Field(None, description="an interval: 30s, 5m, 1h, 1500ms (at least 1s)")
    event: Any = Field(None, description="the event each run gets")
    timezone: str | None = Field(None, description="an IANA zone such as Europe/Berlin; default: the server's")
    overlap: Literal["skip", "queue"] = Field("skip", description="a run due while the last still runs: skip or queue")
    catch_up: bool = Field(False, description="after downtime, run once for the runs missed (else skip them)")
    enabled: bool = True

    @field_validator("cron", "every", "timezone", mode="before")
    @classmethod
    def _strings(cls, v: Any) -> Any:
        return _json_str(v)

    @field_validator("enabled", "catch_up", mode="before")
    @classmethod
    def _bools(cls, v: Any) -> Any:
        return _json_bool(v)

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            why = cron_problem(v)
            if why:
                raise ValueError(why)
        return v

    @field_validator("every")
    @classmethod
    def _every(cls, v: str | None) -> str | None:
        if v is not None:
            parse_every(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, v: str | None) -> str | None:
        if v is not None:
            why = timezone_problem(v)
            if why:
                raise ValueError(why)
        return v

    @field_validator("event")
    @classmethod
    def _event(cls, v: Any) -> Any:
        import json

        try:
            size = len(json.dumps(v))
        except (TypeError, ValueError):
            raise ValueError("must be JSON") from None
        if size > MAX_SCHEDULE_EVENT:
            raise ValueError(f"is {size} bytes of JSON; the limit is {MAX_SCHEDULE_EVENT // 1024} KiB")
        return v

    @model_validator(mode="after")
    def _one_timing(self) -> Schedule:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of cron (e.g. '*/5 * * * *') or every (e.g. '30s')")
        if self.every is not None and self.timezone is not None:
            raise ValueError("timezone applies to cron only; an interval runs the same in every zone")
        return self

    @property
    def key(self) -> str:
        """What the durable state of this schedule is kept under: its timing, so editing the
        event or the overlap keeps the last run, and a new timing starts afresh."""
        return f"cron {self.cron} {self.timezone or ''}".strip() if self.cron else f"every {self.every}"

    def describe(self) -> str:
        if self.cron:
            return f"cron {self.cron}" + (f" ({self.timezone})" if self.timezone else "")
        return f"every {self.every}"


# -- asynchronous invocation (issue 16) -------------------------------------------------------
ASYNC_RETRIES_RANGE = (0, 5)
ASYNC_AGE_RANGE = (1, 6 * 3600)  # Lambda's: at most 6 hours
ASYNC_BACKOFF_RANGE = (0.0, 3600.0)
WEBHOOK_RE = re.compile(r"^https?://[^/\s]+\S*\Z")


class AsyncSettings(BaseModel):
    """How the asynchronous queue treats a function's events. The whole block is replaced on
    update (fields left out take their defaults)."""

    model_config = ConfigDict(extra="forbid")

    max_retries: int = Field(
        2,
        ge=ASYNC_RETRIES_RANGE[0],
        le=ASYNC_RETRIES_RANGE[1],
        description="attempts after the first one (Lambda's default: 2)",
    )
    max_event_age: int = Field(
        ASYNC_AGE_RANGE[1],
        ge=ASYNC_AGE_RANGE[0],
        le=ASYNC_AGE_RANGE[1],
        description="seconds an event may wait, retries included, before it is dead",
    )
    retry_backoff: float = Field(
        1.0,
        ge=ASYNC_BACKOFF_RANGE[0],
        le=ASYNC_BACKOFF_RANGE[1],
        description="seconds before the first retry; doubled each time, with jitter",
    )
    on_success: str | None = Field(None, description="a function's name or an http(s) webhook URL")
    on_failure: str | None = Field(None, description="a function's name or an http(s) webhook URL")

    @field_validator("on_success", "on_failure")
    @classmethod
    def _destination(cls, v: str | None) -> str | None:
        if not v:
            return None
        if "://" in v:
            if not WEBHOOK_RE.match(v) or len(v) > 2048:
                raise ValueError(
                    "a webhook must be an http:// or https:// URL without spaces, of at most 2048 "
                    f"characters (got {v[:80]!r})"
                )
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
    # -- secrets (issue 17): names of secrets mounted at /run/secrets/<name>; ENV -> secret name
    # (a secret named here is held too, without being listed in `secrets`)
    secrets: list[str] = Field(default_factory=list)
    secret_env: dict[str, str] = Field(default_factory=dict)
    # -- triggers (issue 16): HTTP endpoint, rate limit, schedules --
    http: HttpTrigger = Field(default_factory=HttpTrigger)
    rate_limit: RateLimit | None = None
    schedules: list[Schedule] = Field(default_factory=list, max_length=MAX_SCHEDULES)
    # -- multi-file functions (issue #15): every file besides the handler file, which is `code`
    files: dict[str, str] = Field(
        default_factory=dict,
        description=("the function's other files, {relative path: UTF-8 text}; the handler file stays in `code`"),
    )
    # -- dependencies (issue 15): the runtime's manifest text; installs may build sdists --------
    dependencies: str = Field("", description="requirements.txt (python) or package.json (nodejs) text")
    source_builds: bool = Field(False, description="allow building dependencies from source (runs their code)")

    @field_validator("dependencies")
    @classmethod
    def _manifest(cls, v: str, info: ValidationInfo) -> str:
        from core.deps.manifest import manifest_problems

        runtime = info.data.get("runtime")
        errors = manifest_problems(runtime, v) if runtime else []
        if errors:
            raise ValueError("; ".join(errors))
        return v

    # -- asynchronous invocation (issue 16) --
    async_: AsyncSettings = Field(default_factory=AsyncSettings, alias="async")
    # -- subfolder handlers (issue 15): where `code` sits in the folder; "" is the runtime's
    # default (handler.py, index.js, main.go) at the top
    handler_file: str = Field(
        "",
        description=(
            "path of the handler file inside the function folder (e.g. src/main.py); its folder is importable. "
            "Empty: the runtime's default at the top"
        ),
    )

    @field_validator("handler_file")
    @classmethod
    def _handler_file(cls, v: str, info: ValidationInfo) -> str:
        from core.funcfiles import HANDLER_FILES, handler_file_problem

        runtime = info.data.get("runtime")
        why = handler_file_problem(v, runtime)
        if why:
            raise ValueError(why)
        return "" if v == HANDLER_FILES.get(runtime or "") else v


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
    # -- secrets (issue 17)
    secrets: list[str] | None = None
    secret_env: dict[str, str] | None = None
    # -- triggers (issue 16): HTTP endpoint, rate limit (null removes it), schedules --
    http: HttpTrigger | None = None
    rate_limit: RateLimit | None = None
    schedules: list[Schedule] | None = Field(None, max_length=MAX_SCHEDULES)
    # -- multi-file functions (issue #15): given, it replaces the whole set; absent, unchanged
    files: dict[str, str] | None = Field(
        None, description=("replaces every file besides the handler file ({} removes them all); absent: unchanged")
    )
    # -- dependencies (issue 15) ----------------------------------------------------------------
    dependencies: str | None = None
    source_builds: bool | None = None
    # -- asynchronous invocation (issue 16) --
    async_: AsyncSettings | None = Field(None, alias="async")
    # -- subfolder handlers (issue 15): "" moves the handler file back to the runtime's default
    handler_file: str | None = None


class Function(FunctionSpec):
    """A stored function."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=new_uuid)
    version: int = Field(1, ge=1)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # -- lists and events (issue 15): {path: UTF-8 bytes} of `files`, which are then left out (up
    # to 5 MiB a function); get_function carries the texts. Empty in a whole function.
    file_sizes: dict[str, int] = Field(
        default_factory=dict,
        description=(
            "in lists and events only: the size of each file, whose text is left out (get the function for it)"
        ),
    )

    def to_doc(self) -> dict[str, Any]:
        # a summary names its files with their sizes; a whole function carries their texts
        return self.model_dump(mode="json", exclude={"files"} if self.file_sizes else {"file_sizes"})

    def summary(self) -> Function:
        """This function for lists and events: every field, files as names and sizes only."""
        if not self.files:
            return self
        sizes = {p: len(t.encode("utf-8", "surrogatepass")) for p, t in self.files.items()}
        return self.model_copy(update={"files": {}, "file_sizes": sizes})

    @property
    def complete(self) -> bool:
        """Whether `files` holds every file's text (False for a summary of a function with files)."""
        return not self.file_sizes


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
        elif kind in ("greater_than", "less_than"):
            ctx = err.get("ctx", {})
            word, bound = ("more than", ctx.get("gt")) if kind == "greater_than" else ("less than", ctx.get("lt"))
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


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(model: type[_Model], data: Any, what: str) -> _Model:
    if not isinstance(data, dict):
        raise InvalidInput(what, [FieldError("body", f"must be an object, got {type(data).__name__}")])
    data = drop_zero_values({k: v for k, v in data.items() if k not in READ_ONLY_FIELDS}, model is FunctionPatch)
    # files are checked one path at a time, so each bad one is named (pydantic would name `files`)
    runtime = normalize_runtime(data.get("runtime")) if model is FunctionSpec else None
    handler_file = data.get("handler_file") if isinstance(data.get("handler_file"), str) else ""
    file_errors = files_errors(data.get("files"), runtime if runtime in RUNTIMES else None, handler_file)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(what, _field_errors(exc) + file_errors) from None
    if file_errors:
        raise InvalidInput(what, file_errors)
    return parsed


def validation_errors(model: type[BaseModel], data: dict[str, Any]) -> list[FieldError]:
    """Every bad field of `data` for `model`, for callers that merge sources first."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return _field_errors(exc)
    return []


# Not StrEnum (UP042): that would change what str() of a member gives (the value, not
# ErrorType.NAME), a behaviour change wherever one is formatted.
class ErrorType(str, Enum):  # noqa: UP042
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
    BUILD_ERROR = "BuildError"


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
    # -- rate limits (issue 16): when Throttled by the function's rate limit, seconds until a call fits --
    retry_after: float | None = None

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

    # pydantic's documented pattern; mypy does not model decorators over @property (mypy#1362).
    @computed_field(  # type: ignore[prop-decorator]
        description="whole milliseconds, as the seed's int64 (the exact value is duration_ms)"
    )
    @property
    def duration(self) -> int:
        return round(self.duration_ms)

    @duration.setter
    def duration(self, ms: float) -> None:
        self.duration_ms = ms

    @classmethod
    def failure(cls, error_type: ErrorType, message: str, **kw: Any) -> InvokeResult:
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
    record: InvocationRecord | None = None


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


EventKind = Literal[
    "function.created",
    "function.updated",
    "function.deleted",
    "invocation.started",
    "invocation.finished",
    "log",
    "alert.fired",
    "alert.resolved",
    "schedule.fired",
    "schedule.skipped",  # issue 16: schedules
    "build.started",
    "build.log",
    "build.finished",
    # asynchronous invocation (issue 16)
    "async.queued",
    "async.retry_scheduled",
    "async.dead_lettered",
    "async.dead_letters_dropped",  # the oldest past async.max_dead_letters
]
# The one list of kinds: the type above, and this tuple for validating at run time.
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)


class Event(BaseModel):
    """What the event bus carries to the console's live panes, the SSE stream and the alert
    engine. `data` is the JSON form of the subject: a Function, an InvocationRecord, a LogRecord
    or an Alert."""

    seq: int = 0
    kind: EventKind
    time: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)


ALERT_METRICS = (
    "error_rate",
    "success_rate",
    "failures",
    "duration_p95",
    "duration_avg",
    "throttles",
    "timeouts",
    "invocation_rate",
    "cold_starts",
)
AlertMetric = Literal[
    "error_rate",
    "success_rate",
    "failures",
    "duration_p95",
    "duration_avg",
    "throttles",
    "timeouts",
    "invocation_rate",
    "cold_starts",
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
        if v == "all" or (kind == "function" and not name_problem(target)):
            return v
        if kind == "runtime" and target in RUNTIMES:
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


# -- triggers (issue 16): what `function_triggers` answers ------------------------------------------
class ScheduleStatus(BaseModel):
    index: int
    schedule: Schedule
    description: str
    next_run: datetime | None = None  # None: disabled
    last_run: datetime | None = None
    running: int = 0  # runs of it in flight (queued ones included)


class FunctionTriggers(BaseModel):
    """How a function is reached besides a direct call, with the schedules' next runs."""

    function_id: str
    function_name: str
    endpoint: str | None = Field(None, description="the endpoint's URL; None where no server serves it")
    public: bool = False
    rate_limit: RateLimit | None = None
    schedules: list[ScheduleStatus] = Field(default_factory=list)
    schedules_running: bool = Field(False, description="whether the platform's owner runs the schedules now")
    async_settings: AsyncSettings = Field(
        default_factory=AsyncSettings, description="how asynchronous invocations are retried and routed"
    )
