"""A function is a folder: its handler file (`code`) plus `files`, {relative path: text}.

Paths come from anyone (an API client, a hand-edited store, a cloned folder), so every place that
turns one into a file on disk checks it again here, and writes through folder fds with
O_NOFOLLOW: a path cannot leave the folder it is written under, whatever was validated before.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import stat
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import FieldError

# Limits: the whole function travels in one JSON body (server.max_body, 6 MiB by default), and
# the sandbox lays out every file with one fd each, so count and total stay well under both.
MAX_FILES = 500
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 5 * 1024 * 1024
MAX_PATH_CHARS = 255
MAX_SEGMENT_CHARS = 100
# The handler file of each runtime: it holds `code`, so no entry of `files` may take its name.
HANDLER_FILES = {"python": "handler.py", "nodejs": "index.js", "go": "main.go"}
# What else a runtime puts at the top of the folder its workers see (Go: the built binary and
# the build's notes beside the sources).
RUNTIME_RESERVED = {"go": ("handler", "notes.json")}
MANIFEST = "function.yaml"  # written by export beside the files
# Names the platform itself puts in a function folder or Go build (prewarm start scripts, the
# Go wrapper, build notes): reserved at the top level of every function.
RESERVED_PREFIXES = (".cloudfn", "cloudfn_")
FILES_RULE = "relative paths with '/' between folders, no '..', '.', empty parts, backslashes or control characters"


def path_problem(path: Any, reserved_ok: bool = False) -> str:
    """Why `path` cannot name a file of a function, or "". `reserved_ok`: only whether it
    stays inside the folder (for writers, which also lay out cloudfn's own files)."""
    if not isinstance(path, str) or not path:
        return "file names must be non-empty strings"
    if len(path) > MAX_PATH_CHARS:
        return f"is {len(path)} characters long; the limit is {MAX_PATH_CHARS}: shorten the path"
    for ch in path:
        cat = unicodedata.category(ch)
        if cat in _UNSHOWN:
            return f"contains a control or invisible character (U+{ord(ch):04X}); use {FILES_RULE}"
    if "\\" in path:
        return f"contains a backslash; separate folders with '/' (use {FILES_RULE})"
    if path.startswith("/"):
        return f"is an absolute path; name it relative to the function folder (use {FILES_RULE})"
    parts = path.split("/")
    if any(p == "" for p in parts):
        return f"has an empty part ('//' or a trailing '/'); use {FILES_RULE}"
    if any(p in (".", "..") for p in parts):
        return f"contains '.' or '..'; files must stay inside the function folder (use {FILES_RULE})"
    long = next((p for p in parts if len(p) > MAX_SEGMENT_CHARS), None)
    if long is not None:
        return f"has a part {len(long)} characters long; the limit is {MAX_SEGMENT_CHARS}"
    if not reserved_ok and (parts[0] == MANIFEST or parts[0].startswith(RESERVED_PREFIXES)):
        return (
            f"is reserved: {MANIFEST} and top-level names starting with "
            f"{' or '.join(map(repr, RESERVED_PREFIXES))} belong to cloudfn; rename the file"
        )
    return ""


def shown_path(path: str) -> str:
    """`path` safe to print in a terminal: control and invisible characters (a right-to-left
    override could make `evil.py` read as something else) escaped as \\uXXXX."""
    return "".join(f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _UNSHOWN else ch for ch in path)


# Control characters, format characters (zero-width, bidi overrides), line and paragraph
# separators, surrogates: what could hide or reorder a name in a terminal. (Private-use and
# unassigned code points show as boxes, so they pass; the OpenAPI pattern says the same.)
_UNSHOWN = ("Cc", "Cf", "Zl", "Zp", "Cs")


# Where a handler file may sit instead of the runtime's default (`handler_file`): its suffix
# says how the runner loads it (Node's runner loads CommonJS, so no .mjs). Go builds the top
# folder's package main, so its handler file stays main.go.
HANDLER_SUFFIXES = {"python": (".py",), "nodejs": (".js", ".cjs")}


def handler_file_problem(path: Any, runtime: str | None) -> str:
    """Why `path` cannot be the handler file of a `runtime` function, or "" ("" is the default)."""
    if path == "" or runtime is None or path == HANDLER_FILES.get(runtime):
        return ""
    suffixes = HANDLER_SUFFIXES.get(runtime)
    if suffixes is None:
        return (
            f"must be empty for {runtime} functions: they build the top folder's package main, whose "
            f"handler file is {HANDLER_FILES.get(runtime, '')}"
        )
    why = path_problem(path)
    if why:
        return why
    if not path.endswith(suffixes):
        return f"must name a {' or '.join(suffixes)} file for {runtime} functions (e.g. src/main{suffixes[0]})"
    top = path.split("/", 1)[0]
    if top in RUNTIME_RESERVED.get(runtime, ()):
        return f"is reserved in {runtime} functions (cloudfn puts its own {top!r} there); rename it"
    return ""


def handler_path(runtime: str, handler_file: str = "") -> str:
    """The path of the handler file (which holds `code`) inside the function's folder."""
    return handler_file or HANDLER_FILES.get(runtime, "")


def files_errors(files: Any, runtime: str | None, handler_file: str = "") -> list[FieldError]:
    """Every problem of a `files` map, one FieldError per bad entry (`files.<path>`), plus the
    limits. `runtime` None (a partial update without one): the handler-name check waits until
    the update is merged. `handler_file`: where `code` goes, when not the runtime's default."""
    if not isinstance(files, dict):
        return []  # pydantic names the type error
    errors: list[FieldError] = []
    if len(files) > MAX_FILES:
        errors.append(
            FieldError(
                "files",
                f"has {len(files)} files; the limit is {MAX_FILES} (MAX_FILES): "
                "leave generated or vendored files out, or list them in .cloudfnignore",
            )
        )
    handler = handler_path(runtime, handler_file if isinstance(handler_file, str) else "") if runtime else None
    total = 0
    good: list[str] = []
    for path, text in files.items():
        if not isinstance(path, str):
            continue  # pydantic names a key that is not a string
        field = f"files.{shown_path(path)}"
        why = path_problem(path)
        if not why and handler and (path == handler or path.startswith(handler + "/")):
            why = (
                f"is the {runtime} handler file, which holds `code`: send its text as `code`, "
                "or give this file another name"
            )
        if not why and handler and handler.startswith(path + "/"):
            why = f"is a file, but the handler file {handler!r} needs a folder by that name; rename one of them"
        top = path.split("/", 1)[0]
        if not why and top in RUNTIME_RESERVED.get(runtime or "", ()):
            why = f"is reserved in {runtime} functions (cloudfn puts its own {top!r} there); rename it"
        if not why and isinstance(text, str):
            try:
                size = len(text.encode("utf-8"))
            except UnicodeEncodeError:
                why = "is not valid UTF-8 text (it holds a lone surrogate); files hold text only"
            else:
                total += size
                if "\0" in text:
                    why = "holds a NUL character: files hold text only (UTF-8), not binary data"
                elif size > MAX_FILE_BYTES:
                    why = (
                        f"is {size} bytes; the limit per file is {MAX_FILE_BYTES} bytes "
                        f"({MAX_FILE_BYTES // 1024} KiB, MAX_FILE_BYTES)"
                    )
        if why:
            errors.append(FieldError(field, why))
        else:
            good.append(path)
    if total > MAX_TOTAL_BYTES:
        errors.append(
            FieldError(
                "files",
                f"hold {total} bytes in all; the limit is {MAX_TOTAL_BYTES} bytes "
                f"({MAX_TOTAL_BYTES // (1024 * 1024)} MiB, MAX_TOTAL_BYTES)",
            )
        )
    # a path that is also a folder of another ("lib" and "lib/x.py") cannot both exist on disk
    names = set(good)
    for path in sorted(good):
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in names:
                errors.append(
                    FieldError(
                        f"files.{shown_path(path)}", f"is inside {prefix!r}, which is a file; rename one of them"
                    )
                )
                break
    return errors


@functools.cache
def path_pattern() -> str:
    """path_problem's rules (runtime-specific names aside) as a regular expression that
    JSON Schema's dialect and Python's read alike, for the OpenAPI document."""
    bad: list[list[int]] = []
    for c in range(0x110000):
        # Surrogates stay out of the class: a regex engine in Unicode mode refuses them there,
        # and a lone one never reaches a path (the server answers 400 to such JSON).
        if c in (0x2F, 0x5C) or (unicodedata.category(chr(c)) in _UNSHOWN and not 0xD800 <= c <= 0xDFFF):
            if bad and bad[-1][1] == c - 1:
                bad[-1][1] = c
            else:
                bad.append([c, c])

    def one(c: int) -> str:
        return f"\\u{c:04x}" if c <= 0xFFFF else chr(c)  # astral ones literal, as name_pattern does

    ranges = "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in bad)
    seg = f"(?!\\.\\.?(?:/|$))[^{ranges}]{{1,{MAX_SEGMENT_CHARS}}}"
    reserved = "(?!" + "|".join([re.escape(MANIFEST) + "(?:/|$)", *map(re.escape, RESERVED_PREFIXES)]) + ")"
    return f"^(?=.{{1,{MAX_PATH_CHARS}}}$){reserved}{seg}(?:/{seg})*$"


def files_digest(files: dict[str, str]) -> str:
    """One hash over every path and text, independent of the map's order."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(path.encode("utf-8", "surrogatepass") + b"\0")
        h.update(hashlib.sha256(files[path].encode("utf-8", "surrogatepass")).digest())
    return h.hexdigest()


class UnsafePath(ValueError):
    """A stored or sent path that would leave the folder; nothing was written for it."""


def write_tree(folder: Path, files: Mapping[str, bytes | str], mode: int = 0o644, exclusive: bool = True) -> None:
    """Write `files` under `folder` (which must exist), refusing any path that `path_problem`
    refuses (reserved names aside) and never following a symlink at any step: folders are
    opened with O_NOFOLLOW relative to their parent's fd. `exclusive`: a file already there is
    an error (EEXIST), else it is replaced in place."""
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        write_tree_at(root, files, mode, exclusive)
    finally:
        os.close(root)


def write_tree_at(root: int, files: Mapping[str, bytes | str], mode: int = 0o644, exclusive: bool = True) -> None:
    """write_tree under an open folder fd. Every path is checked before the first is written."""
    for path in files:
        why = path_problem(path, reserved_ok=True)
        if why:
            raise UnsafePath(f"{path!r} {why}")
    for path, data in files.items():
        if isinstance(data, str):
            data = data.encode("utf-8")
        _write_one(root, path.split("/"), data, mode, exclusive)


def _write_one(root: int, parts: list[str], data: bytes, mode: int, exclusive: bool) -> None:
    fds: list[int] = []
    fd = root
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            fds.append(fd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_EXCL if exclusive else os.O_TRUNC)
        out = os.open(parts[-1], flags, mode, dir_fd=fd)
        try:
            if not stat.S_ISREG(os.fstat(out).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", "/".join(parts))
            os.fchmod(out, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(out, view) :]
        finally:
            os.close(out)
    finally:
        for f in fds:
            os.close(f)
