"""What the OpenAPI document says, kept true: the bodies every route answers, the statuses it can
answer, the exact rules of request bodies and query parameters, and the strict parsing of those
query parameters (the document and the parser are built from the same constants here).

A schema fuzzer (schemathesis, tests/reliability/test_server_fuzz.py) checks the running server
against this document: any response or status not declared here, any request the document
allows but the server refuses, or the reverse, is a failure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import BaseModel, Field

from core.errors import FieldError, InvalidInput
from core.funcfiles import (
    FILES_RULE,
    MANIFEST,
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_PATH_CHARS,
    MAX_TOTAL_BYTES,
    path_pattern,
)
from core.models import (  # the model classes are re-exported for app.py's bodies
    ALERT_METRICS,
    ASYNC_AGE_RANGE,
    ASYNC_BACKOFF_RANGE,
    ASYNC_RETRIES_RANGE,
    CONCURRENCY_RANGE,
    CRON_PATTERN,
    ENV_KEY_RE,
    EVENT_KINDS,
    EVERY_PATTERN,
    HANDLER_RE,
    MAX_CODE_BYTES,
    MAX_SCHEDULES,
    MEMORY_RANGE,
    NAME_RULE,
    RATE_MAX,
    READ_ONLY_FIELDS,
    RUNTIME_ALIASES,
    RUNTIMES,
    SECRET_NAME_RE,
    TIMEOUT_RANGE,
    Alert,
    AlertRule,
    AlertRuleSpec,  # noqa: F401
    Function,
    FunctionPatch,  # noqa: F401
    FunctionSpec,  # noqa: F401
    InvocationRecord,
    InvokeResult,
    LogRecord,
    SavedEvent,
    name_pattern,
    timezones,
    validation_errors,
)

JSON_TYPE = "application/json"


# Stands for the name pattern until the document is served: the pattern is built from the
# Unicode tables (~0.3 s), which `serve` should not pay at every start.
NAME_MARK = "<cloudfn-function-name>"
PATH_MARK = "<cloudfn-file-path>"  # likewise, a function's file path (core/funcfiles.py)


def fill_name_patterns(node: Any) -> None:
    """Put the real name pattern where NAME_MARK stands in a generated document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str) and NAME_MARK in value:
                full = name_pattern()
                node[key] = full if value == NAME_MARK else value.replace(NAME_MARK, full[1:-1])
            elif key == "patternProperties" and isinstance(value, dict) and PATH_MARK in value:
                # built like the name pattern, so filled in the same place
                node[key] = {path_pattern(): value[PATH_MARK]}
            else:
                fill_name_patterns(value)
    elif isinstance(node, list):
        for item in node:
            fill_name_patterns(item)


def ecma(pattern: re.Pattern[str]) -> str:
    """A Python pattern anchored with `\\Z` as a JSON Schema (ECMA 262) one, where `$` is the end."""
    return pattern.pattern.replace(r"\Z", "$")


# Python's str.strip()/isspace() whitespace, spelled out so every regex dialect agrees.
PY_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{PY_SPACE}]"  # "has a character that is not whitespace"


