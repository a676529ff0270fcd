"""A quick syntax check of a function's code, as the editor saves it.

Advisory: a save goes ahead whatever it says (a draft mid-way through a change is still worth
keeping as a version). Python is compiled in process; Node and Go are checked by their own tools
on a temp file, with a short timeout, and a missing tool means no check rather than an error.
Blocking: callers off an event loop run it in a thread."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 3.0


@dataclass(frozen=True)
class SyntaxProblem:
    line: int  # 1-based, in the code as the user wrote it
    column: int | None
    message: str


def check_syntax(runtime: str, code: str, timeout: float = TIMEOUT) -> SyntaxProblem | None:
    try:
        if runtime == "python":
            return _python(code)
        if runtime == "nodejs":
            return _node(code, timeout)
        if runtime == "go":
            return _go(code, timeout)
    except (OSError, subprocess.SubprocessError):
        return None  # no verdict: the tool is missing, hung or failed to start
    return None


def _python(code: str) -> SyntaxProblem | None:
    try:
        compile(code, "handler.py", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return SyntaxProblem(exc.lineno or 1, exc.offset, exc.msg)
    except ValueError as exc:  # e.g. a NUL byte in the source
        return SyntaxProblem(1, None, str(exc))
    return None


def _run_on_file(argv: list[str], suffix: str, code: str, timeout: float) -> tuple[str, str]:
    with tempfile.TemporaryDirectory(prefix="cloudfn-check-") as folder:
        path = Path(folder) / f"handler{suffix}"
        path.write_text(code, encoding="utf-8")
        done = subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=timeout)
        return done.stderr if done.returncode else "", path.name


def _node(code: str, timeout: float) -> SyntaxProblem | None:
    node = shutil.which("node")
    if node is None:
        return None
    err, name = _run_on_file([node, "--check"], ".js", code, timeout)
    if not err:
        return None
    # "/tmp/…/handler.js:3\n<the line>\n   ^\n\nSyntaxError: Unexpected token '}'"
    where = re.search(re.escape(name) + r":(\d+)", err)
    message = next((line for line in err.splitlines() if "Error" in line), err.strip().splitlines()[-1])
    caret = re.search(r"\n( *)\^", err)
    column = len(caret.group(1)) + 1 if caret else None
    return SyntaxProblem(int(where.group(1)) if where else 1, column, message.strip())


_PACKAGE = re.compile(r"^\s*package\s+\w+", re.M)


def _go(code: str, timeout: float) -> SyntaxProblem | None:
    gofmt = shutil.which("gofmt")
    if gofmt is None:
        return None
    # The platform accepts code without a package clause (it adds one); gofmt does not.
    added = 0 if _PACKAGE.search(code) else 1
    err, name = _run_on_file([gofmt, "-e", "-l"], ".go", "package main\n" * added + code, timeout)
    first = re.search(re.escape(name) + r":(\d+):(\d+): (.*)", err)
    if first is None:
        return None
    line = max(1, int(first.group(1)) - added)
    return SyntaxProblem(line, int(first.group(2)), first.group(3).strip())
