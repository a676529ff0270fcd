"""Helpers for the executor tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import os
from typing import Any

from core.models import Function


def fn(runtime: str, code: str, **kw: Any) -> Function:
    kw.setdefault("name", f"t-{runtime}")
    kw.setdefault("timeout", 10)
    return Function(runtime=runtime, code=code, **kw)


def processes_matching(text: str) -> list[int]:
    """Host pids whose command line contains `text`."""
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(int(d))
    return found