# -- response bodies ------------------------------------------------------------------------------
class FieldProblem(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: `{"error", "type", "status"}`; invalid input adds `what` and `errors`."""

    error: str
    type: str = Field(description="the error class: InvalidInput, NotFound, Conflict, Unauthorized, ...")
    status: int
    what: str | None = Field(None, description="invalid input only: what was invalid")
    errors: list[FieldProblem] | None = Field(None, description="invalid input only: every bad field")
    log: str | None = Field(None, description="BuildError only: the dependency installer's output")


class Message(BaseModel):
    message: str


class FunctionAnswer(BaseModel):
    function: Function


class FunctionChanged(BaseModel):
    message: str
    function: Function
    # secrets (issue 17): environment keys that look like credentials, on create and update (absent: none)
    warnings: list[str] = Field(default_factory=list)


class FunctionList(BaseModel):
    functions: list[Function]
    count: int


class VersionList(BaseModel):
    versions: list[Function]
    count: int


class InvocationList(BaseModel):
    invocations: list[InvocationRecord]
    count: int


class InvocationAnswer(BaseModel):
    invocation: InvocationRecord


class SavedEventList(BaseModel):
    saved_events: list[SavedEvent]
    count: int


class SavedEventChanged(BaseModel):
    message: str
    saved_event: SavedEvent


class LogList(BaseModel):
    logs: list[LogRecord]
    count: int


class RuleList(BaseModel):
    rules: list[AlertRule]
    count: int


class RuleChanged(BaseModel):
    message: str
    rule: AlertRule


class AlertList(BaseModel):
    alerts: list[Alert]
    count: int


class Health(BaseModel):
    model_config = {"extra": "allow"}
    status: str
    service: str
    version: str
    api: int


_WHY = {
    400: "the body is not valid JSON",
    401: "no bearer token, or a wrong one",
    404: "no such function, invocation, saved event, alert rule or route",
    409: "the name is taken",
    413: "the body is larger than the server's limit",
    422: "invalid input: every bad field is named",
    503: "the server is shutting down",
}


def responses(
    ok: Any,
    *errors: int,
    status: int = 200,
    auth: bool = True,
    ok_content: dict[str, Any] | None = None,
    description: str = "OK",
) -> dict[int | str, Any]:
    """The `responses` of a route: its answer, the error statuses it can give, and the guard's
    (401 without the token, 413 for a body past the limit, 503 while shutting down)."""
    out: dict[int | str, Any] = {status: {"description": description}}
    if ok_content is not None:
        out[status]["content"] = ok_content
    elif ok is not None:
        out[status]["model"] = ok
    for code in sorted({*errors, 413, 503, *((401,) if auth else ())}):
        out[code] = {"model": ErrorBody, "description": _WHY[code]}
    return out


def invoke_responses() -> dict[int | str, Any]:
    out = responses(
        InvokeResult,
        400,
        404,
        422,
        description="the function ran: `success` tells whether it succeeded; a failure also "
        "names its type in the X-Cloudfn-Error-Type header",
    )
    out[429] = {
        "model": InvokeResult,
        "description": "throttled: the platform's limit and queue are full (`error_type` Throttled; see Retry-After)",
    }
    return out


# -- request bodies -------------------------------------------------------------------------------
_IGNORED = {"description": "read-only: accepted (so a GET-then-PUT round trip works) and ignored"}


def _schedule_schema() -> dict[str, Any]:
    """Exactly what core.models.Schedule accepts: one of cron (with an optional time zone) or
    every; the same patterns and the same list of zones."""

    def given(name: str) -> dict[str, Any]:
        return {"required": [name], "properties": {name: {"type": "string"}}}

    return {
        "type": "object",
        "additionalProperties": False,
        "description": "exactly one of cron or every; timezone goes with cron only",
        "properties": {
            "cron": {
                "type": ["string", "null"],
                "pattern": CRON_PATTERN,
                "description": "5 fields (minute hour day month weekday), or 6 with seconds first, "
                "one space apart; or @hourly, @daily...",
            },
            "every": {
                "type": ["string", "null"],
                "pattern": EVERY_PATTERN,
                "description": "an interval of at least 1s, a whole number and a unit: 1500ms, 30s, 5m, 1h",
            },
            "event": {"description": "any JSON value, the event of each run"},
            "timezone": {
                "type": ["string", "null"],
                "enum": [*sorted(timezones()), None],
                "description": "an IANA zone (cron only); default: the server's",
            },
            "overlap": {"type": "string", "enum": ["skip", "queue"], "default": "skip"},
            "catch_up": {"type": "boolean", "default": False},
            "enabled": {"type": "boolean", "default": True},
        },
        "oneOf": [
            {**given("cron"), "not": given("every")},
            {**given("every"), "not": {"anyOf": [given("cron"), given("timezone")]}},
        ],
    }


def _function_properties(patch: bool) -> dict[str, Any]:
    runtimes = [*RUNTIMES, *RUNTIME_ALIASES]
    t0, t1 = TIMEOUT_RANGE
    m0, m1 = MEMORY_RANGE
    c0, c1 = CONCURRENCY_RANGE
    props: dict[str, Any] = {
        "name": {"type": "string", "pattern": NAME_MARK, "description": f"unique without regard to case: {NAME_RULE}"},
        "runtime": {
            "type": "string",
            "enum": runtimes,
            "description": "python, nodejs or go (aliases: " + ", ".join(RUNTIME_ALIASES) + ")",
        },
        "code": {
            "type": "string",
            "pattern": NOT_BLANK,
            "maxLength": MAX_CODE_BYTES,
            "description": f"the source; not blank, at most {MAX_CODE_BYTES // 1024} KiB of UTF-8",
        },
        "handler": {"type": "string", "pattern": ecma(HANDLER_RE), "description": "the function to call"},
        "timeout": {"type": "integer", "minimum": t0, "maximum": t1, "description": "seconds"},
        "memory": {"type": "integer", "minimum": m0, "maximum": m1, "description": "MB"},
        "environment": {
            "type": "object",
            "propertyNames": {"pattern": ecma(ENV_KEY_RE)},
            # no NUL: the models refuse it (it would cut a variable short)
            "additionalProperties": {"type": "string", "pattern": "^[^\\u0000]*$"},
        },
        "description": {"type": "string", "maxLength": 1024},
        "max_concurrency": {
            "type": ["integer", "null"],
            "minimum": c0,
            "maximum": c1,
            "description": "parallel invocations; null: the platform's limit",
        },
        "network": {"type": "boolean", "description": "allow network access (off by default)"},
        # -- secrets (issue 17)
        "secrets": {
            "type": "array",
            "items": {"type": "string", "pattern": ecma(SECRET_NAME_RE)},
            "description": "secrets mounted read-only at /run/secrets/<name> (each must exist)",
        },
        "secret_env": {
            "type": "object",
            "propertyNames": {"pattern": ecma(ENV_KEY_RE)},
            "additionalProperties": {"type": "string", "pattern": ecma(SECRET_NAME_RE)},
            "description": "environment variable -> secret name (the secret is held implicitly)",
        },
        # -- triggers (issue 16) --
        "http": {
            "type": "object",
            "additionalProperties": False,
            "description": "the endpoint /fn/<name>",
            "properties": {"public": {"type": "boolean", "description": "answer without a token"}},
        },
        "rate_limit": {
            "type": ["object", "null"],
            "additionalProperties": False,
            "required": ["requests_per_second"],
            "description": "a token bucket; null: no limit",
            "properties": {
                "requests_per_second": {"type": "number", "exclusiveMinimum": 0, "maximum": RATE_MAX},
                "burst": {"type": ["integer", "null"], "minimum": 1, "maximum": RATE_MAX},
            },
        },
        "schedules": {"type": "array", "maxItems": MAX_SCHEDULES, "items": _schedule_schema()},
        # -- multi-file functions (issue #15)
        "files": {
            "type": "object",
            "maxProperties": MAX_FILES,
            # patternProperties, not propertyNames: fuzzers (and most generators) honour it
            # text: no NUL; a quarter of the byte limit in characters always fits in UTF-8
            "patternProperties": {
                PATH_MARK: {"type": "string", "pattern": "^[^\\u0000]*$", "maxLength": MAX_FILE_BYTES // 4}
            },
            "additionalProperties": False,
            "description": (
                f"the function's other files, {{relative path: UTF-8 text}}; the handler file is "
                f"`code`. Paths: {FILES_RULE}, not the runtime's handler file, {MANIFEST} or "
                f"names starting with .cloudfn or cloudfn_. At most {MAX_FILES} files, "
                f"{MAX_FILE_BYTES} bytes each, {MAX_TOTAL_BYTES} in all; text only"
                + ("; given on update it replaces every file ({} removes them), absent: unchanged" if patch else "")
            ),
        },
        # -- dependencies (issue 15) --
        "dependencies": {
            "type": "string",
            "maxLength": 64 * 1024,
            "description": "requirements.txt (python) or package.json (nodejs) text; installed "
            "before the version becomes current (422 BuildError with the log if not)",
        },
        "source_builds": {"type": "boolean", "description": "allow building Python dependencies from sdists"},
        # -- asynchronous invocation (issue 16) --
        "async": {
            "type": "object",
            "additionalProperties": False,
            "description": "how asynchronous invocations are retried; replaced as a whole on update",
            "properties": {
                "max_retries": {
                    "type": "integer",
                    "minimum": ASYNC_RETRIES_RANGE[0],
                    "maximum": ASYNC_RETRIES_RANGE[1],
                    "default": 2,
                },
                "max_event_age": {
                    "type": "integer",
                    "minimum": ASYNC_AGE_RANGE[0],
                    "maximum": ASYNC_AGE_RANGE[1],
                    "default": ASYNC_AGE_RANGE[1],
                    "description": "seconds",
                },
                "retry_backoff": {
                    "type": "number",
                    "minimum": ASYNC_BACKOFF_RANGE[0],
                    "maximum": ASYNC_BACKOFF_RANGE[1],
                    "default": 1.0,
                    "description": "seconds before the first retry, doubled each time",
                },
                **{
                    key: {
                        "type": ["string", "null"],
                        "maxLength": 2048,
                        "pattern": f"^(|https?://[^/\\s]+\\S*|{NAME_MARK})$",
                        "description": "a function's name or an http(s) webhook URL; empty or null: none",
                    }
                    for key in ("on_success", "on_failure")
                },
            },
        },
        # -- subfolder handlers (issue 15) --
        "handler_file": {
            "type": "string",
            "maxLength": MAX_PATH_CHARS,
            "pattern": r"^(|[^\\/\u0000-\u001f][^\\\u0000-\u001f]*\.(py|c?js|go))$",
            "description": (
                "where the handler file (`code`) sits in the function folder, e.g. "
                "src/main.py (python: .py, nodejs: .js or .cjs; go: main.go only); "
                "its folder is importable. Empty: the runtime's default at the top"
                + ("; absent: unchanged" if patch else "")
            ),
        },
    }
    if not patch:
        props["handler"]["default"] = "handler"
        props["timeout"]["default"] = 30
        props["memory"]["default"] = 128
        props["network"]["default"] = False
    # The seed's Go clients send every field, unset ones as zero values: 0, "" or null mean "the
    # default" on create and "unchanged" on update (see core.models.drop_zero_values).
    zero = "0 or absent: the default" if not patch else "0 or absent: unchanged"
    for key, (lo, hi) in (("timeout", (t0, t1)), ("memory", (m0, m1))):
        props[key] = {
            "type": "integer",
            "anyOf": [{"const": 0}, {"minimum": lo, "maximum": hi}],
            "description": f"{props[key]['description']}; {zero}",
            **({"default": props[key]["default"]} if "default" in props[key] else {}),
        }
    props["handler"]["pattern"] = "^$|" + props["handler"]["pattern"]
    props["environment"]["type"] = ["object", "null"]
    if patch:
        props["name"]["pattern"] = f"^(|{NAME_MARK})$"
        props["runtime"]["enum"] = ["", *runtimes]
        props["code"]["pattern"] = "^$|" + NOT_BLANK
    for name in READ_ONLY_FIELDS:
        props[name] = dict(_IGNORED)
    return props


def function_body(patch: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": _function_properties(patch),
        "additionalProperties": False,
    }
    if not patch:
        schema["required"] = ["name", "runtime", "code"]
    return body(schema)


def _rule_properties() -> dict[str, Any]:
    fn_name = NAME_MARK
    return {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"},
        "metric": {"type": "string", "enum": list(ALERT_METRICS)},
        "comparison": {"type": "string", "enum": [">", ">=", "<", "<="], "default": ">"},
        "threshold": {"type": "number"},
        "scope": {
            "type": "string",
            "pattern": f"^(all|function:{fn_name}|runtime:({'|'.join(RUNTIMES)}))$",
            "default": "all",
            "description": "all, function:NAME or runtime:RUNTIME",
        },
        "window": {
            "type": "integer",
            "minimum": 1,
            "maximum": 86400,
            "default": 300,
            "description": "seconds of data the metric is computed over",
        },
        "for": {
            "type": "integer",
            "minimum": 0,
            "maximum": 86400,
            "default": 0,
            "description": "seconds the condition must hold before firing",
        },
        "severity": {"type": "string", "enum": ["info", "warning", "critical"], "default": "warning"},
        "enabled": {"type": "boolean", "default": True},
        "webhook": {
            "type": ["string", "null"],
            "pattern": "^(https?://|$)",
            "description": "an http:// or https:// URL (Alertmanager's body); empty or null: none",
        },
        "description": {"type": "string", "default": ""},
    }


def rule_body(patch: bool = False) -> dict[str, Any]:
    props = _rule_properties()
    if patch:
        for p in props.values():
            p.pop("default", None)
        for name in ("id", "created_at", "updated_at"):
            props[name] = dict(_IGNORED)
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if not patch:
        schema["required"] = ["name", "metric", "threshold"]
    return body(schema)


ROLLBACK_BODY = {
    "type": "object",
    "required": ["version"],
    "additionalProperties": False,
    "properties": {"version": {"type": "integer", "minimum": 1}},
}
SAVED_EVENT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"event": {"description": "any JSON value"}, "last_result": {"type": ["object", "null"]}},
}
INVOKE_BODY = {
    "type": "object",
    "properties": {
        "event": {"description": "any JSON value, passed to the handler as `event`"},
        "context": {
            "type": ["object", "null"],
            "additionalProperties": {"type": "string"},
            "description": "a map of strings, merged into the handler's `context`",
        },
    },
    "additionalProperties": False,
    "example": {"event": {"name": "World"}, "context": {"user": "test"}},
}


def body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {JSON_TYPE: {"schema": schema}}}}


_JSON_TYPES = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
    "null": (type(None),),
}


def type_errors(schema: dict[str, Any], data: dict[str, Any]) -> list[FieldError]:
    """The fields of a JSON object body whose JSON type is not the documented one. The models
    behind the platform are lenient (pydantic's lax mode takes "5" for 5 and 1 for true, which
    the console's forms rely on); the HTTP API takes what its document says."""
    errors = []
    props = schema.get("properties", {})
    for key, value in data.items():
        want = props.get(key, {}).get("type")
        if want is None:
            continue
        wants = [want] if isinstance(want, str) else want
        ok = False
        for w in wants:
            if w in ("integer", "number") and isinstance(value, bool):
                continue
            whole = w == "integer" and isinstance(value, float) and value.is_integer()
            if isinstance(value, _JSON_TYPES[w]) or whole:
                ok = True
                break
        if not ok:
            errors.append(FieldError(key, f"must be {' or '.join(wants)} (got {value!r})"))
    return errors


def check_body(
    schema: dict[str, Any], data: dict[str, Any], what: str, model: Any = None, base: dict[str, Any] | None = None
) -> None:
    """Raise InvalidInput when a field's JSON type is not the documented one, naming every bad
    field: the wrongly typed ones, and what `model` (the platform's own validation, given `base`
    for a partial update) says of the others."""
    bad = type_errors(schema["requestBody"]["content"][JSON_TYPE]["schema"], data)
    if not bad:
        return
    if model is not None:
        named = {e.field for e in bad}
        rest = {k: v for k, v in data.items() if k not in named and k not in READ_ONLY_FIELDS}
        bad += [e for e in validation_errors(model, {**(base or {}), **rest}) if e.field.split(".")[0] not in named]
    raise InvalidInput(what, bad)


# -- query parameters: their schemas and their parsing ------------------------------------------------
TIME_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "description": "an RFC 3339 time with its offset, such as 2024-05-01T12:00:00Z",
}
LEVELS = ("debug", "info", "warning", "warn", "error", "critical")
LEVEL_CHOICES = (*LEVELS, *(lv.upper() for lv in LEVELS))
STATUSES = ("success", "failed", "throttled")
_KIND = "|".join(re.escape(k) for k in EVENT_KINDS)
KINDS_PATTERN = f"^[ \\t]*({_KIND})?[ \\t]*(,[ \\t]*({_KIND})?[ \\t]*)*$"


def int_schema(lo: int | None, hi: int | None, default: int) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "integer", "default": default}
    if lo is not None:
        s["minimum"] = lo
    if hi is not None:
        s["maximum"] = hi
    return s


