"""The seccomp filter every function and build process runs under (bwrap's `--seccomp FD`).

Allow by default, deny what a function never needs and what widens an escape: new namespaces,
mounts, tracing other processes, kernel modules and kexec, BPF and perf, the kernel keyring,
io_uring (its operations bypass this filter), clock and swap changes, file handles that walk
around a mount. A denied call fails with EPERM inside the function (ENOSYS for clone3, so libc
falls back to clone, whose flags can be checked); the worker never dies of it.

The filter is compiled once per platform with libseccomp (through pyseccomp, a ctypes binding
that needs libseccomp2 only); where either is missing, `available()` says why and workers run
without it (`cloudfn info` shows that).
"""

from __future__ import annotations

import errno

DENIED = (
    # namespaces and mounts: the sandbox's own layout is final
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # the kernel itself
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "lookup_dcookie",
    "iopl",
    "ioperm",
    "syslog",
    "acct",
    "swapon",
    "swapoff",
    "quotactl",
    "quotactl_fd",
    "vhangup",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    # the keyring is not namespaced
    "keyctl",
    "add_key",
    "request_key",
    # io_uring's submissions are not seen by seccomp
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # file handles resolve outside the mounts a process was given
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
)
# clone() flags that make namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
# NEWNET, NEWTIME): threads and forks pass none of them.
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)

_compiled: bytes | None = None
_problem = ""


def _compile() -> bytes:
    import tempfile

    import pyseccomp as sc  # noqa: PLC0415 (a ctypes load of libseccomp: only when needed)

    f = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED:
        try:
            f.add_rule(sc.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            continue  # a call this kernel's architecture does not have
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in NAMESPACE_FLAGS:
        f.add_rule(sc.ERRNO(errno.EPERM), "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        data = out.read()
    return data


def program() -> bytes | None:
    """The compiled filter (a cBPF program, as bwrap reads it), or None when it cannot be made."""
    global _compiled, _problem
    if _compiled is None and not _problem:
        try:
            _compiled = _compile()
        except ImportError:
            _problem = "pyseccomp is not installed (pip install pyseccomp)"
        except Exception as exc:  # libseccomp missing or refusing: ctypes and its own errors
            _problem = f"libseccomp cannot build the filter: {exc} (apt-get install libseccomp2)"
    return _compiled


def problem() -> str:
    program()
    return _problem
