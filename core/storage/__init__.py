"""Storage: one interface (core/storage/base.py), two backends.

- embedded (the default): TinyDB documents (core/storage/embedded.py), code files
  (core/storage/blobs.py) and the JSON-lines history (core/history.py), all in the data
  directory, which one process owns;
- PostgreSQL (`storage.url` / CLOUDFN_STORAGE_URL, core/storage/postgres.py): the same state in
  a database any number of processes share. Imported only when configured.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from core.storage.base import Backend, BlobStore, HistoryStore, Storage
from core.storage.blobs import FileBlobs
from core.storage.embedded import (
    TEMP_MARK,
    DataDirLock,
    TinyStore,
    atomic_write_bytes,
    fsync_dir,
    remove_stale_temp_files,
)

__all__ = [
    "TEMP_MARK",
    "Backend",
    "BlobStore",
    "DataDirLock",
    "EmbeddedBackend",
    "FileBlobs",
    "HistoryStore",
    "Storage",
    "TinyStore",
    "atomic_write_bytes",
    "fsync_dir",
    "mask_url",
    "open_backend",
    "remove_stale_temp_files",
]


class EmbeddedBackend:
    kind = "embedded"
    shared = False

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._stores: dict[str, TinyStore] = {}

    def describe(self) -> str:
        return f"embedded ({self.data_dir})"

    def documents(self, name: str) -> TinyStore:
        store = self._stores.get(name)
        if store is None:
            store = self._stores[name] = TinyStore(self.data_dir / f"{name}.json")
        return store

    def blobs(self, code_dir: Path) -> FileBlobs:
        return FileBlobs(code_dir, str(self.data_dir / "registry.json"))

    def history(self, directory: Path, max_records: int, max_age: timedelta) -> HistoryStore:
        from core.history import History

        return History(directory, autoflush=False, max_records=max_records, max_age=max_age)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()


def mask_url(url: str) -> str:
    """The URL with its password (user:PASSWORD@ or ?password=) replaced by ***, for logs,
    errors and `info`."""
    url = re.sub(r"(://[^:/@\s]*:)[^/\s]*@", r"\1***@", url)  # up to the last @: a raw @ in a password
    return re.sub(r"([?&]password=)[^&\s]*", r"\1***", url)


def open_backend(url: str | None, data_dir: Path) -> Backend:
    if not url:
        return EmbeddedBackend(data_dir)
    from core.storage.postgres import PostgresBackend  # psycopg only when configured

    return PostgresBackend(url)
