"""Import the original platform's data folder: `functions.json` (a JSON array of its `Function`
structs) beside a folder per function id holding the code as the original wrote it to disk
(`main.go` with `package main` and imports added, `index.js`, `main.py`).

Everything goes through `PlatformAPI`, so an import into a remote server works the same. A
function already there (by name, without regard to case) is updated with only the fields that
differ, so a second run changes nothing and adds no version. An entry that cannot be imported is
reported with its reason and the others still import.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.api import PlatformAPI
from core.errors import CloudfnError, FieldError, InvalidInput, NotFound
from core.models import MAX_CODE_BYTES, name_key, name_problem, parse_patch, parse_spec

FUNCTIONS_FILE = "functions.json"
SEED_CODE_FILES = {"go": "main.go", "nodejs": "index.js", "node": "index.js", "python": "main.py"}
IMPORTED_FIELDS = ("name", "runtime", "handler", "code", "timeout", "memory", "environment")
# The original's ids are fn_<unix nanoseconds>; anything else must not become a path to read.
_SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
MAX_INDEX = 256 * 1024 * 1024


@dataclass
class Outcome:
    """What the import did (or, in a dry run, would do) with one entry of functions.json."""

    action: str  # created, updated, unchanged, failed
    name: str
    seed_id: str = ""
    changed: list[str] = field(default_factory=list)
    reason: str = ""

    def line(self, dry_run: bool = False) -> str:
        who = repr(self.name) if self.name else "(no name)"
        where = f" [{self.seed_id}]" if self.seed_id else ""
        verb = self.action
        if dry_run:
            verb = {"created": "would create", "updated": "would update"}.get(verb, verb)
        extra = f": {', '.join(self.changed)}" if self.changed else ""
        if self.action == "failed":
            extra = f": {self.reason}"
        return f"{verb:<12} {who}{where}{extra}"


def read_seed_folder(folder: Path) -> list[Any]:
    """The entries of the folder's functions.json, or InvalidInput saying what is wrong with it."""
    folder = Path(folder)
    index = folder / FUNCTIONS_FILE
    what = f"data folder {folder}"
    if not index.is_file():
        hint = " (it is in the original's data directory, ./data by default)" if folder.is_dir() else ""
        raise InvalidInput(what, [FieldError("dir", f"has no {FUNCTIONS_FILE}{hint}: name the folder that holds it")])
    text = _read_regular(index, MAX_INDEX)
    if text is None:
        raise InvalidInput(what, [FieldError(FUNCTIONS_FILE, f"{index} is not a readable regular file")])
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            what, [FieldError(FUNCTIONS_FILE, f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")]
        ) from None
    if isinstance(data, dict) and isinstance(data.get("functions"), list):
        data = data["functions"]  # a saved `GET /api/v1/functions` answer has the same entries
    if not isinstance(data, list):
        raise InvalidInput(
            what, [FieldError(FUNCTIONS_FILE, f"must hold a JSON array of functions, got {type(data).__name__}")]
        )
    return data


def _read_regular(path: Path, limit: int) -> str | None:
    """The text of a regular file, never through a symlink (a folder from elsewhere could link
    `main.py` to a secret of this host); None when it is not one or cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read(limit + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


def _fields_of(entry: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The entry's fields cloudfn takes, the code from the function's folder when the index has
    none. Zero values stay: they mean "default" on create and "unchanged" on update."""
    fields = {k: entry[k] for k in IMPORTED_FIELDS if k in entry}
    code = fields.get("code")
    seed_id = entry.get("id")
    if (not isinstance(code, str) or not code.strip()) and isinstance(seed_id, str) and _SAFE_ID.fullmatch(seed_id):
        name = SEED_CODE_FILES.get(str(entry.get("runtime", "")).strip().lower())
        text = _read_regular(folder / seed_id / name, MAX_CODE_BYTES) if name else None
        if text is not None and text.strip():
            fields["code"] = text
    return fields


async def import_seed_folder(api: PlatformAPI, folder: Path, dry_run: bool = False) -> list[Outcome]:
    """Create or update a function per entry of the folder's functions.json; one Outcome each."""
    folder = Path(folder)
    entries = read_seed_folder(folder)
    outcomes: list[Outcome] = []
    seen: dict[str, str] = {}  # name key -> the seed id that used it first
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            why = f"entry {i + 1} of {FUNCTIONS_FILE} is a {type(entry).__name__}, not a function object"
            outcomes.append(Outcome("failed", "", f"#{i + 1}", reason=why))
            continue
        name = entry.get("name")
        seed_id = str(entry.get("id") or f"#{i + 1}")
        shown = name if isinstance(name, str) else ""
        why = name_problem(name)
        if why or not isinstance(name, str):  # name_problem refuses what is not a string
            outcomes.append(Outcome("failed", shown, seed_id, reason=f"name {why}; rename it in {FUNCTIONS_FILE}"))
            continue
        key = name_key(name)
        if key in seen:
            # The original allowed two functions of one name; cloudfn's names are addresses.
            outcomes.append(
                Outcome(
                    "failed",
                    name,
                    seed_id,
                    reason=f"{seen[key]} in this folder has the same name "
                    f"(names are unique without regard to case): "
                    f"rename one in {FUNCTIONS_FILE}",
                )
            )
            continue
        seen[key] = seed_id
        try:
            outcomes.append(await _import_one(api, _fields_of(entry, folder), name, seed_id, dry_run))
        except CloudfnError as exc:
            outcomes.append(Outcome("failed", name, seed_id, reason=_reason(exc)))
    return outcomes


def _reason(exc: CloudfnError) -> str:
    if isinstance(exc, InvalidInput) and exc.errors:
        return "; ".join(f"{e.field} {e.message}" for e in exc.errors)
    return exc.message


async def _import_one(api: PlatformAPI, fields: dict[str, Any], name: str, seed_id: str, dry_run: bool) -> Outcome:
    try:
        existing = await api.get_function(name)
    except NotFound:
        existing = None
    if existing is not None and name_key(existing.name) != name_key(name):
        existing = None  # `name` was some function's id, not its name
    if existing is None:
        if dry_run:
            parse_spec(fields)  # what the platform would refuse, refused now
            return Outcome("created", name, seed_id)
        fn = await api.create_function(fields)
        return Outcome("created", fn.name, seed_id)
    wanted = parse_patch(fields).model_dump(exclude_unset=True)
    changes = {k: v for k, v in wanted.items() if getattr(existing, k) != v}
    if not changes:
        return Outcome("unchanged", existing.name, seed_id)
    if not dry_run:
        await api.update_function(existing.id, changes)
    return Outcome("updated", existing.name, seed_id, changed=sorted(changes))


def summary(outcomes: list[Outcome], dry_run: bool = False) -> str:
    counts = {a: sum(1 for o in outcomes if o.action == a) for a in ("created", "updated", "unchanged", "failed")}
    head = "dry run, nothing changed: " if dry_run else ""
    words = {"created": "would create", "updated": "would update"} if dry_run else {}
    return head + ", ".join(f"{n} {words.get(a, a)}" for a, n in counts.items())
