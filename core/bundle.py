"""Function folders: a `function.yaml` beside one code file. Used by `deploy`, `export` and
the bundled examples."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import FieldError, InvalidInput
from core.models import Function, FunctionSpec, normalize_runtime, parse_spec

MANIFEST = "function.yaml"
DEFAULT_FILES = {"python": "handler.py", "nodejs": "index.js", "go": "main.go"}
MANIFEST_KEYS = {"file", "event", *FunctionSpec.model_fields}


@dataclass
class Bundle:
    spec: FunctionSpec
    folder: Path
    event: Any = None  # the sample event shipped with it


def load_bundle(folder: Path) -> Bundle:
    folder = Path(folder)
    manifest = folder / MANIFEST
    what = f"function folder {folder}"
    if not manifest.is_file():
        raise InvalidInput(what, [FieldError(MANIFEST, f"is missing: a function folder needs {manifest}")])
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(what, [FieldError(MANIFEST, f"cannot be read as YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise InvalidInput(what, [FieldError(MANIFEST, "must be a mapping of keys (name, runtime, handler, file, ...)")])

    unknown = sorted(set(data) - MANIFEST_KEYS)
    if unknown:
        raise InvalidInput(what, [FieldError(k, "is not a known key of function.yaml") for k in unknown])
    runtime = normalize_runtime(data.get("runtime"))
    code_name = data.pop("file", None) or DEFAULT_FILES.get(runtime or "", "")
    event = data.pop("event", None)
    code_path = folder / code_name if code_name else None
    if code_path is None or not code_path.is_file():
        shown = code_path or f"{folder}/<file>"
        raise InvalidInput(what, [FieldError("file", f"names no readable code file ({shown}); set `file:` in {MANIFEST}")])
    data["code"] = code_path.read_text(encoding="utf-8")
    try:
        spec = parse_spec(data)
    except InvalidInput as exc:
        raise InvalidInput(f"{MANIFEST} in {folder}", exc.errors) from None
    return Bundle(spec=spec, folder=folder, event=event)


def bundles_in(root: Path) -> list[Bundle]:
    return [load_bundle(d) for d in sorted(Path(root).iterdir()) if (d / MANIFEST).is_file()]


def export_bundle(fn: Function, folder: Path, overwrite: bool = False) -> list[Path]:
    """Write `fn` as a function folder; refuses to replace existing files unless told to."""
    folder = Path(folder)
    code_path = folder / DEFAULT_FILES[fn.runtime]
    manifest = folder / MANIFEST
    existing = [p for p in (manifest, code_path) if p.exists()]
    if existing and not overwrite:
        names = ", ".join(str(p) for p in existing)
        raise InvalidInput("export", [FieldError("dir", f"already holds {names}; choose an empty folder or pass --force")])
    folder.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "name": fn.name,
        "runtime": fn.runtime,
        "handler": fn.handler,
        "file": code_path.name,
        "description": fn.description,
        "timeout": fn.timeout,
        "memory": fn.memory,
        "environment": dict(fn.environment),
        "network": fn.network,
    }
    if fn.max_concurrency is not None:
        doc["max_concurrency"] = fn.max_concurrency
    code_path.write_text(fn.code, encoding="utf-8")
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return [manifest, code_path]
