"""The embedded backend's code store: each blob a file named by its sha256 under
`<code_dir>/<function id>/`, written once (atomically, 0600)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
from pathlib import Path

from core.errors import StoreCorrupt
from core.filemodes import PRIVATE_FILE, private_dir
from core.storage.base import Storage
from core.storage.embedded import atomic_write_bytes

# Ids become folder names; anything else in a (hand-edited) store must not reach rmtree.
SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


def check_id(fn_id: object, where: str) -> str:
    if not isinstance(fn_id, str) or not SAFE_ID.fullmatch(fn_id):
        raise StoreCorrupt(
            f"the store {where} holds a function id {fn_id!r} that is not a "
            f"plain id; cloudfn left it untouched. Restore the store from a backup."
        )
    return fn_id


class FileBlobs:
    def __init__(self, code_dir: Path, store_location: str):
        self.code_dir = Path(code_dir)
        self._store_location = store_location

    @property
    def location(self) -> str:
        return str(self.code_dir)

    def _fn_dir(self, fn_id: str) -> Path:
        return self.code_dir / check_id(fn_id, self._store_location)

    def put(self, store: Storage, fn_id: str, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        folder = self._fn_dir(fn_id)
        path = folder / digest
        if not path.exists():  # named by its content: an existing file already holds these bytes
            for d in (self.code_dir, folder):
                if not d.is_dir():
                    private_dir(d)
            atomic_write_bytes(path, data, mode=PRIVATE_FILE)
        return digest

    def get(self, fn_id: str, digest: str) -> bytes:
        path = self._fn_dir(fn_id) / digest
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreCorrupt(
                f"the code of a stored version of function {fn_id} is missing ({path}); "
                f"restore the data directory from a backup"
            ) from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreCorrupt(
                f"the code file {path} does not match its hash (damaged on disk); "
                f"restore the data directory from a backup"
            )
        return data

    def retain(self, store: Storage, fn_id: str, keep: set[str]) -> None:
        folder = self._fn_dir(fn_id)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name not in keep:
                    remove_path(path)

    def drop(self, store: Storage, fn_id: str) -> None:
        remove_path(self._fn_dir(fn_id))

    def sweep(self, store: Storage, named: dict[str, set[str]]) -> None:
        """Remove what a crash between a store write and a file removal left behind: folders
        of deleted functions, files no version names, temp files."""
        if not self.code_dir.is_dir():
            return
        for folder in self.code_dir.iterdir():
            if folder.name not in named:
                remove_path(folder)
        for fn_id, digests in named.items():
            self.retain(store, fn_id, digests)


def remove_path(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
