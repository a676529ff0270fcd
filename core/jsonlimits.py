"""JSON that every part of the platform can store, send and read back.

Python's `json` accepts things that break later, far from where they came in: an escaped lone
surrogate ("\\ud800") decodes to a str that UTF-8 cannot encode (the history line, the response
and the SSE event then fail); an integer of more than 4,300 digits raises ValueError on parsing
and on printing; `NaN`/`Infinity` are not JSON; nesting near the interpreter's recursion limit
raises RecursionError in whatever walks it next. `loads_checked` refuses all of these and names
where each one is; `json_safe` turns a value that already holds one (a function's result, an
event from the console) into one that can be recorded.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 128  # arrays and objects inside each other; real payloads stay far below
MAX_INT_DIGITS = 4300  # CPython's own int <-> str limit (sys.get_int_max_str_digits)
_MAX_INT_BITS = int(MAX_INT_DIGITS * 3.3219)  # about that many decimal digits
MAX_ERRORS = 20
REPLACEMENT = "\ufffd"

SURROGATE = re.compile("[\ud800-\udfff]")
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{},:]')
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]{1,40}\Z")


class JSONLimitError(ValueError):
    """`problems`: (path parts, message) for each place the document breaks a limit."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]):
        self.problems = problems
        super().__init__("; ".join(f"{field_path(p)}: {m}" for p, m in problems))


class _Refused:
    """Stands in for a number the parser must not build; the walk reports it with its path."""

    __slots__ = ("why",)

    def __init__(self, why: str):
        self.why = why


def _parse_int(text: str) -> Any:
    digits = len(text) - (text[0] == "-")
    if digits > MAX_INT_DIGITS:
        return _Refused(
            f"is a whole number of {digits} digits; at most {MAX_INT_DIGITS} are accepted "
            f"(send a larger number as a string)"
        )
    return int(text)


def _parse_float(text: str) -> Any:
    value = float(text)
    if not math.isfinite(value):
        return _Refused(f"is a number too large for a 64-bit float ({text[:20]}…); send it as a string")
    return value


def _parse_constant(text: str) -> Any:
    return _Refused(f"is {text}, which is not JSON (send null, a number or a string)")


def field_path(parts: tuple[str | int, ...] | list[str | int], root: str = "body") -> str:
    """`event.a.b[3]`; a key that is not plain is quoted, a long path keeps its two ends."""
    if not parts:
        return root
    out = []
    for i, p in enumerate(parts):
        if isinstance(p, int):
            out.append(f"[{p}]")
        elif _PLAIN_KEY.match(p):
            out.append(p if i == 0 else "." + p)
        else:
            out.append("[" + json.dumps(p[:40] + ("…" if len(p) > 40 else "")) + "]")
    if len(out) > 12:
        out = out[:6] + [f"…({len(out) - 9} more)…"] + out[-3:]
    return "".join(out)


def loads_checked(raw: bytes | str) -> Any:
    """json.loads, refusing lone surrogates, huge integers, NaN/Infinity and deep nesting with a
    JSONLimitError naming each place. Raises json.JSONDecodeError / UnicodeDecodeError as
    json.loads does for text that is not JSON at all."""
    refused: list[_Refused] = []

    def hook(parse: Any) -> Any:
        def parse_noting(text: str) -> Any:
            v = parse(text)
            if isinstance(v, _Refused):
                refused.append(v)
            return v

        return parse_noting

    # Integers go through the C parser's own fast path, which raises ValueError past CPython's
    # digit limit; only then is the text parsed again with a hook that finds where. (A hook for
    # every integer made a list of ints 5x slower to parse.)
    try:
        value = json.loads(raw, parse_float=hook(_parse_float), parse_constant=hook(_parse_constant))
    except RecursionError:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        raise JSONLimitError([(_path_past_depth(text, MAX_DEPTH) or (), _deep_message())]) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError:
        value = json.loads(
            raw, parse_int=hook(_parse_int), parse_float=hook(_parse_float), parse_constant=hook(_parse_constant)
        )
    # Each check below walks only when the raw text can hold its problem: the hot path (a small
    # invoke body) pays for a few substring counts.
    if isinstance(raw, bytes):
        brackets, escapes = raw.count(b"[") + raw.count(b"{"), b"\\u" in raw
    else:
        brackets, escapes = raw.count("[") + raw.count("{"), "\\u" in raw
    deep = brackets > MAX_DEPTH
    if refused or escapes or deep:
        problems = _problems(value, deep, escapes)
        if problems:
            raise JSONLimitError(problems)
    return value


