"""The function registry: create, list, get by id or name, partial update, delete.

Every stored version is kept in its own table, so a function can be rolled back; at most
`max_versions` per function, the oldest pruned. The code is not in the table: each version's code
is a file named by its sha256 under `<code_dir>/<function id>/`, written once (atomically, 0600),
and the documents hold only the hash. With the code inline, TinyDB rewrote every version's code
on every write: 30 updates of a 1 MB function made a 32 MB registry.json and a 0.46 s create.
The current functions are also held in memory. On the embedded store one process owns the data,
so after the first read every write passes through here and an invoke never reads the file; on a
shared store (PostgreSQL) each read first compares the store's generation, one indexed query, and
reloads when another process wrote.

Where the code lives is the blob store's business (core/storage/blobs.py: files in the data
directory; core/storage/postgres.py: rows in the database).
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.errors import Conflict, FieldError, InvalidInput, NotFound, Unavailable
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
from core.storage.base import BlobStore, Storage
from core.storage.blobs import FileBlobs, check_id

FUNCTIONS = "functions"
VERSIONS = "versions"
META = "meta"
SAVED = "saved_events"
MAX_SAVED_EVENT = 256 * 1024
CODE_KEY = "code_sha256"
FILES_KEY = "files_sha256"  # {relative path: sha256 of its text}; the texts are files like the code
DEFAULT_MAX_VERSIONS = 20


class Registry:
    def __init__(
        self,
        store: Storage,
        default_timeout: int = 30,
        code_dir: Path | None = None,
        max_versions: int = DEFAULT_MAX_VERSIONS,
        default_memory: int = 128,
        blobs: BlobStore | None = None,
    ):
        self.store = store
        self.default_timeout = default_timeout
        self.default_memory = default_memory
        if blobs is None:
            path = Path(getattr(store, "path", "."))
            blobs = FileBlobs(Path(code_dir) if code_dir is not None else path.parent / "versions", store.location)
        self.blobs = blobs
        self.max_versions = max(1, max_versions)
        self._by_id: dict[str, Function] | None = None
        self._generation = 0
        self._migrate()
        self._sweep()

    @property
    def code_dir(self) -> Path:
        return self.blobs.code_dir if isinstance(self.blobs, FileBlobs) else Path()

    # -- code ----------------------------------------------------------------------------
    def _put_code(self, store: Storage, fn_id: str, code: str) -> str:
        return self.blobs.put(store, check_id(fn_id, self.store.location), code.encode("utf-8"))

    def _get_code(self, fn_id: str, digest: str) -> str:
        return self.blobs.get(check_id(fn_id, self.store.location), digest).decode("utf-8")

    def _stored(self, store: Storage, fn: Function) -> dict[str, Any]:
        doc = fn.to_doc()
        doc[CODE_KEY] = self._put_code(store, fn.id, doc.pop("code"))
        # every file by its hash too: a version that changes one file stores one new file
        doc[FILES_KEY] = {path: self._put_code(store, fn.id, text) for path, text in doc.pop("files", {}).items()}
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
                        doc[CODE_KEY] = self._put_code(self.store, doc["id"], doc.pop("code"))
                        moved = True
            return data if moved else None

        self.store.rewrite(move)

    def _sweep(self) -> None:
        """Remove the code a crash between a store write and a code removal left behind."""

        def sweep(store: Storage) -> None:
            named: dict[str, set[str]] = {d["id"]: set() for d in store.all(FUNCTIONS)}
            for table in (FUNCTIONS, VERSIONS):  # one read of each table, however many functions
                for d in store.all(table):
                    named.get(d["id"], set()).update(_digests(d))
            self.blobs.sweep(store, named)

        self.store.transaction(sweep)

    def _prune(self, store: Storage, fn_id: str) -> None:
        versions = sorted(d["version"] for d in store.all(VERSIONS) if d["id"] == fn_id)
        if len(versions) > self.max_versions:
            floor = versions[-self.max_versions]
            store.remove_where(VERSIONS, lambda d: d["id"] == fn_id and d["version"] < floor)
        self.blobs.retain(
            store,
            check_id(fn_id, store.location),
            {h for t in (FUNCTIONS, VERSIONS) for d in store.all(t) if d["id"] == fn_id for h in _digests(d) if h},
        )

    # -- reads ---------------------------------------------------------------------------
    def _cache(self) -> dict[str, Function]:
        try:
            generation = self.store.generation()  # read before the data: a write in between reloads again
        except Unavailable:
            if self._by_id is None:
                raise
            return self._by_id  # a shared store is away: invocations keep running on what was read last
        if self._by_id is None or generation != self._generation:
            self._by_id = None
            self._generation = generation
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

    def _write(self, write: Callable[[Storage], tuple[Function, bool]]) -> Function:
        """Run a write in a store transaction and keep the cache in step; a failed write
        drops the cache, so the next read comes from the store. The cache is updated in place
        only if it was current when the write began (no other process wrote since it loaded)."""

        def run(store: Storage) -> tuple[Function, bool, int, int]:
            before = store.generation()
            fn, deleted = write(store)
            return fn, deleted, before, store.generation()

        try:
            fn, deleted, before, after = self.store.transaction(run)
        except Unavailable:
            raise  # the cache stays for reads while the store is away; its generation tells if it missed this write
        except BaseException:
            self._by_id = None
            raise
        if self._by_id is None or before != self._generation:
            self._by_id = None
            self._cache()
            return fn
        self._generation = after
        cache = self._by_id
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
    def _find(store: Storage, ref: str) -> dict[str, Any]:
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
        check_files(fn, "function")

        def write(store: Storage) -> tuple[Function, bool]:
            self._check_name_free(store, fn.name)
            doc = self._stored(store, fn)
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

        def write(store: Storage) -> tuple[Function, bool]:
            current = self._loaded(self._find(store, ref))
            if "name" in changes and changes["name"] != current.name:
                self._check_name_free(store, changes["name"], current.id)
            updated = current.model_copy(update={**changes, "version": current.version + 1, "updated_at": utcnow()})
            check_files(updated, "function update")  # a new runtime's handler file may clash
            doc = self._stored(store, updated)
            store.upsert(FUNCTIONS, "id", doc)
            store.insert(VERSIONS, doc)
            self._prune(store, updated.id)
            return updated, False

        return self._write(write)

    def rollback(self, ref: str, version: int) -> Function:
        """Make an earlier version's code and settings current again, as a new version."""
        old = next((v for v in self.versions(ref) if v.version == version), None)
        if old is None:
            raise no_version(ref, version)
        fields = old.model_dump(include=set(FunctionPatch.model_fields))
        return self.update(ref, FunctionPatch(**fields))

    def delete(self, ref: str) -> Function:
        def write(store: Storage) -> tuple[Function, bool]:
            fn = self._loaded(self._find(store, ref))
            store.remove(FUNCTIONS, "id", fn.id)
            store.remove(VERSIONS, "id", fn.id)
            store.remove(SAVED, "function_id", fn.id)
            self.blobs.drop(store, check_id(fn.id, store.location))  # after the documents: _sweep cleans a crash here
            return fn, True

        return self._write(write)

    @staticmethod
    def _check_name_free(store: Storage, name: str, renaming: str | None = None) -> None:
        key = name_key(name)
        taken = next(
            (d["name"] for d in store.all(FUNCTIONS) if name_key(d["name"]) == key and d["id"] != renaming), None
        )
        if taken is not None:
            raise name_taken(name, taken)

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


