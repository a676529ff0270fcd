"""What the host offers to contain a worker, and how a worker's command line is built from it.

Measured on these machines (README, "Security"): a cgroup per worker for memory and processes,
the launching shell's `ulimit` for rlimits (no `preexec_fn`: the platform is threaded), `bwrap`
for namespaces with a non-root uid, `setpriv` to leave root, a seccomp filter (seccomp.py). Each piece is probed once; whatever is missing is reported by `HostSandbox.report()`
and the rest still applies.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import seccomp

CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
CGROUP_V2_ROOT = Path("/sys/fs/cgroup")

# Per-worker limits that are not the function's own settings.
PIDS_MAX = 128  # threads count too: Node starts ~11, Go ~8
NOFILE = 1024  # Node crashes at 16 or below
FSIZE_MB = 64  # largest file a function may write
TMP_MB = 64  # size of the private /tmp when the sandbox gives one
SECRETS_DIR = "/run/secrets"
# The whole environment of the processes that launch a sandbox (root ones among them).
LAUNCH_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "TMPDIR": "/tmp",
}


def _own_cgroup(controller: str) -> str | None:
    """This process's path in a v1 hierarchy (e.g. '/process_api/abc'), or None."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            if controller in ctrls.split(","):
                return path
    except OSError:
        pass
    return None


