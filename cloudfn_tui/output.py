"""Human output of the command line: aligned tables and short summaries; JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from cloudfn_tui.triggers_text import async_line
from core.models import Function, InvokeResult


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def emit(data: Any, as_json: bool, as_text: Callable[[Any], str]) -> None:
    if as_json:
        print_json(data)
    else:
        print(as_text(data))


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    # not strict: a row may carry cells past the last column (a record's extra fields); the table
    # shows its columns only
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in cells]
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    print(table(headers, rows))


def when(ts: datetime) -> str:
    return ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def print_function_table(fns: list[Function]) -> None:
    if not fns:
        print("no functions yet; create one with `cloudfn create` or `cloudfn deploy DIR`")
        return
    print_table(
        ["NAME", "RUNTIME", "HANDLER", "VERSION", "TIMEOUT", "MEMORY", "UPDATED"],
        [[f.name, f.runtime, f.handler, f.version, f"{f.timeout}s", f"{f.memory}MB", when(f.updated_at)] for f in fns],
    )


def function_text(fn: Function) -> str:
    env = ", ".join(f"{k}={v}" for k, v in fn.environment.items()) or "-"
    rows = [
        ("name", fn.name),
        ("id", fn.id),
        ("runtime", fn.runtime),
        ("handler", fn.handler),
        ("version", fn.version),
        ("timeout", f"{fn.timeout}s"),
        ("memory", f"{fn.memory}MB"),
        ("max concurrency", fn.max_concurrency or "platform limit"),
        ("network", "on" if fn.network else "off"),
        ("environment", env),
        ("secrets", ", ".join(fn.secrets) or "-"),
        ("secret env", ", ".join(f"{k} <- {v}" for k, v in fn.secret_env.items()) or "-"),
        ("description", fn.description or "-"),
        ("created", when(fn.created_at)),
        ("updated", when(fn.updated_at)),
    ]
    if fn.handler_file:  # issue 15: a handler in a subfolder
        rows.insert(4, ("handler file", fn.handler_file))
    if fn.files:
        names = sorted(fn.files)
        shown = ", ".join(names[:8]) + (f", +{len(names) - 8} more" if len(names) > 8 else "")
        rows.insert(4, ("files", f"{len(names)} besides the handler: {shown}"))
    if fn.dependencies.strip():  # issue 15: the manifest's packages, one line (`cloudfn deps` has versions)
        lines = [ln.split("#")[0].strip() for ln in fn.dependencies.splitlines()]
        shown = ", ".join(ln for ln in lines if ln) if fn.runtime == "python" else _npm_names(fn.dependencies)
        rows.append(("dependencies", (shown or "-") + (" (source builds allowed)" if fn.source_builds else "")))
    rows.append(("async", async_line(fn.async_)))  # asynchronous invocation (issue 16)
    width = max(len(k) for k, _ in rows)
    head = "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
    from core.secrets import credential_warnings

    hints = "".join(f"\n⚠ {w}" for w in credential_warnings(fn.environment))
    return f"{head}{hints}\n\n{fn.code.rstrip()}"


def _npm_names(text: str) -> str:
    try:
        deps = json.loads(text).get("dependencies") or {}
        return ", ".join(f"{k}@{v}" for k, v in deps.items())
    except (ValueError, AttributeError):
        return "package.json"


def info_text(info: dict[str, Any]) -> str:
    out = [f"cloudfn {info['version']} ({info['mode']}, Python {info['python']})", "", "paths:"]
    out += [f"  {k:<18} {v}" for k, v in info["paths"].items()]
    out += ["", "settings:"]
    out += [f"  {k:<24} {v['value']!s:<28} {v['source']}" for k, v in info["settings"].items()]
    if info.get("ignored_config"):
        out += ["", "ignored (not used by cloudfn): " + ", ".join(info["ignored_config"])]
    out += ["", "runtimes:"]
    for name, rt in info["runtimes"].items():
        state = rt.get("version") or rt.get("path") or ""
        if not rt.get("available"):
            state = "not found" + (f": {rt['hint']}" if rt.get("hint") else "")
        out.append(f"  {name:<8} {state}")
    if info.get("protections"):
        out += ["", "protections:"]
        for k, v in info["protections"].items():
            if k == "warning":
                if v:
                    out.insert(out.index("protections:") + 1, f"  ⚠ {v}")
                continue
            out.append(f"  {k.replace('_', ' '):<24} {_shown(v)}")
    out += ["", f"functions: {info['functions']}"]
    if info.get("secrets"):  # never a value or the key: where they are and where the key comes from
        s = info["secrets"]
        out.append(f"secrets: {s['count']} in {s['store']}, key from {s['key_source']}")
    if info.get("storage"):  # the URL arrives with its password masked
        st = info["storage"]
        shared = " (shared with other cloudfn processes)" if st.get("shared") else ""
        out.append(f"storage: {st['location']}{shared}")
    if info.get("cluster"):  # cluster mode (issue 18): this gateway, the leader and every node
        c = info["cluster"]
        out += [
            "",
            f"cluster: {c['nats_url']} ({'connected' if c['connected'] else 'NOT CONNECTED'}), this gateway "
            f"{c['node']}, leader {c.get('leader') or '-'}",
        ]
        out.append(f"  {'NODE':<24} {'HEALTH':<7} {'LOAD':>4}/{'CAP':<4} {'WARM':>4} {'SERVED':>7}  RUNTIMES")
        for n in c["nodes"]:
            out.append(
                f"  {n['node']:<24} {n['health']:<7} {n['load']:>4}/{n['capacity']:<4} {n['warm_workers']:>4} "
                f"{n['served']:>7}  {', '.join(n['runtimes'])}"
                + (f"  (silent {n['last_seen_s']:g} s)" if n["health"] == "down" else "")
            )
    return "\n".join(out)


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    return str(value) if value not in (None, "") else "-"


def print_invoke_result(r: InvokeResult) -> None:
    status = "ok" if r.success else f"FAILED {r.error_type.value if r.error_type else ''}".rstrip()
    start = f"cold start, init {r.init_duration:.1f} ms" if r.cold_start else "warm"
    print(f"{status}  {r.duration_ms:.1f} ms  {start}  {r.memory_used:.1f} MB  invocation {r.invocation_id}")
    if r.success:
        print(json.dumps(r.result, indent=2, ensure_ascii=False))
    else:
        print(f"error: {r.error}")
        for frame in r.stack:
            col = f":{frame.column}" if frame.column else ""
            print(f"  at {frame.function or '<anonymous>'} ({frame.file}:{frame.line}{col})")
    if r.logs:
        print("--- logs ---")
        print(r.logs.rstrip("\n"))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}ms"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def metrics_text(snap: dict[str, Any]) -> str:
    o = snap["overall"]
    d = o["duration_ms"]
    if snap.get("source") == "history":  # no owner runs: counted from the stored invocations
        head = f"from the history since {snap['since']}  functions {snap['function_count']}"
    else:
        warm = snap.get("warm_workers")
        head = (
            f"uptime {snap['uptime_seconds']:.0f}s  functions {snap['function_count']}  in flight "
            f"{snap['in_flight']}  warm workers {warm if warm is not None else '-'}"
        )
    lines = [
        head,
        f"invocations {o['invocations']}  success {_pct(o['success_rate'])}  failures {o['failures']}"
        f"  throttles {o['throttles']}  timeouts {o['timeouts']}  cold starts {o['cold_starts']}",
        f"duration avg {_ms(d['avg'])}  min {_ms(d['min'])}  max {_ms(d['max'])}"
        f"  p50 {_ms(d['p50'])}  p95 {_ms(d['p95'])}  p99 {_ms(d['p99'])}",
    ]
    if o["errors_by_type"]:
        lines.append("errors: " + ", ".join(f"{k} {v}" for k, v in sorted(o["errors_by_type"].items())))
    for title, group in (("FUNCTION", snap["functions"]), ("RUNTIME", snap["runtimes"])):
        if group:
            lines += [
                "",
                table(
                    [title, "CALLS", "SUCCESS", "FAIL", "THROTTLED", "COLD", "P50", "P95", "P99", "MAX"],
                    [
                        [
                            name,
                            s["invocations"],
                            _pct(s["success_rate"]),
                            s["failures"],
                            s["throttles"],
                            s["cold_starts"],
                            _ms(s["duration_ms"]["p50"]),
                            _ms(s["duration_ms"]["p95"]),
                            _ms(s["duration_ms"]["p99"]),
                            _ms(s["duration_ms"]["max"]),
                        ]
                        for name, s in group.items()
                    ],
                ),
            ]
    sched = snap.get("scheduling") or {}
    if sched:  # how invocations found a worker (issue 19)
        lines += [
            "",
            table(
                [
                    "WORKERS OF",
                    "STARTED",
                    "START AVG",
                    "BACKGROUND",
                    "SPARE",
                    "CLONES",
                    "WAITS",
                    "WAIT P50",
                    "WAIT P99",
                    "WAIT MAX",
                ],
                [
                    [
                        name,
                        s["workers_started"],
                        _ms(s["start_ms_avg"]),
                        s["background_starts"],
                        s["spare_starts"],
                        s["clones"],
                        s["queue_waits"],
                        _ms(s["queue_wait_ms"]["p50"]),
                        _ms(s["queue_wait_ms"]["p99"]),
                        _ms(s["queue_wait_ms"]["max"]),
                    ]
                    for name, s in sorted(sched.items())
                ],
            ),
        ]
    return "\n".join(lines)


def invocation_text(rec: Any) -> str:
    """One invocation for a reader: what ran, how it went, then its event, result and logs."""
    cut = " (cut)"
    start = "warm"
    if rec.cold_start:
        start = "cold start" + (f" (init {rec.init_duration:.1f}ms)" if rec.init_duration else "")
    memory = f"  memory {rec.memory_used:.1f}MB" if rec.memory_used else ""
    lines = [
        f"invocation {rec.id}",
        f"function   {rec.function_name} (version {rec.function_version}, {rec.runtime})",
        f"started    {when(rec.started_at)}",
        f"status     {rec.status}" + (f": {rec.error_type}" if rec.error_type else ""),
        f"duration   {rec.duration:.1f}ms  {start}{memory}",
        "",
        "event" + (cut if rec.event_truncated else "") + ":",
        _indent(_pretty(rec.event)),
    ]
    if rec.error:
        lines += ["error:", _indent(rec.error)]
    else:
        lines += ["result" + (cut if rec.result_truncated else "") + ":", _indent(_pretty(rec.result))]
    if rec.logs:
        lines += ["logs" + (cut if rec.logs_truncated else "") + ":", _indent(rec.logs.rstrip("\n"))]
    return "\n".join(lines)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines()) or "  (none)"
