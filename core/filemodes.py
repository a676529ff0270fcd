"""Private files in the data directory: its stores hold function code and environment values,
its history events and results, its logs what functions printed. With the usual umask they were
0644 under 0755 folders, readable by every local user. Here every such file is made 0600 and
every folder 0700 whatever the umask, and looser modes left by older versions are fixed at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("cloudfn.storage")

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# The folders on the way to the workers' function folders. 0700 like the rest: the sandbox's
# files are laid out by a root bwrap (core/executors/sandbox.py), so the sandbox user never
# needs to pass through the data directory (bwrap run as that user could not bind from it).
TRAVERSE_DIR = PRIVATE_DIR


def _opener(path: str, flags: int) -> int:
    return os.open(path, flags, PRIVATE_FILE)


def open_private(path: Path, mode: str, **kwargs: Any) -> IO[Any]:
    """`open`, but a file it creates is 0600 (the umask can only take bits away from that)."""
    return open(path, mode, opener=_opener, **kwargs)


def private_dir(path: Path, mode: int = PRIVATE_DIR) -> Path:
    """Create `path` with `mode` whatever the umask and fix a looser one. Missing parents get
    0755, as `mkdir -p` with the usual umask: under a umask of 000 they would be world-writable,
    and a writable parent lets anyone swap the folder for their own."""
    path = Path(path)
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, mode if d == path else 0o755)
        except FileExistsError:
            pass
    set_mode(path, mode, follow=True)
    return path


def set_mode(path: Path, mode: int, follow: bool = False) -> bool:
    """Give `path` exactly `mode`; warn when it was open to more users than that. A symlink is
    left alone (chmod would change its target) unless `follow`: the data directory the user
    configured may be a link."""
    st = os.stat(path) if follow else os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return False
    current = stat.S_IMODE(st.st_mode)
    if current == mode:
        return False
    os.chmod(path, mode)
    if current & ~mode:
        log.warning("%s was open to other users (mode %o); made it %o", path, current, mode)
    return True


def secure_data_dir(data_dir: Path, open_inside: Iterable[Path] = ()) -> None:
    """Make the data directory private: files 0600, folders 0700, except the folders in
    `open_inside` (the workers' function folders), which are left as they are and whose
    ancestors get 0711 so that the sandbox can reach them."""
    top = Path(os.path.realpath(data_dir))
    kept = {Path(os.path.realpath(p)) for p in open_inside}
    kept = {k for k in kept if top in k.parents}
    reach = {a for k in kept for a in k.parents if a == top or top in a.parents}
    private_dir(data_dir, TRAVERSE_DIR if kept else PRIVATE_DIR)
    for root, dirs, files in os.walk(top):
        here = Path(root)
        dirs[:] = [d for d in dirs if here / d not in kept]
        # Another process may own the directory and be removing files as we pass.
        with contextlib.suppress(FileNotFoundError):
            for d in dirs:
                set_mode(here / d, TRAVERSE_DIR if here / d in reach else PRIVATE_DIR)
        for f in files:
            p = here / f
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISREG(os.lstat(p).st_mode):  # not a socket or link: their owners set those
                    set_mode(p, PRIVATE_FILE)
