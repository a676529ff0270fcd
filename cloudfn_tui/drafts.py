"""Unsaved code that outlives the console: one JSON file per function, `<folder>/<id>.json`,
holding the handler file's code and, when they were edited, the function's other files.

Local platform: `<data_dir>/drafts/`, beside the functions it drafts. Remote: the user's XDG
state folder, one subfolder per server URL (the server's data directory is not ours to write).
Files are 0600 in a 0700 folder and replaced atomically, so a crash mid-write keeps the old draft.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.models import Function

log = logging.getLogger(__name__)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def drafts_folder(platform: Any) -> Path | None:
    url = next((getattr(platform, a) for a in ("base_url", "url", "server_url") if getattr(platform, a, None)), None)
    if url:
        import platformdirs

        slug = re.sub(r"[^A-Za-z0-9.-]+", "_", str(url).split("://", 1)[-1])[:60]
        digest = hashlib.sha256(str(url).encode()).hexdigest()[:12]
        return platformdirs.user_state_path("cloudfn") / "drafts" / f"{slug}-{digest}"
    data_dir = getattr(platform, "data_dir", None)
    return Path(data_dir) / "drafts" if data_dir else None


class DraftStore:
    """Reads and writes drafts; a folder that cannot be written costs a warning, never the console."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = Path(folder) if folder else None
        self.problem = ""  # the last write's failure, for the console to say

    def _path(self, fn_id: str) -> Path | None:
        if self.folder is None or not _SAFE_ID.match(fn_id or "") or fn_id.startswith("."):
            return None
        return self.folder / f"{fn_id}.json"

    def load_all(self) -> dict[str, dict[str, Any]]:
        """{function id: {"code", "version", "name", "saved_at"[, "files"]}} of every readable draft."""
        found: dict[str, dict[str, Any]] = {}
        if self.folder is None or not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("*.json")):
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("unreadable draft %s left alone", path)
                continue
            if isinstance(doc, dict) and isinstance(doc.get("code"), str) and doc.get("function_id") == path.stem:
                files = doc.get("files")
                if files is not None and not (
                    isinstance(files, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
                ):
                    doc.pop("files")  # a damaged files map: the code draft is still worth keeping
                found[path.stem] = doc
        return found

    def write(self, fn_id: str, code: str, version: int, name: str = "", files: dict[str, str] | None = None) -> bool:
        """`files`: the function's other files as edited, when they differ from the saved ones."""
        path = self._path(fn_id)
        if path is None:
            return False
        from core.filemodes import private_dir
        from core.storage import atomic_write_bytes

        doc = {"function_id": fn_id, "name": name, "version": version, "code": code, "saved_at": time.time()}
        if files is not None:
            doc["files"] = files
        try:
            private_dir(path.parent)
            atomic_write_bytes(path, json.dumps(doc, ensure_ascii=False).encode("utf-8"))
        except OSError as exc:
            self.problem = f"cannot keep the draft of {name or fn_id} in {path.parent}: {exc.strerror or exc}"
            return False
        self.problem = ""
        return True

    def remove(self, fn_id: str) -> None:
        path = self._path(fn_id)
        if path is not None:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove the draft %s: %s", path, exc)


class CodeDrafts:
    """The code editor's unsaved work, per function: kept while other functions are shown, and
    written to a DraftStore so it outlives the console.

    The editor owns it; the screen attaches the store and a way to look a function up (the
    list's copy names the draft and dates it)."""

    def __init__(self) -> None:
        self.store: DraftStore | None = None
        self.lookup: Callable[[str], Function | None] = lambda fn_id: None
        self.code: dict[str, str] = {}  # unsaved code per function id
        # and the unsaved set of other files, where it differs from the saved version's
        self.files: dict[str, dict[str, str]] = {}
        self.bases: dict[str, int] = {}  # the version each draft was written on
        self.restored: set[str] = set()  # drafts that came back from an earlier console
        self._on_disk: dict[str, tuple[str, dict[str, str] | None]] = {}  # to write only changes
        self._warned = False

    def attach(self, store: DraftStore | None, lookup: Callable[[str], Function | None]) -> None:
        self.store, self.lookup = store, lookup

    def __contains__(self, fn_id: object) -> bool:
        return fn_id in self.code

    def take(self, fn: Function, dirty: bool, code: str, files: dict[str, str]) -> None:
        """The editor's texts of `fn` become its draft; a clean editor leaves none."""
        if dirty:
            self.code[fn.id] = code
            if files != fn.files:
                self.files[fn.id] = files
            else:
                self.files.pop(fn.id, None)
        else:
            self.code.pop(fn.id, None)
            self.files.pop(fn.id, None)

    def workspace(self, fn: Function) -> tuple[str, dict[str, str]]:
        """(code, files) of `fn`'s draft."""
        return self.code[fn.id], self.files.get(fn.id, fn.files)

    def persist(self, fn_id: str) -> str:
        """Write `fn_id`'s draft to the store (or remove it there, when there is none). Returns
        the store's problem the first time a write fails, for the console to say once."""
        code = self.code.get(fn_id)
        fn = self.lookup(fn_id)
        if code is None or fn is None:
            if self._on_disk.pop(fn_id, None) is not None and self.store is not None:
                self.store.remove(fn_id)
            return ""
        files = self.files.get(fn_id)
        if self._on_disk.get(fn_id) == (code, files) or self.store is None:
            return ""
        base = self.bases.get(fn_id, fn.version)
        if self.store.write(fn_id, code, base, fn.name, files=files):
            self._on_disk[fn_id] = (code, files)
        elif self.store.problem and not self._warned:
            self._warned = True
            return self.store.problem
        return ""

    def drop(self, fn_id: str) -> None:
        self.code.pop(fn_id, None)
        self.files.pop(fn_id, None)
        self.bases.pop(fn_id, None)
        self.restored.discard(fn_id)
        self._on_disk.pop(fn_id, None)
        if self.store is not None:
            self.store.remove(fn_id)

    def restore(self) -> list[str]:
        """Read the drafts an earlier console left; returns what to tell the user of each.
        A draft that matches the saved version is removed; one of a deleted function stays on
        disk, for whoever wants it by hand."""
        if self.store is None:
            return []
        restored = []
        for fn_id, doc in self.store.load_all().items():
            fn = self.lookup(fn_id)
            if fn is None:
                continue
            files = doc.get("files")
            if doc["code"] == fn.code and files in (None, fn.files):
                self.store.remove(fn_id)
                continue
            self.code[fn_id] = doc["code"]
            if files is not None:
                self.files[fn_id] = files
            self._on_disk[fn_id] = (doc["code"], files)
            self.bases[fn_id] = int(doc.get("version") or fn.version)
            self.restored.add(fn_id)
            base = self.bases[fn_id]
            moved = "" if base == fn.version else f" (written on v{base}, now v{fn.version})"
            restored.append(f"{fn.name}{moved}")
        return restored

    def pending(self) -> dict[str, str]:
        """{function id: code} of every draft whose function still exists."""
        return {i: c for i, c in self.code.items() if self.lookup(i) is not None}

    def keep_all(self) -> str:
        problem = ""
        for fn_id in list(self.code):
            problem = self.persist(fn_id) or problem
        return problem

    def drop_all(self) -> None:
        for fn_id in list(self.code):
            self.drop(fn_id)
