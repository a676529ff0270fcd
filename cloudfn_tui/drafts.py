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
from pathlib import Path
from typing import Any

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
                if files is not None and not (isinstance(files, dict)
                                              and all(isinstance(k, str) and isinstance(v, str)
                                                      for k, v in files.items())):
                    doc.pop("files")  # a damaged files map: the code draft is still worth keeping
                found[path.stem] = doc
        return found

    def write(self, fn_id: str, code: str, version: int, name: str = "",
              files: dict[str, str] | None = None) -> bool:
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
