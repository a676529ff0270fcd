"""The function registry: create, list, get by id or name, partial update, delete.

Every stored version is kept in its own table, so a function can be rolled back. The current
functions are also held in memory: one process owns a data directory, so after the first read
every write passes through here, and an invoke never reads the file.
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import Conflict, FieldError, InvalidInput, NotFound
from core.models import Function, FunctionPatch, FunctionSpec, SavedEvent, parse_patch, parse_spec, utcnow
from core.storage import TinyStore

FUNCTIONS = "functions"
VERSIONS = "versions"
META = "meta"
SAVED = "saved_events"
MAX_SAVED_EVENT = 256 * 1024


class Registry:
    def __init__(self, store: TinyStore, default_timeout: int = 30):
        self.store = store
        self.default_timeout = default_timeout
        self._by_id: dict[str, Function] | None = None

    # -- reads ---------------------------------------------------------------------------
    def _cache(self) -> dict[str, Function]:
        if self._by_id is None:
            self._by_id = {d["id"]: Function.model_validate(d) for d in self.store.all(FUNCTIONS)}
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
        raise NotFound(f"no function named {ref!r}")

    def _write(self, write) -> Function:
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

    def versions(self, ref: str) -> list[Function]:
        fn = self.get(ref)
        docs = [d for d in self.store.all(VERSIONS) if d["id"] == fn.id]
        return sorted((Function.model_validate(d) for d in docs), key=lambda f: f.version)

    @staticmethod
    def _find(store: TinyStore, ref: str) -> dict[str, Any]:
        docs = store.all(FUNCTIONS)
        for d in docs:
            if d["id"] == ref:
                return d
        for d in docs:
            if d["name"] == ref:
                return d
        raise NotFound(f"no function named {ref!r}")

    # -- writes --------------------------------------------------------------------------
    def create(self, data: dict[str, Any] | FunctionSpec) -> Function:
        if isinstance(data, dict) and "timeout" not in data:
            data = {**data, "timeout": self.default_timeout}
        spec = data if isinstance(data, FunctionSpec) else parse_spec(data)
        fn = Function(**spec.model_dump())

        def write(store: TinyStore) -> tuple[Function, bool]:
            self._check_name_free(store, fn.name)
            store.insert(FUNCTIONS, fn.to_doc())
            store.insert(VERSIONS, fn.to_doc())
            return fn, False

        return self._write(write)

    def update(self, ref: str, data: dict[str, Any] | FunctionPatch) -> Function:
        patch = data if isinstance(data, FunctionPatch) else parse_patch(data)
        changes = patch.model_dump(exclude_unset=True)
        nulls = [k for k, v in changes.items() if v is None and k != "max_concurrency"]
        if nulls:
            raise InvalidInput("function update", [FieldError(k, "cannot be null") for k in nulls])

        def write(store: TinyStore) -> tuple[Function, bool]:
            current = Function.model_validate(self._find(store, ref))
            if "name" in changes and changes["name"] != current.name:
                self._check_name_free(store, changes["name"])
            updated = current.model_copy(
                update={**changes, "version": current.version + 1, "updated_at": utcnow()}
            )
            store.upsert(FUNCTIONS, "id", updated.to_doc())
            store.insert(VERSIONS, updated.to_doc())
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
            fn = Function.model_validate(self._find(store, ref))
            store.remove(FUNCTIONS, "id", fn.id)
            store.remove(VERSIONS, "id", fn.id)
            store.remove(SAVED, "function_id", fn.id)
            return fn, True

        return self._write(write)

    @staticmethod
    def _check_name_free(store: TinyStore, name: str) -> None:
        if any(d["name"] == name for d in store.all(FUNCTIONS)):
            raise Conflict(f"a function named {name!r} already exists; pick another name or update it")

    # -- saved test events --------------------------------------------------------------
    def saved_events(self, ref: str) -> list[SavedEvent]:
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
