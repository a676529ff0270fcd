"""What the host offers to contain a worker: the public face of the sandbox.

Measured on these machines (README, "Security"): a cgroup per worker for memory and processes
(cgroups.py), the launching shell's `ulimit` for rlimits (no `preexec_fn`: the platform is
threaded), `bwrap` for namespaces with a non-root uid and `setpriv` to leave root (the command is
built in bwrap.py), a seccomp filter (seccomp.py). Each piece is probed once here; whatever is
missing is reported by `HostSandbox.report()` and the rest still applies.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from typing import Any

from . import seccomp
from .bwrap import (
    BASE_ENV,
    FSIZE_MB,
    LAUNCH_ENV,
    NOFILE,
    SECRETS_DIR,
    TMP_MB,
    Launch,
    LaunchCommand,
    Mount,
    WorkerSpec,
    _which,
)
from .cgroups import (
    CGROUP_V1_ROOT,
    CGROUP_V2_ROOT,
    PIDS_MAX,
    CgroupManager,
    CgroupSet,
    sweep_dead_owners,
)

# The sandbox's public face: callers import these from here, wherever they live.
__all__ = [
    "BASE_ENV",
    "CGROUP_V1_ROOT",
    "CGROUP_V2_ROOT",
    "DEFAULT_SANDBOX_USER",
    "FSIZE_MB",
    "LAUNCH_ENV",
    "NOFILE",
    "PIDS_MAX",
    "SECRETS_DIR",
    "TMP_MB",
    "CgroupManager",
    "CgroupSet",
    "HostSandbox",
    "Launch",
    "Mount",
    "SandboxUser",
    "WorkerSpec",
    "resolve_sandbox_user",
    "seal_fds",
    "sweep_dead_owners",
]


class HostSandbox(LaunchCommand):
    """Probes the host once and turns a `WorkerSpec` into the command that launches it.

    The chain, as root (README, "Security"): a shell joins the worker's cgroups and sets
    its rlimits; a root bwrap lays out the sandbox's files (it can read paths that only root may
    traverse, such as an interpreter under /root); setpriv drops to the sandbox user with no
    capabilities and no_new_privs; an unprivileged bwrap then makes the user, pid, network, ipc
    and uts namespaces, a private /proc and /tmp, applies the seccomp filter and sets the
    function's environment, and execs the runner. The sandbox's uid therefore maps to the
    sandbox user on the host, never to root. Not as root, one unprivileged bwrap does all of
    it. Every process before the last exec runs with LAUNCH_ENV only: a function's variables
    (LD_PRELOAD, say) never reach a process outside its sandbox."""

    def __init__(
        self, mode: str = "auto", *, use_cgroups: bool = True, user: str | None = None, hardening: bool = True
    ):
        self.mode = mode
        self.hardening = hardening  # off only in benchmarks, to measure what the hardening costs
        self.sh = _which("sh") or "/bin/sh"
        self.setpriv = _which("setpriv")
        self.bwrap: str | None = None
        self.bwrap_problem = ""
        self.cgroups: CgroupManager | None = None
        self.user: SandboxUser | None = None
        self.user_problem = ""
        self.seccomp: bytes | None = None
        self.seccomp_problem = "sandbox is 'none'"
        if mode not in ("auto", "none"):
            raise ValueError(f"sandbox must be 'auto' or 'none', not {mode!r}")
        if mode == "auto" and os.geteuid() == 0 and hardening:
            self.user = resolve_sandbox_user(user)
            if self.setpriv is None:
                self.user_problem = "setpriv not installed (apt-get install util-linux)"
        if mode == "auto":
            if hardening:
                self.seccomp = seccomp.program()
                self.seccomp_problem = seccomp.problem()
            else:
                self.seccomp_problem = "hardening switched off (benchmark)"
            self.bwrap = _which("bwrap")
            if self.bwrap:
                self.bwrap_problem = self._probe_bwrap()
                if self.bwrap_problem:
                    self.bwrap = None
            else:
                self.bwrap_problem = "bwrap not installed (apt-get install bubblewrap)"
            if use_cgroups:
                self.cgroups = CgroupManager()

    @property
    def drops_uid(self) -> bool:
        """Functions run as the sandbox user. Only with namespaces: without them the runner would
        need every host path it reads (an interpreter under /root, the data directory) open to
        that user, so a root platform without bwrap runs them as root, and says so."""
        return self.user is not None and self.setpriv is not None and self.bwrap is not None

    def _probe_bwrap(self) -> str:
        spec = WorkerSpec(argv=["/bin/sh", "-c", "exit 7"], env={})
        launch = self.command(spec, None)
        try:
            proc = subprocess.run(
                launch.argv, env=launch.env, cwd=launch.cwd, pass_fds=launch.fds, capture_output=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bwrap does not start: {exc}"
        finally:
            launch.close()
        if proc.returncode != 7:
            return "bwrap cannot create namespaces here: " + proc.stderr.decode(errors="replace").strip()
        return ""

    # --- reporting ----------------------------------------------------------------------------
    @property
    def namespaces(self) -> bool:
        return self.bwrap is not None

    def report(self) -> dict[str, Any]:
        cg = self.cgroups
        root = os.geteuid() == 0
        if not root:
            uid_drop = f"not needed: the platform runs as uid {os.geteuid()}"
        elif self.drops_uid and self.user is not None:
            uid_drop = f"uid {self.user.uid} ({self.user.name}), no capabilities, no_new_privs"
        elif self.mode == "none":
            uid_drop = "off: sandbox is 'none' (functions run as root)"
        else:
            uid_drop = "off: " + (
                self.user_problem
                or (
                    f"no namespace sandbox ({self.bwrap_problem}): functions run as host root"
                    if not self.bwrap
                    else "hardening switched off"
                )
            )
        warning = ""
        if self.mode == "none":
            warning = "runtime.sandbox is 'none': functions run unsandboxed"
        elif not self.namespaces:
            warning = (
                f"no namespace sandbox ({self.bwrap_problem}): functions are contained by rlimits and cgroups only"
            )
        return {
            "warning": warning,
            "sandbox_mode": self.mode,
            "memory_cgroup": bool(cg and cg.memory),
            "pids_cgroup": bool(cg and cg.pids),
            "cgroup_version": (2 if cg.v2 else 1) if cg and (cg.memory or cg.pids) else None,
            "cgroup_problems": list(cg.problems) if cg else ["sandbox is 'none'"],
            "bwrap_namespaces": self.namespaces,
            "bwrap_problem": self.bwrap_problem if self.mode == "auto" else "sandbox is 'none'",
            "network_isolation": self.namespaces,
            "uid_drop": uid_drop,
            "non_root_uid": not root or self.drops_uid,
            "seccomp": bool(self.seccomp) and self.namespaces,
            "seccomp_problem": ""
            if self.seccomp and self.namespaces
            else (self.seccomp_problem or "applied by bwrap, which is missing here"),
            "read_only_proc_sys": self.namespaces and (not root or self.drops_uid),
            "no_new_user_namespaces": self.namespaces,
            "fd_hygiene": "only the protocol's pipes are passed; the runners close any other",
            "launcher_environment": "fixed; the function's variables are set inside the sandbox only",
            "private_tmp": self.namespaces,
            "read_only_code": self.namespaces,
            "kill_tree": "pid namespace + cgroup"
            if self.namespaces
            else ("cgroup" if cg and cg.pids else "process group"),
            "rlimits": ["cpu", "fsize", "nofile", "core", "data (python)"],
            "runtime_memory_caps": "node --max-old-space-size, go GOMEMLIMIT, python RLIMIT_DATA",
            "scrubbed_environment": True,
            "wall_clock_timeout": True,
        }


def seal_fds(keep: tuple[int, ...] = ()) -> None:
    """Mark every inheritable fd of this process close-on-exec, but `keep`. Python makes its own
    fds that way; one inherited from a parent (systemd's sockets, a shell's) or made inheritable
    by a library (a server's listening socket) would otherwise reach every worker, as uvloop's
    spawning does not honour close_fds."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in names:
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)
            except OSError:
                pass  # the listing's own fd, closed by now


