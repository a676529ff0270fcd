"""The function registry: create, list, get by id or name, partial update, delete.

Every stored version is kept in its own table, so a function can be rolled back; at most
`max_versions` per function, the oldest pruned. The code is not in the table: each version's code
is a file named by its sha256 under `<code_dir>/<function id>/`, written once (atomically, 0600),
and the documents hold only the hash. With the code inline, TinyDB rewrote every version's code
on every write: 30 updates of a 1 MB function made a 32 MB registry.json and a 0.46 s create.
The current functions are also held in memory: one process owns a data directory, so after the
first read every write passes through here, and an invoke never reads the file.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import Conflict, FieldError, InvalidInput, NotFound, StoreCorrupt
from core.filemodes import PRIVATE_FILE, private_dir
from core.funcfiles import HANDLER_FILES, files_errors, handler_file_problem
from core.models import (
    NULLABLE_ON_UPDATE,
    Function,
    FunctionPatch,
    FunctionSpec,
    SavedEvent,
    drop_zero_values,
    name_key,
    parse_patch,
    parse_spec,
    utcnow,
)
from core.storage import TinyStore, atomic_write_bytes

FUNCTIONS = "functions"
VERSIONS = "versions"
META = "meta"
SAVED = "saved_events"
MAX_SAVED_EVENT = 256 * 1024
CODE_KEY = "code_sha256"
FILES_KEY = "files_sha256"  # {relative path: sha256 of its text}; the texts are files like the code
DEFAULT_MAX_VERSIONS = 20
# Ids become folder names; anything else in a (hand-edited) store must not reach rmtree.
_SAFE_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


class Registry:
    def __init__(self, store: TinyStore, default_timeout: int = 30, code_dir: Path | None = None,
                 max_versions: int = DEFAULT_MAX_VERSIONS, default_memory: int = 128):
        self.store = store
        self.default_timeout = default_timeout
        self.default_memory = default_memory
        self.code_dir = Path(code_dir) if code_dir is not None else store.path.parent / "versions"
        self.max_versions = max(1, max_versions)
        self._by_id: dict[str, Function] | None = None
        self._migrate()
        self._sweep()

    # -- code files ----------------------------------------------------------------------
    def _fn_dir(self, fn_id: str) -> Path:
        if not isinstance(fn_id, str) or not _SAFE_ID.fullmatch(fn_id):
            raise StoreCorrupt(f"the store {self.store.path} holds a function id {fn_id!r} that is not a "
                               f"plain id; cloudfn left it untouched. Restore the store from a backup.")
        return self.code_dir / fn_id

    def _put_code(self, fn_id: str, code: str) -> str:
        data = code.encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        folder = self._fn_dir(fn_id)
        path = folder / digest
        if not path.exists():  # named by its content: an existing file already holds these bytes
            for d in (self.code_dir, folder):
                if not d.is_dir():
                    private_dir(d)
            atomic_write_bytes(path, data, mode=PRIVATE_FILE)
        return digest

    def _get_code(self, fn_id: str, digest: str) -> str:
        path = self._fn_dir(fn_id) / digest
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreCorrupt(f"the code of a stored version of function {fn_id} is missing ({path}); "
                               f"restore the data directory from a backup") from None
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreCorrupt(f"the code file {path} does not match its hash (damaged on disk); "
                               f"restore the data directory from a backup")
        return data.decode("utf-8")

    def _stored(self, fn: Function) -> dict[str, Any]:
        doc = fn.to_doc()
        doc[CODE_KEY] = self._put_code(fn.id, doc.pop("code"))
        # every file by its hash too: a version that changes one file stores one new file
        doc[FILES_KEY] = {path: self._put_code(fn.id, text) for path, text in doc.pop("files", {}).items()}
        return doc

    def _loaded(self, doc: dict[str, Any]) -> Function:
        doc = dict(doc)
        digest = doc.pop(CODE_KEY, None)
        if "code" not in doc and digest is not None:
            doc["code"] = self._get_code(doc["id"], digest)
        digests = doc.pop(FILES_KEY, None)
        if "files" not in doc and isinstance(digests, dict):
            doc["files"] = {path: self._get_code(doc["id"], d) for path, d in digests.items()}
        return Function.model_validate(doc)

    def _migrate(self) -> None:
        """Registries written before the code files held every version's code inline: move it
        out, every version kept. The files are written (fsynced) before the one rewrite of the
        store that points at them."""

        def move(data: dict[str, Any]) -> dict[str, Any] | None:
            moved = False
            for table in (FUNCTIONS, VERSIONS):
                for doc in (data.get(table) or {}).values():
                    if isinstance(doc, dict) and isinstance(doc.get("code"), str) and "id" in doc:
                        doc[CODE_KEY] = self._put_code(doc["id"], doc.pop("code"))
                        moved = True
            return data if moved else None

        self.store.rewrite(move)

    def _sweep(self) -> None:
        """Remove what a crash between a store write and a file removal left behind: folders
        of deleted functions, files no version names, temp files."""
        if not self.code_dir.is_dir():
            return
        named: dict[str, set[str]] = {d["id"]: set() for d in self.store.all(FUNCTIONS)}
        for table in (FUNCTIONS, VERSIONS):  # one read of each table, however many functions
            for d in self.store.all(table):
                named.get(d["id"], set()).update(_digests(d))
        for folder in self.code_dir.iterdir():
            if folder.name not in named:
                _remove(folder)
        for fn_id, digests in named.items():
            self._collect(fn_id, digests)

    def _collect(self, fn_id: str, named: set[str]) -> None:
        """Remove this function's code files that no stored version names."""
        folder = self._fn_dir(fn_id)
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name not in named:
                    _remove(path)

    def _prune(self, store: TinyStore, fn_id: str) -> None:
        versions = sorted(d["version"] for d in store.all(VERSIONS) if d["id"] == fn_id)
        if len(versions) > self.max_versions:
            floor = versions[-self.max_versions]
            store.remove_where(VERSIONS, lambda d: d["id"] == fn_id and d["version"] < floor)
        self._collect(fn_id, {h for t in (FUNCTIONS, VERSIONS) for d in store.all(t) if d["id"] == fn_id
                              for h in _digests(d)})

    # -- reads ---------------------------------------------------------------------------
    def _cache(self) -> dict[str, Function]:
        if self._by_id is None:
            self._by_id = {d["id"]: self._loaded(d) for d in self.store.all(FUNCTIONS)}
        return self._by_id

    def list(self) -> list[Function]:
        return sorted(self._cache().values(), key=lambda f: f.name)

    def get(self, ref: str) -> Function:
        cache = self._cache()
        fn = cache.get(ref)
        if fn is not None:
            return fn
        for fn in cache.values():
            if fn.name == ref:
                return fn
        key = name_key(ref)  # names are unique without regard to case, so this finds at most one
        for fn in cache.values():
            if name_key(fn.name) == key:
                return fn
        raise not_found(ref, [fn.name for fn in cache.values()])

    def _write(self, write: Callable[[TinyStore], tuple[Function, bool]]) -> Function:
        """Run a write in a store transaction and keep the cache in step; a failed write
        drops the cache, so the next read comes from the file."""
        try:
            fn, deleted = self.store.transaction(write)
        except BaseException:
            self._by_id = None
            raise
        cache = self._cache()
        if deleted:
            cache.pop(fn.id, None)
        else:
            cache[fn.id] = fn
        return fn

    def versions(self, ref: str) -> builtins.list[Function]:  # `list` is a method of this class
        fn = self.get(ref)
        docs = [d for d in self.store.all(VERSIONS) if d["id"] == fn.id]
        return sorted((self._loaded(d) for d in docs), key=lambda f: f.version)

    @staticmethod
    def _find(store: TinyStore, ref: str) -> dict[str, Any]:
        docs = store.all(FUNCTIONS)
        for d in docs:
            if d["id"] == ref:
                return d
        for d in docs:
            if d["name"] == ref:
                return d
        key = name_key(ref)
        for d in docs:
            if name_key(d["name"]) == key:
                return d
        raise not_found(ref, [d["name"] for d in docs])

    # -- writes --------------------------------------------------------------------------
    def spec_from(self, data: dict[str, Any] | FunctionSpec) -> FunctionSpec:
        """A create request validated, with this registry's defaults filled in."""
        if isinstance(data, dict):
            data = drop_zero_values(data, patch=False)
            data = {"timeout": self.default_timeout, "memory": self.default_memory, **data}
        return data if isinstance(data, FunctionSpec) else parse_spec(data)

    def check_name_free(self, name: str, renaming: str | None = None) -> None:
        self._check_name_free(self.store, name, renaming)

    def create(self, data: dict[str, Any] | FunctionSpec) -> Function:
        spec = self.spec_from(data)
        fn = Function(**spec.model_dump())
        _check_files(fn, "function")

        def write(store: TinyStore) -> tuple[Function, bool]:
            self._check_name_free(store, fn.name)
            doc = self._stored(fn)
            store.insert(FUNCTIONS, doc)
            store.insert(VERSIONS, doc)
            return fn, False

        return self._write(write)

    def update(self, ref: str, data: dict[str, Any] | FunctionPatch) -> Function:
        patch = data if isinstance(data, FunctionPatch) else parse_patch(data)
        # The fields as models, not dumped: model_copy below does not validate, and nested
        # settings (http, rate_limit, schedules) must stay models in the stored Function.
        changes = {k: getattr(patch, k) for k in patch.model_fields_set}
        nulls = [k for k, v in changes.items() if v is None and k not in NULLABLE_ON_UPDATE]
        if nulls:
            raise InvalidInput("function update", [FieldError(k.rstrip("_"), "cannot be null") for k in nulls])
        if "async_" in changes:
            changes["async_"] = patch.async_

        def write(store: TinyStore) -> tuple[Function, bool]:
            current = self._loaded(self._find(store, ref))
            if "name" in changes and changes["name"] != current.name:
                self._check_name_free(store, changes["name"], current.id)
            updated = current.model_copy(
                update={**changes, "version": current.version + 1, "updated_at": utcnow()}
            )
            _check_files(updated, "function update")  # a new runtime's handler file may clash
            doc = self._stored(updated)
            store.upsert(FUNCTIONS, "id", doc)
            store.insert(VERSIONS, doc)
            self._prune(store, updated.id)
            return updated, False

        return self._write(write)

    def rollback(self, ref: str, version: int) -> Function:
        """Make an earlier version's code and settings current again, as a new version."""
        old = next((v for v in self.versions(ref) if v.version == version), None)
        if old is None:
            raise NotFound(f"function {ref!r} has no version {version}")
        fields = old.model_dump(include=set(FunctionPatch.model_fields))
        return self.update(ref, FunctionPatch(**fields))

    def delete(self, ref: str) -> Function:
        def write(store: TinyStore) -> tuple[Function, bool]:
            fn = self._loaded(self._find(store, ref))
            store.remove(FUNCTIONS, "id", fn.id)
            store.remove(VERSIONS, "id", fn.id)
            store.remove(SAVED, "function_id", fn.id)
            _remove(self._fn_dir(fn.id))  # after the store forgot it: a crash here leaves a folder _sweep removes
            return fn, True

        return self._write(write)

    @staticmethod
    def _check_name_free(store: TinyStore, name: str, renaming: str | None = None) -> None:
        key = name_key(name)
        taken = next((d["name"] for d in store.all(FUNCTIONS) if name_key(d["name"]) == key and d["id"] != renaming), None)
        if taken is not None:
            same = "" if taken == name else f" ({taken!r}: names are unique without regard to case)"
            raise Conflict(f"a function named {name!r} already exists{same}; pick another name or update it")

    # -- saved test events --------------------------------------------------------------
    def saved_events(self, ref: str) -> builtins.list[SavedEvent]:
        fn = self.get(ref)
        docs = [d for d in self.store.all(SAVED) if d["function_id"] == fn.id]
        return sorted((SavedEvent.model_validate(d) for d in docs), key=lambda e: e.name)

    def save_event(self, ref: str, name: str, event: Any, last_result: dict[str, Any] | None = None) -> SavedEvent:
        errors = []
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            errors.append(FieldError("name", "must be 1-64 characters"))
        try:
            size = len(json.dumps(event))
        except (TypeError, ValueError):
            errors.append(FieldError("event", "must be JSON"))
        else:
            if size > MAX_SAVED_EVENT:
                errors.append(FieldError("event", f"is {size} bytes; the limit is {MAX_SAVED_EVENT}"))
        if errors:
            raise InvalidInput("saved event", errors)
        fn = self.get(ref)
        saved = SavedEvent(function_id=fn.id, name=name.strip(), event=event, last_result=last_result)
        doc = {**saved.model_dump(mode="json"), "key": f"{fn.id}/{saved.name}"}
        self.store.upsert(SAVED, "key", doc)
        return saved

    def delete_saved_event(self, ref: str, name: str) -> None:
        fn = self.get(ref)
        if not self.store.remove(SAVED, "key", f"{fn.id}/{name}"):
            raise NotFound(f"function {fn.name!r} has no saved event named {name!r}")

    # -- first start ---------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        doc = self.store.get(META, "key", key)
        return doc["value"] if doc else None

    def set_meta(self, key: str, value: Any) -> None:
        self.store.upsert(META, "key", {"key": key, "value": value})


def _digests(doc: dict[str, Any]) -> set[str]:
    """The content files a stored document names: its code and every other file."""
    files = doc.get(FILES_KEY)
    return {doc.get(CODE_KEY), *(files.values() if isinstance(files, dict) else ())}


def _check_files(fn: Function, what: str) -> None:
    """The files and where the handler file sits (a merged update is not validated by pydantic)."""
    why = handler_file_problem(fn.handler_file, fn.runtime)
    if not why and fn.handler_file == HANDLER_FILES.get(fn.runtime):
        fn.handler_file = ""  # the default's own name is the default layout
    errors = [FieldError("handler_file", why)] if why else []
    errors += files_errors(fn.files, fn.runtime, fn.handler_file)
    if errors:
        raise InvalidInput(what, errors)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def not_found(ref: str, names: list[str]) -> NotFound:
    """NotFound naming the closest names, so a typo is one look away from its fix."""
    import difflib

    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(str(ref).lower(), list(by_lower), n=1, cutoff=0.6)
    if not close:
        return NotFound(f"no function named {ref!r}")
    return NotFound(f"no function named {ref!r}; did you mean {by_lower[close[0]]!r}?")