def check_files(fn: Function, what: str) -> None:
    """The files and where the handler file sits (a merged update is not validated by pydantic)."""
    why = handler_file_problem(fn.handler_file, fn.runtime)
    if not why and fn.handler_file == HANDLER_FILES.get(fn.runtime):
        fn.handler_file = ""  # the default's own name is the default layout
    errors = [FieldError("handler_file", why)] if why else []
    errors += files_errors(fn.files, fn.runtime, fn.handler_file)
    if errors:
        raise InvalidInput(what, errors)


def name_taken(name: str, taken: str) -> Conflict:
    """Shared with the console tests' fake platform, as the errors below, so both word it alike."""
    same = "" if taken == name else f" ({taken!r}: names are unique without regard to case)"
    return Conflict(f"a function named {name!r} already exists{same}; pick another name or update it")


def no_version(ref: str, version: int) -> NotFound:
    return NotFound(f"function {ref!r} has no version {version}")


def not_found(ref: str, names: list[str]) -> NotFound:
    """NotFound naming the closest names, so a typo is one look away from its fix."""
    import difflib

    by_lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(str(ref).lower(), list(by_lower), n=1, cutoff=0.6)
    if not close:
        return NotFound(f"no function named {ref!r}")
    return NotFound(f"no function named {ref!r}; did you mean {by_lower[close[0]]!r}?")