@dataclass
class CgroupSet:
    """The cgroups of one worker (v1: one folder per controller; v2: one folder)."""

    memory: Path | None = None
    pids: Path | None = None
    v2: bool = False
    _oom_base: int = 0
    _pids_max_base: int = 0

    def paths(self) -> list[Path]:
        seen: list[Path] = []
        for p in (self.memory, self.pids):
            if p is not None and p not in seen:
                seen.append(p)
        return seen

    # --- memory -------------------------------------------------------------------------------
    # Files read or written on every invocation stay open (pread/pwrite: no open() per call).
    def _fd(self, path: Path | None, name: str, flags: int) -> int | None:
        if path is None:
            return None
        fds = self.__dict__.setdefault("_fds", {})
        try:
            return fds[name]  # file names are unique across the controllers' folders
        except KeyError:
            pass
        try:
            fds[name] = os.open(os.path.join(path, name), flags | os.O_CLOEXEC)
        except OSError:
            fds[name] = None
        return fds[name]

    def close_fds(self) -> None:
        for fd in self.__dict__.pop("_fds", {}).values():
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass

    def _peak_file(self) -> str:
        return "memory.peak" if self.v2 else "memory.max_usage_in_bytes"

    def reset_peak(self) -> None:
        fd = self._fd(self.memory, self._peak_file(), os.O_RDWR)
        if fd is not None:
            try:
                os.pwrite(fd, b"0", 0)  # v2 allows a reset from kernel 6.12 on
            except OSError:
                pass

    def peak_mb(self) -> float | None:
        fd = self._fd(self.memory, self._peak_file(), os.O_RDWR)
        if fd is None:
            return None
        try:
            return int(os.pread(fd, 64, 0).split()[0]) / (1024 * 1024)
        except (OSError, ValueError, IndexError):
            return None

    def set_memory_limit(self, memory_mb: int) -> bool:
        """Change the limit of a running cgroup (a pre-started sandbox taking on a function).
        False if the kernel refused (v1: when the usage is above the new limit)."""
        if self.memory is None:
            return True
        limit = str(memory_mb * 1024 * 1024)
        try:
            if self.v2:
                (self.memory / "memory.max").write_text(limit)
                return True
            # v1 keeps memsw.limit >= limit at every step: raise memsw first, lower it last.
            mem = self.memory / "memory.limit_in_bytes"
            memsw = self.memory / "memory.memsw.limit_in_bytes"
            raising = int(mem.read_text()) < int(limit)
            steps = [memsw, mem] if raising else [mem, memsw]
            for f in steps:
                if f is memsw and not memsw.exists():
                    continue
                f.write_text(limit)
            return int(mem.read_text()) == int(limit)
        except (OSError, ValueError):
            return False

    def oom_kills(self) -> int:
        if self.memory is None:
            return 0
        try:
            if self.v2:
                text = (self.memory / "memory.events").read_text()
            else:
                text = (self.memory / "memory.oom_control").read_text()
            for line in text.splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def mark(self) -> None:
        """Remember counters, so a later death can be blamed on what changed since."""
        self._oom_base = self.oom_kills()
        self._pids_max_base = self.pids_max_hits()

    def oom_since_mark(self) -> bool:
        if self.memory is None:
            return False
        if self.oom_kills() > self._oom_base:
            return True
        if not self.v2:  # older v1 kernels have no oom_kill counter: failcnt tells the same
            try:
                return int((self.memory / "memory.failcnt").read_text()) > 0
            except (OSError, ValueError):
                return False
        return False

    # --- pids ---------------------------------------------------------------------------------
    def pids_max_hits(self) -> int:
        fd = self._fd(self.pids, "pids.events", os.O_RDONLY)
        if fd is None:
            return 0
        try:
            for line in os.pread(fd, 256, 0).splitlines():
                k, _, v = line.partition(b" ")
                if k == b"max":
                    return int(v)
        except (OSError, ValueError):
            pass
        return 0

    def pids_limit_hit_since_mark(self) -> bool:
        return self.pids_max_hits() > self._pids_max_base

    def holds_only(self, procs: set[int]) -> bool:
        """True when the cgroup's task count (pids.current) equals the threads of `procs`: then
        no other process is in it. A pread and an fstat per process on kept fds, where listing
        cgroup.procs cost a fifth of a warm invoke under load (v1). False whenever unsure; the
        caller then lists the members. The count is read first, so a thread starting or ending
        between the reads makes the two differ; zombies count in pids.current and not in
        `procs`, so they differ too."""
        if not procs:
            return False
        fd = self._fd(self.pids, "pids.current", os.O_RDONLY)
        if fd is None:
            return False
        fds = self.__dict__.setdefault("_fds", {})
        try:
            tasks = int(os.pread(fd, 32, 0))
            threads = 0
            for pid in procs:
                key = f"/proc/{pid}/task"
                task_dir = fds.get(key)
                if task_dir is None:
                    task_dir = fds[key] = os.open(key, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                # procfs gives a task folder one link per thread, plus two: an fstat, far
                # cheaper than /proc/PID/stat. A process that is gone has none.
                n = os.fstat(task_dir).st_nlink - 2
                if n < 1:
                    return False
                threads += n
        except (OSError, ValueError):
            return False  # the files are not there: look properly
        return tasks == threads

    def members(self) -> list[int]:
        """Every process (thread-group id) in the worker's cgroup."""
        for p in (self.pids, self.memory):
            if p is None:
                continue
            # Opened afresh each time: v1 caches the pid list per open file.
            try:
                fd = os.open(p / "cgroup.procs", os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                data = b""
                while True:
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        break
                    data += chunk
                return [int(x) for x in data.split()]
            except (OSError, ValueError):
                continue
            finally:
                os.close(fd)
        return []

    def kill_all(self, keep: set[int] | None = None) -> int:
        """SIGKILL every member but `keep`; repeat while members appear (a forking child)."""
        killed = 0
        for _ in range(50):
            victims = [p for p in self.members() if not keep or p not in keep]
            if not victims:
                break
            for pid in victims:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.002 if killed else 0)
        return killed

    def remove(self) -> None:
        self.close_fds()
        for p in self.paths():
            for _ in range(100):
                try:
                    p.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    self.kill_all()
                    time.sleep(0.005)


def sweep_dead_owners(bases: list[Path], quiet_for: float = 60.0) -> int:
    """Remove the cgroup folders of platforms that died without cleaning up (a SIGKILL, a power
    cut): siblings of `bases` named cloudfn-PID whose PID is gone and that nothing touched for
    `quiet_for` seconds (a platform in another PID namespace looks gone but keeps making worker
    cgroups). Only empty cgroups can be removed: a process still in one keeps it. Returns how
    many owner folders went."""
    removed = 0
    now = time.time()
    for base in bases:
        try:
            siblings = list(base.parent.iterdir())
        except OSError:
            continue
        for folder in siblings:
            name = folder.name
            if not name.startswith("cloudfn-") or folder == base or not name[8:].isdigit():
                continue
            try:
                os.kill(int(name[8:]), 0)
                continue  # its owner lives
            except ProcessLookupError:
                pass
            except (PermissionError, OverflowError):
                continue
            try:
                if now - folder.stat().st_mtime < quiet_for:
                    continue
                for child in folder.iterdir():
                    if child.is_dir():
                        child.rmdir()
                folder.rmdir()
                removed += 1
            except OSError:
                continue  # busy (a process left in it) or already gone
    return removed


class CgroupManager:
    """Creates one cgroup per worker under a folder of this process's own (v1 or v2)."""

    def __init__(self) -> None:
        self.memory_base: Path | None = None
        self.pids_base: Path | None = None
        self.v2 = False
        self.problems: list[str] = []
        tag = f"cloudfn-{os.getpid()}"
        v1_mem = CGROUP_V1_ROOT / "memory"
        v1_pids = CGROUP_V1_ROOT / "pids"
        if (v1_mem / "memory.limit_in_bytes").exists() or (v1_pids / "cgroup.procs").exists():
            for ctrl, attr, probe in (
                ("memory", "memory_base", "memory.limit_in_bytes"),
                ("pids", "pids_base", "pids.max"),
            ):
                root = CGROUP_V1_ROOT / ctrl
                own = _own_cgroup(ctrl)
                if own is None or not (root / "cgroup.procs").exists():
                    self.problems.append(f"{ctrl} cgroup not mounted")
                    continue
                base = root / own.lstrip("/") / tag
                try:
                    base.mkdir(exist_ok=True)
                    probe_dir = base / "probe"
                    probe_dir.mkdir(exist_ok=True)
                    ok = (probe_dir / probe).exists()
                    probe_dir.rmdir()
                    if ok:
                        setattr(self, attr, base)
                    else:
                        self.problems.append(f"{ctrl} cgroup has no {probe}")
                except OSError as exc:
                    self.problems.append(f"cannot create a {ctrl} cgroup: {exc.strerror}")
        elif (CGROUP_V2_ROOT / "cgroup.controllers").exists():
            self.v2 = True
            own = _own_cgroup("") or "/"
            try:
                for line in Path("/proc/self/cgroup").read_text().splitlines():
                    if line.startswith("0::"):
                        own = line[3:]
                base = CGROUP_V2_ROOT / own.lstrip("/") / tag
                base.mkdir(exist_ok=True)
                ctrls = (base / "cgroup.controllers").read_text().split()
                wanted = [c for c in ("memory", "pids") if c in ctrls]
                (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
                if "memory" in wanted:
                    self.memory_base = base
                if "pids" in wanted:
                    self.pids_base = base
            except OSError as exc:
                self.problems.append(f"cannot create a cgroup v2 folder: {exc.strerror}")
        else:
            self.problems.append("no cgroup filesystem")

        bases = [b for b in {self.memory_base, self.pids_base} if b is not None]
        if bases:  # off the start's path: the first sweep may meet thousands
            threading.Thread(target=sweep_dead_owners, args=(bases,), name="cloudfn-cgroup-sweep",
                             daemon=True).start()

    @property
    def memory(self) -> bool:
        return self.memory_base is not None

    @property
    def pids(self) -> bool:
        return self.pids_base is not None

    def create(self, memory_mb: int, pids_max: int = PIDS_MAX) -> CgroupSet:
        name = f"w-{uuid.uuid4().hex[:12]}"
        cg = CgroupSet(v2=self.v2)
        limit = memory_mb * 1024 * 1024
        if self.memory_base is not None:
            path = self.memory_base / name
            try:
                path.mkdir()
                if self.v2:
                    (path / "memory.max").write_text(str(limit))
                    try:
                        (path / "memory.swap.max").write_text("0")
                    except OSError:
                        pass
                else:
                    (path / "memory.limit_in_bytes").write_text(str(limit))
                    try:
                        (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
                    except OSError:
                        pass
                    try:
                        (path / "memory.swappiness").write_text("0")
                    except OSError:
                        pass
                cg.memory = path
            except OSError:
                pass
        if self.pids_base is not None:
            path = self.pids_base / name
            try:
                if not path.exists():
                    path.mkdir()
                (path / "pids.max").write_text(str(pids_max))
                cg.pids = path
            except OSError:
                pass
        cg.mark()
        return cg

    def cleanup(self) -> None:
        for base in {self.memory_base, self.pids_base} - {None}:
            try:
                for child in base.iterdir():
                    if child.is_dir():
                        CgroupSet(memory=child).remove()
                base.rmdir()
            except OSError:
                pass


@dataclass
class Mount:
    """A host path the sandbox shows at `target` (read-only unless `rw`). With `copy`, a file or
    a folder's files are copied into the sandbox instead of bound: a bind shows its host path in
    /proc/self/mountinfo (the data directory, the checkout), a copy shows none."""

    source: Path
    target: str
    rw: bool = False
    copy: bool = False


@dataclass
class WorkerSpec:
    """Everything needed to start one sandboxed worker."""

    argv: list[str]  # the runner command, with paths as the worker sees them
    env: dict[str, str]
    mounts: list[Mount] = field(default_factory=list)
    host_dir: Path | None = None  # a private working folder used when there is no sandbox
    memory_mb: int = 128
    cpu_seconds: int = 60  # RLIMIT_CPU soft; hard is one more
    data_mb: int | None = None  # RLIMIT_DATA (Python only: never for Node or Go)
    network: bool = False
    chdir: str = "/tmp"  # the working folder inside the sandbox
    # name -> value of the function's secrets, files under SECRETS_DIR (core/secrets.py): passed
    # through a memfd and bwrap's --ro-bind-data, so no host file and no argument holds a value.
    secret_files: dict[str, bytes] = field(default_factory=dict)


def _which(name: str) -> str | None:
    path = shutil.which(name)
    return os.path.realpath(path) if path else None


class HostSandbox:
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

    def __init__(self, mode: str = "auto", *, use_cgroups: bool = True, user: str | None = None,
                 hardening: bool = True):
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
            proc = subprocess.run(launch.argv, env=launch.env, cwd=launch.cwd, pass_fds=launch.fds,
                                  capture_output=True, timeout=10)
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
        elif self.drops_uid:
            uid_drop = f"uid {self.user.uid} ({self.user.name}), no capabilities, no_new_privs"
        elif self.mode == "none":
            uid_drop = "off: sandbox is 'none' (functions run as root)"
        else:
            uid_drop = "off: " + (self.user_problem or (
                f"no namespace sandbox ({self.bwrap_problem}): functions run as host root" if not self.bwrap
                else "hardening switched off"))
        warning = ""
        if self.mode == "none":
            warning = "runtime.sandbox is 'none': functions run unsandboxed"
        elif not self.namespaces:
            warning = f"no namespace sandbox ({self.bwrap_problem}): functions are contained by rlimits and cgroups only"
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
            "seccomp_problem": "" if self.seccomp and self.namespaces else (
                self.seccomp_problem or "applied by bwrap, which is missing here"),
            "read_only_proc_sys": self.namespaces and (not root or self.drops_uid),
            "no_new_user_namespaces": self.namespaces,
            "fd_hygiene": "only the protocol's pipes are passed; the runners close any other",
            "launcher_environment": "fixed; the function's variables are set inside the sandbox only",
            "private_tmp": self.namespaces,
            "read_only_code": self.namespaces,
            "kill_tree": "pid namespace + cgroup" if self.namespaces else (
                "cgroup" if cg and cg.pids else "process group"),
            "rlimits": ["cpu", "fsize", "nofile", "core", "data (python)"],
            "runtime_memory_caps": "node --max-old-space-size, go GOMEMLIMIT, python RLIMIT_DATA",
            "scrubbed_environment": True,
            "wall_clock_timeout": True,
        }

    # --- command line -------------------------------------------------------------------------
    @staticmethod
    def _layout(spec: WorkerSpec, fds: list[int], plain_files: bool = False) -> list[str]:
        """The sandbox's files: /usr and a few /etc files read-only, the spec's mounts.
        `plain_files`: copied files become plain files of the sandbox's root (--file) instead
        of one read-only bind each (--ro-bind-data): only where a later `--ro-bind / /` makes
        the whole root read-only. Each bind is a mount, and a function of 500 files took 500
        mounts and ~0.6 s more per cold start; plain files cost about nothing."""
        args: list[str] = []
        made = {"/"}

        def parents(target: str) -> None:
            # Folders on the way to a mount point are made traversable: a root bwrap makes them
            # 0700 (and copies nothing of the host's /root), so the sandbox user could not pass.
            chain = []
            parent = os.path.dirname(target.rstrip("/"))
            while parent not in made:
                chain.append(parent)
                made.add(parent)
                parent = os.path.dirname(parent)
            for d in reversed(chain):
                args.extend(["--perms", "0755", "--dir", d])

        def bind(source: str, target: str, rw: bool = False) -> None:
            parents(target)
            args.extend(["--bind" if rw else "--ro-bind", source, target])
            made.add(target.rstrip("/") or "/")

        def copy(source: str, target: str) -> None:
            parents(target)
            made.add(target)
            if os.path.isdir(source):
                args.extend(["--perms", "0755", "--dir", target])
                for entry in sorted(os.scandir(source), key=lambda e: e.name):
                    if entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False):
                        copy(entry.path, f"{target}/{entry.name}")
                return
            fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            fds.append(fd)
            mode = "0555" if os.fstat(fd).st_mode & 0o111 else "0444"
            args.extend(["--perms", mode, "--file" if plain_files else "--ro-bind-data", str(fd), target])

        bind("/usr", "/usr")
        for link in ("bin", "lib", "lib64", "sbin"):
            p = Path("/") / link
            if p.is_symlink():
                args.extend(["--symlink", os.readlink(p), f"/{link}"])
            elif p.is_dir():
                bind(str(p), f"/{link}")
        # A few files from /etc that runtimes read (time zone, DNS when networked, users).
        etc = ["/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/ssl",
               "/etc/ca-certificates", "/etc/alternatives"]
        if spec.network:
            etc += ["/etc/resolv.conf", "/etc/hosts"]
        for f in etc:
            if os.path.exists(f):
                bind(f, f)
        for m in spec.mounts:
            if m.copy and not m.rw:
                copy(str(m.source), m.target)
            else:
                bind(str(m.source), m.target, m.rw)
        for name, data in sorted(spec.secret_files.items()):
            target = f"{SECRETS_DIR}/{name}"
            parents(target)
            made.add(target)
            fds.append(_memfd("cloudfn-secret", data))
            args.extend(["--perms", "0444", "--ro-bind-data", str(fds[-1]), target])
        return args

    def _namespaces(self, spec: WorkerSpec, fds: list[int]) -> list[str]:
        args = ["--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
                "--die-with-parent", "--new-session"]
        if spec.network:
            args.append("--share-net")
        if self.seccomp:
            fds.append(_memfd("cloudfn-seccomp", self.seccomp))
            args += ["--seccomp", str(fds[-1])]
        return args

    @staticmethod
    def _private(spec: WorkerSpec) -> list[str]:
        return ["--proc", "/proc", "--dev", "/dev", "--size", str(TMP_MB * 1024 * 1024), "--tmpfs", "/tmp",
                "--chdir", spec.chdir]

    def _limits_script(self, spec: WorkerSpec, cg: CgroupSet | None) -> str:
        """Join the cgroups first (as root: the sandbox user could not), then set the rlimits."""
        steps = [f"echo $$ > '{p}/cgroup.procs'" for p in (cg.paths() if cg else [])]
        cpu = spec.cpu_seconds
        steps += [f"ulimit -t {cpu + 1}", f"ulimit -S -t {cpu}", f"ulimit -f {FSIZE_MB * 2048}",
                  f"ulimit -n {NOFILE}", "ulimit -c 0"]
        if spec.data_mb:
            steps.append(f"ulimit -d {spec.data_mb * 1024}")
        return " && ".join(steps) + ' && exec "$@"'

    def command(self, spec: WorkerSpec, cg: CgroupSet | None) -> "Launch":
        """How to exec this worker; fds named in the argv ({REQ_FD}, {RESP_FD}) are the caller's
        to pass, besides `Launch.fds`."""
        fds: list[int] = []
        try:
            return self._command(spec, cg, fds)
        except BaseException:
            _close(fds)
            raise

    def _command(self, spec: WorkerSpec, cg: CgroupSet | None, fds: list[int]) -> "Launch":
        env = dict(LAUNCH_ENV)
        if self.bwrap:
            bwrap = self.bwrap
            inner = self._namespaces(spec, fds)
            if self.drops_uid:
                # The root bwrap lays out the files; the unprivileged one sees only that layout.
                outer = [bwrap, "--die-with-parent", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                         "--cap-add", "CAP_SETPCAP", *self._layout(spec, fds, plain_files=True),
                         "--bind", "/proc", "/proc",
                         "--dev", "/dev", "--dir", "/tmp", "--"]
                inner += ["--ro-bind", "/", "/"]
                for m in spec.mounts:
                    if m.rw:
                        inner += ["--bind", m.target, m.target]
                u = self.user
                drop = [self.setpriv, f"--reuid={u.uid}", f"--regid={u.gid}", "--clear-groups",
                        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
                head = [*outer, *drop, bwrap]
            else:
                inner += self._layout(spec, fds)
                head = [bwrap]
            inner += self._private(spec)
            inner += ["--clearenv"]
            for k, v in spec.env.items():
                inner += ["--setenv", k, v]
            # The arguments go through an fd: the sandbox's pid 1 is this bwrap, and its command
            # line (readable inside) would show every host path mounted and every variable.
            if any("\0" in a for a in inner):  # the models refuse them; a NUL would add arguments
                raise ValueError("a sandbox argument contains a NUL character")
            fds.append(_memfd("cloudfn-args", b"\0".join(a.encode() for a in inner) + b"\0"))
            cmd = [*head, "--args", str(fds[-1]), "--", *spec.argv]
            cwd: str | None = "/"
        else:
            # No namespaces: the runner sees host paths, so map each mount target back.
            argv = [self.host_path(spec, a) for a in spec.argv]
            run_env = dict(spec.env)
            if spec.host_dir:  # the sandbox's private /tmp is the worker's own folder here
                for k in ("TMPDIR", "HOME"):
                    if run_env.get(k) == "/tmp":
                        run_env[k] = str(spec.host_dir)
            # env -i: the function's variables apply to the runner alone, never to the shell.
            cmd = [_which("env") or "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in run_env.items()), *argv]
            cwd = str(spec.host_dir) if spec.host_dir else None
            if spec.chdir != "/tmp":
                cwd = self.host_path(spec, spec.chdir)
        cmd = [self.sh, "-c", self._limits_script(spec, cg), "cloudfn-worker", *cmd]
        return Launch(cmd, env, cwd, tuple(fds))

    def host_path(self, spec: WorkerSpec, target: str) -> str:
        """A path as the runner sees it (identity inside the sandbox, the source outside)."""
        if self.bwrap:
            return target
        for m in spec.mounts:
            if target == m.target or target.startswith(m.target + "/"):
                return str(m.source) + target[len(m.target):]
        return target


@dataclass
class Launch:
    """A worker's command: argv and environment for the root end of the chain, the fds to pass
    (besides the protocol's), closed by the caller once the process has started."""

    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    fds: tuple[int, ...] = ()

    def close(self) -> None:
        _close(self.fds)


def _close(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


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


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


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
            raise ValueError(f"runtime.sandbox_user: there is no user {text!r} on this host; create it "
                             f"(useradd --system --no-create-home {text}) or name another") from None
        user = SandboxUser(int(text), int(text), text)
    if user.uid == 0 or user.gid == 0:
        raise ValueError("runtime.sandbox_user must not be root (uid or gid 0): functions would run as host root")
    return user
