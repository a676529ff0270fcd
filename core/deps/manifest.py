"""What a dependency manifest may hold, checked before anything is installed.

A manifest names packages from the configured index or registry and nothing else: a git, URL or
path dependency would fetch code from wherever its author points (past the index the operator
chose) and, for pip, options inside the file (`-e`, `--index-url`, `-r`) would change how and
from where the installer runs. Those are refused with the line at fault and what to write
instead. Only `--hash` stays allowed on a requirement line: it narrows what may be installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import FieldError, InvalidInput

MAX_MANIFEST_BYTES = 64 * 1024
MAX_PACKAGES = 200
PY_MANIFEST = "requirements.txt"
NODE_MANIFEST = "package.json"
NODE_LOCK = "package-lock.json"

# PEP 508 name, optional extras, optional version specifiers and a marker; no "@ URL".
_PY_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_HASH_OPT = re.compile(r"\s+--hash[= ]\S+")
# npm: an optionally scoped name, and a version range, a dist-tag or an npm: alias to the registry.
_NPM_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")
_NPM_RANGE = re.compile(r"^[0-9A-Za-z.^~<>=|*+\- ]*$")
_NPM_ALIAS = re.compile(r"^npm:((?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*)(?:@([0-9A-Za-z.^~<>=|*+\- ]*))?$")
_NPM_DEP_TABLES = ("dependencies", "optionalDependencies", "peerDependencies")


@dataclass(frozen=True)
class Manifest:
    runtime: str  # python | nodejs
    text: str  # requirements.txt or package.json
    lock: str = ""  # package-lock.json, when given
    source_builds: bool = False

    @property
    def file(self) -> str:
        return PY_MANIFEST if self.runtime == "python" else NODE_MANIFEST


def find_manifest(
    runtime: str, dependencies: str | None, files: Mapping[str, str], source_builds: bool = False
) -> Manifest | None:
    """The manifest a function installs, or None: the `dependencies` field wins over a manifest
    among its files (a client that sends one file says what it means). Go has none here: its
    modules come with go.mod among the files and are built with the code."""
    text = dependencies if dependencies and dependencies.strip() else None
    if runtime == "go":
        if text is not None:
            raise InvalidInput("function", [FieldError("dependencies", GO_HINT)])
        return None
    name = PY_MANIFEST if runtime == "python" else NODE_MANIFEST
    if text is None:
        text = files.get(name)
    if text is None or not text.strip():
        return None
    lock = files.get(NODE_LOCK, "") if runtime == "nodejs" else ""
    return Manifest(runtime, text, lock or "", source_builds and runtime == "python")


def has_dependencies(fn: Any) -> bool:
    """Whether a function (or spec) installs dependencies: the executors mount an env for it and
    pre-started sandboxes, which cannot gain that mount, are not for it."""
    if fn.runtime == "go":
        return False
    name = PY_MANIFEST if fn.runtime == "python" else NODE_MANIFEST
    return bool((fn.dependencies and fn.dependencies.strip()) or (fn.files.get(name) or "").strip())


GO_HINT = (
    "is not supported for Go: Go modules come from go.mod (and go.sum, or vendor/) among the "
    "function's files; leave dependencies empty"
)


def manifest_problems(runtime: str | None, text: str | None, lock: str = "") -> list[str]:
    """Every problem of a manifest for `runtime`, as sentences naming the line or package."""
    if not text or not text.strip():
        return []
    if runtime == "go":
        return [GO_HINT]
    if runtime == "python":
        return requirement_problems(text)
    if runtime == "nodejs":
        return package_json_problems(text, lock)
    return []


def requirement_problems(text: str) -> list[str]:
    problems: list[str] = []
    count = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        where = f"line {n} ({line[:60]!r})"
        if line.endswith("\\"):
            problems.append(f"{where}: line continuations are not supported; put the requirement on one line")
            continue
        if line.startswith("-"):
            opt = line.split()[0].split("=")[0]
            problems.append(
                f"{where}: the option {opt} is not allowed in dependencies (it changes where or how "
                "packages install: editable installs, other indexes and included files are the "
                "operator's to configure, see runtime.pypi_index_url); list package names only"
            )
            continue
        spec = _HASH_OPT.sub("", " " + line).strip()
        if "--" in spec:
            problems.append(f"{where}: only --hash may follow a requirement")
            continue
        lowered = spec.lower()
        if "://" in spec or " @ " in f" {spec} " or "@" in spec.split(";")[0] or lowered.startswith(("git+", "file:")):
            problems.append(
                f"{where}: URL and VCS requirements are refused (they fetch code past the package "
                "index); name the package and a version, e.g. 'requests==2.32.3'"
            )
            continue
        if spec.startswith((".", "/", "~")) or "/" in spec.split(";")[0] or "\\" in spec:
            problems.append(
                f"{where}: local paths are refused; publish the package to an index or a find-links "
                "folder the operator configures (runtime.pypi_find_links) and name it"
            )
            continue
        try:
            from packaging.requirements import InvalidRequirement, Requirement
        except ImportError:  # packaging comes with pip and uv's tooling; without it trust the name check
            name = re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]
            if not _PY_NAME.match(name):
                problems.append(f"{where}: {name!r} is not a package name")
        else:
            try:
                req = Requirement(spec)
            except InvalidRequirement as exc:
                problems.append(f"{where}: not a requirement ({exc}); write e.g. 'requests>=2.31'")
                continue
            if req.url:
                problems.append(f"{where}: URL requirements are refused; name the package and a version")
                continue
        count += 1
    if count > MAX_PACKAGES:
        problems.append(f"lists {count} requirements; the limit is {MAX_PACKAGES}")
    return problems


def package_json_problems(text: str, lock: str = "") -> list[str]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return [f'is not valid JSON for a package.json ({exc}); write e.g. {{"dependencies": {{"ms": "^2.1.3"}}}}']
    if not isinstance(doc, dict):
        return ['must be a package.json object, e.g. {"dependencies": {"ms": "^2.1.3"}}']
    problems: list[str] = []
    count = 0
    for table in _NPM_DEP_TABLES:
        deps = doc.get(table)
        if deps is None:
            continue
        if not isinstance(deps, dict):
            problems.append(f"{table} must be an object of package name to version range")
            continue
        for name, spec in deps.items():
            count += 1
            if not isinstance(name, str) or not _NPM_NAME.match(name) or len(name) > 214:
                problems.append(f"{table}: {name!r} is not an npm package name")
                continue
            problems += _npm_spec_problems(f"{table}.{name}", spec)
    for table in ("bundleDependencies", "bundledDependencies"):
        if doc.get(table):
            problems.append(f"{table} is not supported: dependencies install from the registry")
    if count > MAX_PACKAGES:
        problems.append(f"lists {count} packages; the limit is {MAX_PACKAGES}")
    if lock:
        problems += _lock_problems(lock)
    return problems


def _npm_spec_problems(where: str, spec: object) -> list[str]:
    if not isinstance(spec, str):
        return [f'{where}: the version must be a string such as "^1.2.0"']
    s = spec.strip()
    if _NPM_ALIAS.match(s) or (_NPM_RANGE.match(s) and ":" not in s):
        return []
    if s.startswith(("git", "github:", "gitlab:", "bitbucket:", "gist:")) or ("/" in s and ":" not in s):
        kind = "git dependencies"
    elif s.startswith(("http:", "https:")):
        kind = "URL dependencies"
    elif s.startswith(("file:", "link:", ".", "/", "~")):
        kind = "path dependencies"
    else:
        kind = "this kind of dependency"
    return [
        f"{where}: {kind} are refused ({s[:80]!r}): they fetch code past the registry; "
        'use a version range from the registry, e.g. "^1.2.0"'
    ]


def _lock_problems(lock: str) -> list[str]:
    try:
        doc = json.loads(lock)
    except ValueError as exc:
        return [f"package-lock.json is not valid JSON ({exc})"]
    if not isinstance(doc, dict):
        return ["package-lock.json must be an object"]
    problems = []
    for path, entry in (doc.get("packages") or {}).items():
        if not isinstance(entry, dict):
            continue
        resolved = entry.get("resolved")
        if entry.get("link") or (isinstance(resolved, str) and not resolved.startswith(("http://", "https://"))):
            problems.append(
                f"package-lock.json: {path or 'the root'} resolves to {resolved!r}: git, path and "
                "linked packages are refused; lock against the registry"
            )
    return problems