def param(
    name: str, schema: dict[str, Any], description: str = "", where: str = "query", required: bool = False
) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "required": required or where == "path", "schema": schema}
    if description:
        p["description"] = description
    return p


def params(*items: dict[str, Any]) -> dict[str, Any]:
    return {"parameters": list(items)}


_INT = re.compile(r"-?[0-9]+")
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


class Query:
    """Parses a route's query parameters exactly as the document describes them, collecting
    every bad one into a single InvalidInput."""

    def __init__(self, query: Mapping[str, str], what: str):
        self.query = query
        self.what = what
        self.errors: list[FieldError] = []

    def text(self, name: str) -> str | None:
        return self.query.get(name)

    def integer(self, name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        if not _INT.fullmatch(raw):
            self.errors.append(FieldError(name, f"must be a whole number (got {raw!r})"))
            return default
        value = int(raw)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            span = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            self.errors.append(FieldError(name, f"must be {span} (got {value})"))
            return default
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str | None:
        raw = self.query.get(name)
        if raw is not None and raw not in choices:
            self.errors.append(FieldError(name, f"must be one of {', '.join(choices)} (got {raw!r})"))
            return None
        return raw

    def time(self, name: str) -> datetime | None:
        raw = self.query.get(name)
        if raw is None:
            return None
        value = parse_time(raw)
        if value is None:
            self.errors.append(
                FieldError(name, f"must be an RFC 3339 time with an offset, such as 2024-05-01T12:00:00Z (got {raw!r})")
            )
        return value

    def done(self) -> None:
        if self.errors:
            raise InvalidInput(self.what, self.errors)


def parse_time(raw: str) -> datetime | None:
    """RFC 3339 `date-time`, as JSON Schema's format means it: an offset is required, a leap
    second is read as :59, year 0 as the earliest time there is."""
    m = _RFC3339.fullmatch(raw)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zulu, sign, oh, om = m.group(7), m.group(8), m.group(9), m.group(10), m.group(11)
    if hour > 23 or minute > 59 or second > 60:
        return None
    if zulu:
        tz = UTC
    else:
        if int(oh) > 23 or int(om) > 59:
            return None
        offset = timedelta(hours=int(oh), minutes=int(om))
        tz = timezone(-offset if sign == "-" else offset)
    try:  # validates the day of the month (year 0 is a leap year, like 2000)
        datetime(year or 2000, month, day)
    except ValueError:
        return None
    if year == 0:
        return datetime.min.replace(tzinfo=UTC)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    return datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=tz)


# A complete rule that partial updates are judged against, so only the fields sent are named.
RULE_BASE = {"name": "x", "metric": "failures", "threshold": 0}
