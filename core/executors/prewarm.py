"""Pre-started sandboxes: a few generic runners per runtime, already sandboxed and running, that
take on a function at its cold start, so the cold start no longer pays for the process chain
(cgroup join and rlimits, the bwraps and setpriv, the interpreter's start).

Isolation is the same as a freshly started worker's (README, "Security"):
- each sandbox has its own cgroup (pids limit from the start; the function's memory limit is
  written there when it takes the function on) and its own empty function folder (under
  /dev/shm, see slot_root), bind-mounted read-only at /function; only the adopting function's
  files are ever placed there, and the folder is removed with the sandbox. Nothing else of any
  function is visible inside;
- it starts with the base environment only (no function's variables) and rlimits for file size,
  open files and core dumps from the launching shell; CPU is capped at the largest budget any
  function gets; the runner lowers CPU (and data, for Python) to the function's limits and adds the function's
  environment before it loads any of the function's code. A sandbox takes on one function
  version, once, and dies with that worker;
- functions with network on, or whose environment changes how a process starts (the dynamic
  loader's, libc's, locale and time-zone variables), start the usual way;
- only where bwrap gives namespaces (the folder trick needs its mounts); the pool is refilled in
  the background once the cold start that took a sandbox is served, and its processes are
  stopped by `close()`.

Size by demand (issue 19): `size` (runtime.prewarm) is the least kept per runtime and `maximum`
(runtime.prewarm_max) the most. The pool holds as many as the most cold starts that asked for a
sandbox within one DEMAND_BURST of each other in the last DEMAND_WINDOW, so a function that
bursts finds its next burst's starts adopted (a few ms) rather than fresh (30-100 ms). Sandboxes
past the least are started only while the memory budget keeps PREWARM_RESERVE of it free for
real workers, and they go first when room is needed (the service reaps idle ones oldest first).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import stat
import time
import uuid
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from core.deps.manifest import has_dependencies
from core.models import Function
from core.secrets import held_by

from .runtimes.base import FUNCTION_DIR
from .spawn import BACKGROUND_NICE
from .worker import Worker, WorkerInit

if TYPE_CHECKING:
    from .budget import MemoryBudget
    from .runtimes import Runtime
    from .sandbox import HostSandbox

# Variables read while a process starts (by the dynamic loader, libc, the interpreter): a
# function setting one gets a fresh worker, which starts with it.
STARTUP_ENV = re.compile(r"^(LD_\w*|GLIBC_TUNABLES|MALLOC_\w*|LANG|LANGUAGE|LC_\w*|TZ|PYTHON\w*)$")
PREWARM_MEMORY_MB = 128  # a waiting sandbox's memory limit, until it takes on a function
DEMAND_BURST = 1.0  # seconds: cold starts this close together count as one burst
DEMAND_WINDOW = 120.0  # seconds a burst keeps the pool at its size
PREWARM_RESERVE = 0.25  # of the memory budget kept free by the sandboxes past the least


SHM = Path("/dev/shm")


def slot_root(work_dir: Path) -> Path:
    """Where the pre-started sandboxes' folders live. A sandbox binds its folder (files arrive
    after it starts), and a bind shows its host path in the sandbox's /proc/self/mountinfo: under
    /dev/shm that path names no data directory. Folders of platforms that died are removed."""
    if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        return work_dir / ".prewarm"
    for old in SHM.glob("cloudfn-*-prewarm"):
        pid = old.name.split("-")[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists() and old.lstat().st_uid == os.geteuid():
            shutil.rmtree(old, ignore_errors=True)
    root = SHM / f"cloudfn-{os.getpid()}-prewarm"
    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return work_dir / ".prewarm"
    # /dev/shm is everyone's: a folder (or link) someone else put there first is not used.
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
        return work_dir / ".prewarm"
    return root


class Prewarm:
    def __init__(
        self,
        sandbox: HostSandbox,
        runtimes: dict[str, Runtime],
        work_dir: Path,
        size: int,
        budget: MemoryBudget | None = None,
        maximum: int | None = None,
    ):
        self.sandbox = sandbox
        self.budget = budget  # a waiting sandbox's cgroup limit counts in runtime.max_memory
        self.size = size  # the least kept per runtime
        self.maximum = max(size, size if maximum is None else maximum)
        # Per runtime: when recent cold starts asked for a sandbox, and the largest burst of them
        # (count, when) within DEMAND_WINDOW.
        self._asks: dict[str, deque[float]] = {}
        self._peak: dict[str, tuple[int, float]] = {}
        self.dir = slot_root(work_dir)
        self.specs = {}
        if size > 0 and sandbox.bwrap:
            for name, rt in runtimes.items():
                if rt.prewarm_spec(self.dir / "probe") is not None:
                    self.specs[name] = rt
        self.ready: dict[str, deque[Worker]] = {name: deque() for name in self.specs}
        self.starting: dict[str, int] = {name: 0 for name in self.specs}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._changed: asyncio.Event | None = None
        self.problem = ""  # why the last start that failed failed (shown in stats)

    # --- which functions ---------------------------------------------------------------------
    def eligible(self, fn: Function, runtime_name: str) -> bool:
        # A function holding secrets starts the usual way: an adoption would carry their values
        # into a host file (Go's start script) or through the init frame after start. A function's
        # dependencies are a mount of their own, which a started sandbox cannot gain.
        return (
            runtime_name in self.specs
            and not fn.network
            and not held_by(fn)
            and not has_dependencies(fn)
            and not any(STARTUP_ENV.match(k) for k in (fn.environment or {}))
        )

    # --- the pool -----------------------------------------------------------------------------
    def target(self, name: str, now: float | None = None) -> int:
        """How many sandboxes of runtime `name` to keep now (see the module's docstring)."""
        if self.size <= 0:
            return 0  # runtime.prewarm 0: every worker starts from scratch, as asked
        now = time.monotonic() if now is None else now
        count, when = self._peak.get(name, (0, 0.0))
        if now - when > DEMAND_WINDOW:
            count = 0
        return max(self.size, min(self.maximum, count))

    def _room_for_extra(self) -> bool:
        b = self.budget
        return b is None or b.free() - PREWARM_MEMORY_MB >= b.limit * PREWARM_RESERVE

    def fill(self) -> None:
        """Start what is missing, in the background; stop what the demand no longer asks for."""
        if self._closed:
            return
        for name in self.specs:
            want = self.target(name)
            while len(self.ready[name]) > want:
                self._discard(self.ready[name].popleft())  # the oldest first
            for _ in range(want - len(self.ready[name]) - self.starting[name]):
                if len(self.ready[name]) + self.starting[name] >= self.size and not self._room_for_extra():
                    break
                self.starting[name] += 1
                task = asyncio.ensure_future(self._start_one(name))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _start_one(self, name: str) -> None:
        w: Worker | None = None
        try:
            if self._closed:
                return
            slot = self.dir / uuid.uuid4().hex[:12]
            slot.mkdir(parents=True)
            os.chmod(slot, 0o755)
            spec = self.specs[name].prewarm_spec(slot)
            if spec is None:  # it gave one for the probe; a runtime that stops doing so starts none
                self.problem = f"{name}: the runtime no longer gives a pre-start spec"
                shutil.rmtree(slot, ignore_errors=True)
                return
            w = Worker(("", 0), name, WorkerInit(spec=spec, init={}), self.sandbox, PREWARM_MEMORY_MB, 10.0)
            w.slot = slot
            if self.budget is not None:
                if not self.budget.charge(w, PREWARM_MEMORY_MB):
                    self.problem = f"{name}: no room left in runtime.max_memory ({self.budget.limit} MB)"
                    return  # not started; its folder goes below
                w.budget = self.budget
            w.nice = BACKGROUND_NICE  # until adopted: a refill must not slow the workers serving meanwhile
            failure = await w.spawn(wait_up=True)
            if failure is not None:
                self.problem = f"{name}: {failure.error}"
            elif not self._closed and len(self.ready[name]) < self.target(name):  # (the demand may have passed)
                self.ready[name].append(w)
                w = None
        finally:
            if w is not None:
                await w.kill()  # also removes its folder
            self.starting[name] -= 1
            if self._changed is not None:
                self._changed.set()

    def _asked(self, name: str) -> None:
        now = time.monotonic()
        asks = self._asks.setdefault(name, deque())
        asks.append(now)
        while asks and now - asks[0] > DEMAND_BURST:
            asks.popleft()
        count, when = self._peak.get(name, (0, 0.0))
        if len(asks) >= count or now - when > DEMAND_WINDOW:
            self._peak[name] = (len(asks), now)

    def take(self, runtime_name: str) -> Worker | None:
        """A waiting sandbox for this runtime, or None. The caller calls fill() once its cold
        start is served: a refill started now would compete with it for the CPU and the loop."""
        if runtime_name in self.specs:
            self._asked(runtime_name)
        pool = self.ready.get(runtime_name)
        w = None
        while pool and w is None:
            w = pool.popleft()
            if w.dead or w.proc is None or w.proc.returncode is not None:
                self._discard(w)
                w = None
        return w

    def idle(self) -> list[Worker]:
        """The waiting sandboxes (the service may reap them to make room in its memory budget)."""
        return [w for pool in self.ready.values() for w in pool]

    def evict(self, w: Worker) -> None:
        for pool in self.ready.values():
            if w in pool:
                pool.remove(w)

    @staticmethod
    def files(wi: WorkerInit) -> list[tuple[str, Path]]:
        """The function version's own files, folders included, as (path in the folder, host
        path): what its usual worker sees at /function. Links are never followed, and
        cloudfn's own top-level `.cloudfn*` files stay out."""
        out: list[tuple[str, Path]] = []
        for m in wi.spec.mounts:
            if m.target != FUNCTION_DIR:
                continue
            root = Path(m.source)
            for folder, dirs, names in os.walk(root):
                dirs.sort()
                rel = Path(folder).relative_to(root)
                for name in sorted(names):
                    p = Path(folder) / name
                    if (rel == Path(".") and name.startswith(".cloudfn")) or not stat.S_ISREG(p.lstat().st_mode):
                        continue
                    out.append(((rel / name).as_posix(), p))
        return out

    def _discard(self, w: Worker) -> None:
        task = asyncio.ensure_future(w.kill())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_ready(self) -> None:
        """Until the pools are full, or no start is under way (benchmarks, tests)."""
        self._changed = self._changed or asyncio.Event()
        self.fill()
        while any(self.starting.values()) and not self._closed:
            self._changed.clear()
            await self._changed.wait()

    def count(self) -> dict[str, int]:
        return {name: len(pool) for name, pool in self.ready.items()}

    def targets(self) -> dict[str, int]:
        return {name: self.target(name) for name in self.specs}

    def members(self) -> dict[str, set[int]]:
        """The waiting sandboxes' processes by cgroup folder name (for leftover checks: these
        are the platform's, not any function's)."""
        out: dict[str, set[int]] = {}
        for pool in self.ready.values():
            for w in pool:
                if w.cg is not None:
                    pids = set(w.cg.members())
                    for p in w.cg.paths():
                        out[p.name] = pids
        return out

    def pids(self) -> set[int]:
        """Every process of the waiting sandboxes (for leftover checks)."""
        out: set[int] = set().union(*self.members().values())
        out |= {w.proc.pid for pool in self.ready.values() for w in pool if w.cg is None and w.proc is not None}
        return out

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:  # a sandbox still starting is stopped, not waited for
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for pool in self.ready.values():
            while pool:
                await pool.popleft().kill()
        shutil.rmtree(self.dir, ignore_errors=True)
