"""A cgroup per worker for memory and processes, under a folder of this process's own (v1 or v2),
and the sweep of folders that dead platforms left behind. HostSandbox (sandbox.py) owns one
CgroupManager; the launch command (bwrap.py) joins a worker to its CgroupSet."""

from __future__ import annotations

import errno
import os
import select
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

CGROUP_V1_ROOT = Path("/sys/fs/cgroup")
CGROUP_V2_ROOT = Path("/sys/fs/cgroup")
PIDS_MAX = 128  # threads count too: Node starts ~11, Go ~8


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
        fds: dict[str, int | None] = self.__dict__.setdefault("_fds", {})
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

    def kill_all(self, keep: set[int] | None = None, wait: float = 0.0) -> int:
        """SIGKILL every member but `keep`; repeat while members appear (a forking child).

        `wait`: seconds to wait, at most, until every process killed has exited. Leaving the
        cgroup is not exiting: a sandbox's pid-namespace init leaves it, then waits in the
        kernel for its namespace's last processes, and under load was still running after the
        cgroup was removed (a worker "stopped" with a process of it alive). Each is watched by
        a pidfd, which also never signals a pid reused meanwhile."""
        killed = 0
        pidfds: list[int] = []
        try:
            for _ in range(50):
                victims = [p for p in self.members() if not keep or p not in keep]
                if not victims:
                    break
                for pid in victims:
                    try:
                        fd = os.pidfd_open(pid)
                    except OSError:
                        continue  # gone already
                    pidfds.append(fd)
                    try:
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                        killed += 1
                    except ProcessLookupError:
                        pass
                time.sleep(0.002 if killed else 0)
            if wait > 0 and pidfds:
                _wait_exited(pidfds, wait)
        finally:
            for fd in pidfds:
                os.close(fd)
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
            threading.Thread(target=sweep_dead_owners, args=(bases,), name="cloudfn-cgroup-sweep", daemon=True).start()

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
        for base in {self.memory_base, self.pids_base}:
            if base is None:
                continue
            try:
                for child in base.iterdir():
                    if child.is_dir():
                        CgroupSet(memory=child).remove()
                base.rmdir()
            except OSError:
                pass


def _wait_exited(pidfds: list[int], timeout: float) -> None:
    """Until every process behind `pidfds` has exited (a pidfd turns readable then), or timeout."""
    poller = select.poll()
    for fd in pidfds:
        poller.register(fd, select.POLLIN)
    left = set(pidfds)
    deadline = time.monotonic() + timeout
    while left:
        ms = (deadline - time.monotonic()) * 1000
        if ms <= 0:
            return
        for fd, _ in poller.poll(ms):
            poller.unregister(fd)
            left.discard(fd)
