"""How a worker's launch command is built: a shell that joins the worker's cgroups and sets its
rlimits, then bwrap (twice as root, with setpriv between them) laying out the sandbox's files,
namespaces and environment; or, without bwrap, `env -i` in a private host folder. HostSandbox
(sandbox.py) probes what the host offers and inherits these methods."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .cgroups import CgroupSet

if TYPE_CHECKING:
    from .sandbox import SandboxUser

# Per-worker limits that are not the function's own settings.
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


class LaunchCommand:
    """Turns a `WorkerSpec` into the command that launches it, from what HostSandbox probed."""

    sh: str
    setpriv: str | None
    bwrap: str | None
    seccomp: bytes | None
    user: SandboxUser | None

    @property
    def drops_uid(self) -> bool:
        raise NotImplementedError

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
        etc = [
            "/etc/localtime",
            "/etc/passwd",
            "/etc/group",
            "/etc/nsswitch.conf",
            "/etc/ssl",
            "/etc/ca-certificates",
            "/etc/alternatives",
        ]
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
        args = [
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--uid",
            "65534",
            "--gid",
            "65534",
            "--die-with-parent",
            "--new-session",
        ]
        if spec.network:
            args.append("--share-net")
        if self.seccomp:
            fds.append(_memfd("cloudfn-seccomp", self.seccomp))
            args += ["--seccomp", str(fds[-1])]
        return args

    @staticmethod
    def _private(spec: WorkerSpec) -> list[str]:
        return [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(TMP_MB * 1024 * 1024),
            "--tmpfs",
            "/tmp",
            "--chdir",
            spec.chdir,
        ]

    def _limits_script(self, spec: WorkerSpec, cg: CgroupSet | None) -> str:
        """Join the cgroups first (as root: the sandbox user could not), then set the rlimits."""
        steps = [f"echo $$ > '{p}/cgroup.procs'" for p in (cg.paths() if cg else [])]
        cpu = spec.cpu_seconds
        steps += [
            f"ulimit -t {cpu + 1}",
            f"ulimit -S -t {cpu}",
            f"ulimit -f {FSIZE_MB * 2048}",
            f"ulimit -n {NOFILE}",
            "ulimit -c 0",
        ]
        if spec.data_mb:
            steps.append(f"ulimit -d {spec.data_mb * 1024}")
        return " && ".join(steps) + ' && exec "$@"'

    def command(self, spec: WorkerSpec, cg: CgroupSet | None) -> Launch:
        """How to exec this worker; fds named in the argv ({REQ_FD}, {RESP_FD}) are the caller's
        to pass, besides `Launch.fds`."""
        fds: list[int] = []
        try:
            return self._command(spec, cg, fds)
        except BaseException:
            _close(fds)
            raise

    def _command(self, spec: WorkerSpec, cg: CgroupSet | None, fds: list[int]) -> Launch:
        env = dict(LAUNCH_ENV)
        if self.bwrap:
            bwrap = self.bwrap
            inner = self._namespaces(spec, fds)
            if self.drops_uid:
                # The root bwrap lays out the files; the unprivileged one sees only that layout.
                outer = [
                    bwrap,
                    "--die-with-parent",
                    "--cap-add",
                    "CAP_SETUID",
                    "--cap-add",
                    "CAP_SETGID",
                    "--cap-add",
                    "CAP_SETPCAP",
                    *self._layout(spec, fds, plain_files=True),
                    "--bind",
                    "/proc",
                    "/proc",
                    "--dev",
                    "/dev",
                    "--dir",
                    "/tmp",
                    "--",
                ]
                inner += ["--ro-bind", "/", "/"]
                for m in spec.mounts:
                    if m.rw:
                        inner += ["--bind", m.target, m.target]
                u, setpriv = self.user, self.setpriv
                assert u is not None and setpriv is not None  # what drops_uid means
                drop = [
                    setpriv,
                    f"--reuid={u.uid}",
                    f"--regid={u.gid}",
                    "--clear-groups",
                    "--inh-caps=-all",
                    "--bounding-set=-all",
                    "--no-new-privs",
                    "--",
                ]
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
                return str(m.source) + target[len(m.target) :]
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


def _close(fds: Iterable[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
