"""Python functions: `def handler(event, context)` or `async def`, any handler name."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path
from typing import Any

from core.models import Function, InvokeResult

from ..sandbox import Mount
from ..worker import WorkerInit
from .base import FUNCTION_DIR, RUNNERS_DIR, RUNTIME_DIR, Runtime


def _interpreter() -> tuple[str, str]:
    """(the real interpreter, the install prefix to show the sandbox). The venv shim is skipped:
    workers run isolated (-I -S), with the standard library only."""
    exe = os.path.realpath(sys.executable)
    prefix = os.path.realpath(sys.base_prefix)
    return exe, prefix


class PythonRuntime(Runtime):
    name = "python"
    code_file = "handler.py"

    def info(self) -> dict[str, Any]:
        exe, _ = _interpreter()
        return {"available": os.access(exe, os.X_OK), "version": sys.version.split()[0], "path": exe,
                "hint": "" if os.access(exe, os.X_OK) else "the platform's own Python runs Python functions"}

    async def prepare(self, fn: Function) -> WorkerInit | InvokeResult:
        d = self.write_code(fn)
        exe, prefix = _interpreter()
        mounts = [Mount(d, FUNCTION_DIR), Mount(RUNNERS_DIR, RUNTIME_DIR)]
        if not prefix.startswith("/usr/") and prefix != "/usr":
            mounts.append(Mount(Path(prefix), prefix))
        stdlib = sysconfig.get_paths().get("stdlib", "")
        real_stdlib = os.path.realpath(stdlib) if stdlib else ""
        if real_stdlib and not real_stdlib.startswith(prefix) and not real_stdlib.startswith("/usr/"):
            mounts.append(Mount(Path(real_stdlib), real_stdlib))
        argv = [exe, "-I", "-S", "-u", "-B", f"{RUNTIME_DIR}/python_runner.py", "{REQ_FD}", "{RESP_FD}"]
        spec = self.base_spec(fn, argv, self.env(fn), mounts, data_mb=fn.memory + 256, host_dir=d.parent / "run")
        return WorkerInit(spec=spec, init={"type": "init", "code_path": f"{FUNCTION_DIR}/{self.code_file}",
                                           "handler": fn.handler})