def _deep_message() -> str:
    return (
        f"is nested more than {MAX_DEPTH} levels deep (arrays and objects inside each other); "
        f"flatten it or send the inner part as a string"
    )


def _surrogate_message(what: str) -> str:
    return (
        f"{what} holds a lone UTF-16 surrogate escape (such as \\ud800), which is not a Unicode character; "
        f"send a full surrogate pair or the character itself"
    )


def _problems(value: Any, deep: bool, surrogates: bool) -> list[tuple[tuple[str | int, ...], str]]:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    stack: list[tuple[Any, tuple[str | int, ...], int]] = [(value, (), 1)]
    while stack and len(problems) < MAX_ERRORS:
        v, path, depth = stack.pop()
        if isinstance(v, dict):
            if deep and depth > MAX_DEPTH:
                problems.append((path, _deep_message()))
                continue
            for k, item in reversed(list(v.items())):
                if surrogates and SURROGATE.search(k):
                    problems.append((path + (k.encode("utf-8", "replace").decode(),), _surrogate_message("the key")))
                    continue
                stack.append((item, path + (k,), depth + 1))
        elif isinstance(v, list):
            if deep and depth > MAX_DEPTH:
                problems.append((path, _deep_message()))
                continue
            for i in range(len(v) - 1, -1, -1):
                stack.append((v[i], path + (i,), depth + 1))
        elif isinstance(v, str):
            if surrogates and SURROGATE.search(v):
                problems.append((path, _surrogate_message("the string")))
        elif isinstance(v, _Refused):
            problems.append((path, v.why))
    return problems


def _path_past_depth(text: str, limit: int) -> tuple[str | int, ...] | None:
    """The path of the first container nested deeper than `limit`, found by a scan of the text
    (the parser gave up with RecursionError, so there is no tree to walk)."""
    stack: list[list[Any]] = []  # [key or index] per open container; None: an object before its first key
    last = None
    for m in _TOKEN.finditer(text):
        t = m.group()
        if t[0] == '"':
            last = t
        elif t in "[{":
            if len(stack) >= limit:
                return tuple(s[0] for s in stack)
            stack.append([0, True] if t == "[" else [None, False])
        elif t in "]}":
            if stack:
                stack.pop()
        elif t == ":" and stack and not stack[-1][1] and last is not None:
            try:
                stack[-1][0] = json.loads(last)
            except ValueError:
                stack[-1][0] = last.strip('"')
        elif t == "," and stack and stack[-1][1]:
            stack[-1][0] += 1
    return None


def json_safe(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` that encodes as UTF-8 JSON and reads back: lone surrogates become
    U+FFFD, integers past the digit limit and non-finite floats become a note (a string), what
    is nested past MAX_DEPTH is cut with a note, and anything else that is not JSON becomes
    its str()."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > _MAX_INT_BITS:
            return f"(a whole number of about {int(value.bit_length() / 3.3219)} digits, too long to keep)"
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if value.isascii() or not SURROGATE.search(value) else SURROGATE.sub(REPLACEMENT, value)
    if _depth >= MAX_DEPTH:
        return f"(nested more than {MAX_DEPTH} levels deep, cut)"
    if isinstance(value, dict):
        return {json_safe(str(k)): json_safe(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v, _depth + 1) for v in value]
    try:
        return json_safe(str(value))
    except Exception:  # a str() that raises: say what it was rather than lose the record
        return f"(an unprintable {type(value).__name__})"
