"""A pre-started sandbox whose runtime starts only when a function is adopted: a shell waits in
the sandbox (its cgroup, namespaces, uid drop and seccomp already in place) and, once told,
sets the function's CPU limit and environment and execs the runtime with the function's own
flags. What it saves is the launch chain (cgroup, rlimits, two bwraps, setpriv); the runtime's
own start is still paid. For runtimes whose process cannot lower its own limits after it starts
(Node.js has no setrlimit, and its heap size is fixed at start). Go's runtime does the same
inline (runtimes/go.py)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

from ..sandbox import BASE_ENV, Mount, WorkerSpec
from ..worker import Adoption, NotAdopted, WorkerInit
from .base import FUNCTION_DIR, PREWARM_CPU_SECONDS

START_FILE = ".cloudfn-start"  # placed in the sandbox's folder at adoption, removed once loaded
PRELUDE = b"go\n"  # the line the waiting shell reads before it runs START_FILE
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def shell() -> str | None:
    sh = shutil.which("sh")
    sh = os.path.realpath(sh) if sh else ""
    return sh if sh.startswith("/usr/") else None


def waiting_spec(slot: Path, extra_mounts: list[Mount]) -> WorkerSpec | None:
    sh = shell()
    if sh is None:
        return None
    up = '{"type":"up","logs_closed":false}'
    # (dash redirects only fds 0-9 with >&N: the pipes are reopened through /proc instead)
    script = (
        f"printf '\\000\\000\\000\\{len(up):03o}%s' '{up}' >/proc/self/fd/\"$2\" || exit 70\n"
        'IFS= read -r _ </proc/self/fd/"$1" || exit 0\n'
        f". {FUNCTION_DIR}/{START_FILE}\n"
        "exit 71\n"
    )
    return WorkerSpec(
        argv=[sh, "-c", script, "cloudfn-prewarm", "{REQ_FD}", "{RESP_FD}"],
        env=dict(BASE_ENV),
        mounts=[Mount(slot, FUNCTION_DIR), *extra_mounts],
        cpu_seconds=PREWARM_CPU_SECONDS,
        chdir=FUNCTION_DIR,
    )


def exec_adoption(wi: WorkerInit) -> Adoption:
    """The function's CPU limit and environment, then its own argv (REQ_FD/RESP_FD: the shell's)."""
    cpu = wi.spec.cpu_seconds
    lines = [f"ulimit -S -t {cpu} && ulimit -H -t {cpu + 1} || exit 71"]
    for k, v in wi.spec.env.items():
        if not _NAME.fullmatch(k):  # the model refuses such names
            raise NotAdopted(f"environment variable name {k!r} cannot go into a shell script")
        lines.append(f"export {k}={shlex.quote(v)}")
    argv = [{"{REQ_FD}": '"$1"', "{RESP_FD}": '"$2"'}.get(a) or shlex.quote(a) for a in wi.spec.argv]
    lines.append("exec " + " ".join(argv))
    return Adoption(files={START_FILE: "\n".join(lines) + "\n"}, prelude=PRELUDE)