@dataclass(frozen=True)
class SandboxUser:
    uid: int
    gid: int
    name: str


DEFAULT_SANDBOX_USER = "cloudfn-sandbox"  # made by scripts/setup.sh when run as root


def resolve_sandbox_user(setting: str | None) -> SandboxUser:
    """runtime.sandbox_user: a user name or uid; by default the dedicated user setup made,
    else nobody (65534). Raises ValueError (a configuration error) for a bad setting."""
    if not setting:
        try:
            pw = pwd.getpwnam(DEFAULT_SANDBOX_USER)
            if pw.pw_uid != 0:
                return SandboxUser(pw.pw_uid, pw.pw_gid, pw.pw_name)
        except KeyError:
            pass
        return SandboxUser(65534, 65534, "nobody")
    text = str(setting).strip()
    try:
        pw = pwd.getpwuid(int(text)) if text.isdigit() else pwd.getpwnam(text)
        user = SandboxUser(pw.pw_uid, pw.pw_gid, pw.pw_name)
    except KeyError:
        if not text.isdigit():
            raise ValueError(
                f"runtime.sandbox_user: there is no user {text!r} on this host; create it "
                f"(useradd --system --no-create-home {text}) or name another"
            ) from None
        user = SandboxUser(int(text), int(text), text)
    if user.uid == 0 or user.gid == 0:
        raise ValueError("runtime.sandbox_user must not be root (uid or gid 0): functions would run as host root")
    return user
