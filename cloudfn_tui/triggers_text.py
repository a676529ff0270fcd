"""A function's triggers in words, for `cloudfn get` and the console's triggers view."""

from __future__ import annotations

from datetime import datetime

from core.models import AsyncSettings, FunctionTriggers


def _when(ts: datetime | None) -> str:
    return ts.astimezone().strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def endpoint_line(t: FunctionTriggers) -> str:
    access = "public, no token" if t.public else "bearer token"
    if t.endpoint:
        return f"{t.endpoint} ({access})"
    return f"/fn/{t.function_name} ({access}); run `cloudfn serve` to expose it"


def async_line(a: AsyncSettings) -> str:
    return (
        f"{a.max_retries} retries, backoff {a.retry_backoff:g}s, max age {a.max_event_age}s"
        + (f", on success {a.on_success}" if a.on_success else "")
        + (f", on failure {a.on_failure}" if a.on_failure else "")
    )


def rate_line(t: FunctionTriggers) -> str:
    if t.rate_limit is None:
        return "none"
    return f"{t.rate_limit.requests_per_second:g} per second, burst {t.rate_limit.burst}"


def schedule_lines(t: FunctionTriggers) -> list[str]:
    if not t.schedules:
        return ["none"]
    out = []
    for s in t.schedules:
        sch = s.schedule
        if not sch.enabled:
            out.append(f"{s.description}  (disabled)")
            continue
        opts = [f"overlap {sch.overlap}"] + (["catch up"] if sch.catch_up else [])
        out.append(f"{s.description}  next {_when(s.next_run)}  last {_when(s.last_run)}  ({', '.join(opts)})")
    if not t.schedules_running:
        out.append("(not running now: schedules run in `cloudfn serve` or the console)")
    return out


def triggers_text(t: FunctionTriggers, width: int = 0) -> str:
    """`width`: the label column's, to line up with the rows above."""
    rows = [("endpoint", [endpoint_line(t)]), ("rate limit", [rate_line(t)]), ("schedules", schedule_lines(t))]
    width = max(width, *(len(k) for k, _ in rows))
    lines = []
    for k, vals in rows:
        lines.append(f"{k.ljust(width)}  {vals[0]}")
        lines += [f"{' ' * width}  {v}" for v in vals[1:]]
    return "\n".join(lines)
