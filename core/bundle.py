"""Function folders: a `function.yaml` beside the handler file and any other files of the
function (modules, data, manifests: see bundlefiles.py for what is taken). Used by `deploy`,
`export` and the bundled examples.

A function folder may come from anyone (a clone, an archive), so deploy reads only regular files
inside it and never follows a symlink: a `handler.py` linked to `server.token` or `/etc/shadow`
would otherwise be uploaded as code (and its first bytes echoed back in an error). The folder the
user names is followed, since the user chose it. Export likewise never writes through a symlink.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from core.bundlefiles import IGNORE_FILE, ignore_spec, read_folder_files
from core.errors import FieldError, InvalidInput
from core.funcfiles import HANDLER_SUFFIXES, UnsafePath, handler_path, path_problem, shown_path, write_tree_at
from core.models import AsyncSettings, Function, FunctionSpec, normalize_runtime, parse_spec

MANIFEST = "function.yaml"
DEFAULT_FILES = {"python": "handler.py", "nodejs": "index.js", "go": "main.go"}
# `files` come from the folder itself, never from the manifest
# (`file:` is the handler file's path: it fills `handler_file`, which is not a key of its own)
MANIFEST_KEYS = {"file", "event", *(f.alias or n for n, f in FunctionSpec.model_fields.items())} - {
    "files",
    "handler_file",
}
MAX_FILE = 64 * 1024 * 1024  # larger than any code a function may hold; stops /dev-like surprises early


@dataclass
class Bundle:
    spec: FunctionSpec
    folder: Path
    event: Any = None  # the sample event shipped with it


def _inside_name(name: Any) -> tuple[PurePosixPath | None, str]:
    """`name` as a relative path that stays inside the folder, or why it does not."""
    if not isinstance(name, str) or not name.strip():
        return None, "must be the name of a code file in the folder"
    p = PurePosixPath(name)
    if p.is_absolute():
        return None, f"{name!r} is an absolute path; name a file inside the function folder"
    if ".." in p.parts:
        return None, f"{name!r} leads out of the function folder ('..'); name a file inside it"
    return p, ""


def _read_inside(folder_fd: int, rel: PurePosixPath, shown: Path, field: str, what: str) -> str:
    """Read `rel` under the open folder, refusing a symlink at any step and anything but a
    regular file (a FIFO would hang the read, a device would never end)."""
    fd = folder_fd
    opened: list[int] = []
    try:
        base = shown.parents[len(rel.parts) - 1]
        for i, part in enumerate(rel.parts[:-1]):
            try:
                fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                step = base.joinpath(*rel.parts[: i + 1])
                raise InvalidInput(what, [FieldError(field, _refusal(step, exc, folder=True))]) from None
            opened.append(fd)
        try:
            fd = os.open(rel.parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        except OSError as exc:
            raise InvalidInput(what, [FieldError(field, _refusal(shown, exc))]) from None
        opened.append(fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(
                what,
                [
                    FieldError(
                        field,
                        f"{shown} is not a regular file; deploy reads only regular files inside the function folder",
                    )
                ],
            )
        if st.st_size > MAX_FILE:
            raise InvalidInput(what, [FieldError(field, f"{shown} is {st.st_size} bytes; the limit is {MAX_FILE}")])
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInput(what, [FieldError(field, f"{shown} is not UTF-8 text: {exc.reason}")]) from None
    finally:
        for o in opened:
            os.close(o)


def _refusal(shown: Path, exc: OSError, folder: bool = False) -> str:
    if exc.errno == errno.ELOOP or shown.is_symlink():
        return (
            f"{shown} is a symlink; deploy does not follow links inside a function folder "
            f"(they could point at secrets): put a copy of the file there instead"
        )
    if exc.errno == errno.ENOENT:
        return f"{shown} does not exist"
    if folder and exc.errno == errno.ENOTDIR:
        return f"{shown} is not a folder"
    return f"cannot read {shown}: {exc.strerror}"


def load_bundle(folder: Path) -> Bundle:
    folder = Path(folder)
    what = f"function folder {folder}"
    try:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # the named folder itself may be a link
    except OSError as exc:
        raise InvalidInput(what, [FieldError("dir", f"cannot open {folder} as a folder: {exc.strerror}")]) from None
    try:
        return _load(folder, folder_fd, what)
    finally:
        os.close(folder_fd)


def _load(folder: Path, folder_fd: int, what: str) -> Bundle:
    manifest = folder / MANIFEST
    if not os.path.lexists(manifest):
        raise InvalidInput(what, [FieldError(MANIFEST, f"is missing: {_manifest_hint(folder)}")])
    text = _read_inside(folder_fd, PurePosixPath(MANIFEST), manifest, MANIFEST, what)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(what, [FieldError(MANIFEST, f"cannot be read as YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise InvalidInput(
            what, [FieldError(MANIFEST, "must be a mapping of keys (name, runtime, handler, file, ...)")]
        )

    unknown = sorted(set(data) - MANIFEST_KEYS)
    if unknown:
        raise InvalidInput(what, [FieldError(k, "is not a known key of function.yaml") for k in unknown])
    runtime = normalize_runtime(data.get("runtime"))
    code_name = data.pop("file", None) or DEFAULT_FILES.get(runtime or "", "")
    event = data.pop("event", None)
    if not code_name:
        raise InvalidInput(what, [FieldError("file", f"names no code file; set `file:` in {MANIFEST}")])
    rel, why = _inside_name(code_name)
    if rel is None:
        raise InvalidInput(what, [FieldError("file", why)])
    data["code"] = _read_inside(folder_fd, rel, folder / rel, "file", what)
    if runtime in HANDLER_SUFFIXES and rel.as_posix() != DEFAULT_FILES[runtime]:
        # the handler stays where the folder has it, so its imports of files beside it resolve
        data["handler_file"] = rel.as_posix()
    ignore_text = None
    if os.path.lexists(folder / IGNORE_FILE):
        ignore_text = _read_inside(folder_fd, PurePosixPath(IGNORE_FILE), folder / IGNORE_FILE, IGNORE_FILE, what)
    data["files"] = read_folder_files(
        folder_fd, folder, {MANIFEST, IGNORE_FILE, rel.as_posix()}, ignore_spec(ignore_text), what
    )
    try:
        spec = parse_spec(data)
    except InvalidInput as exc:
        errors = [FieldError("file", e.message) if e.field == "handler_file" else e for e in exc.errors]
        raise InvalidInput(f"{MANIFEST} in {folder}", errors) from None
    return Bundle(spec=spec, folder=folder, event=event)


def _manifest_hint(folder: Path) -> str:
    """What a newcomer writes: the two keys every folder needs, with the runtime its handler
    file suggests, and the file name when it is not the runtime's default."""
    runtime, file = "python", ""
    # the handler files deploy takes (a .mjs would be refused), and Go's
    suffixes = {suffix: r for r, all_ in HANDLER_SUFFIXES.items() for suffix in all_} | {".go": "go"}
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.is_symlink())
    defaults = [r for r, f in DEFAULT_FILES.items() if f in names]
    if defaults:
        runtime = defaults[0]
    else:
        code = [n for n in names if Path(n).suffix in suffixes]
        if len(code) == 1:
            runtime, file = suffixes[Path(code[0]).suffix], code[0]
    lines = [f"name: {folder.resolve().name}", f"runtime: {runtime}"] + ([f"file: {file}"] if file else [])
    return f"a function folder needs {folder / MANIFEST}; the least it holds is:\n" + "\n".join(
        f"      {line}" for line in lines
    )


def bundles_in(root: Path) -> list[Bundle]:
    return [load_bundle(d) for d in sorted(Path(root).iterdir()) if (d / MANIFEST).is_file()]


def export_bundle(fn: Function, folder: Path, overwrite: bool = False) -> list[Path]:
    """Write `fn` as a function folder; refuses to replace existing files unless told to, and
    never writes through a symlink (the folder or a file in it, dangling or not): a link planted
    there would have the export overwrite whatever it points at."""
    folder = Path(folder)
    handler_file = handler_path(fn.runtime, fn.handler_file)
    code_path = folder / handler_file
    manifest = folder / MANIFEST
    # a stored path is hostile input too (a hand-edited store): checked before anything is written
    unsafe = [
        FieldError(f"files.{shown_path(p)}", f"{why}; export writes nothing outside the folder")
        for p in (*fn.files, handler_file)
        for why in [path_problem(p, reserved_ok=True)]
        if why
    ]
    if unsafe:
        raise InvalidInput("export", unsafe)
    extra = [folder / p for p in sorted(fn.files)]
    links = [p for p in (folder, manifest, code_path, *extra) if p.is_symlink()]
    links += sorted(
        {d for p in (code_path, *extra) for d in p.parents if d != folder and folder in d.parents and d.is_symlink()}
    )
    if links:
        names = ", ".join(str(p) for p in links)
        raise InvalidInput(
            "export",
            [
                FieldError(
                    "dir",
                    f"{names} is a symlink; export does not write through links: "
                    f"remove the link or choose another folder",
                )
            ],
        )
    existing = [p for p in (manifest, code_path, *extra) if p.exists()]
    if existing and not overwrite:
        names = ", ".join(str(p) for p in existing)
        raise InvalidInput(
            "export", [FieldError("dir", f"already holds {names}; choose an empty folder or pass --force")]
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise InvalidInput("export", [FieldError("dir", f"cannot use {folder} as a folder: {exc.strerror}")]) from None
    doc: dict[str, Any] = {
        "name": fn.name,
        "runtime": fn.runtime,
        "handler": fn.handler,
        "file": handler_file,
        "description": fn.description,
        "timeout": fn.timeout,
        "memory": fn.memory,
        "environment": dict(fn.environment),
        "network": fn.network,
    }
    if fn.max_concurrency is not None:
        doc["max_concurrency"] = fn.max_concurrency
    if fn.secrets or fn.secret_env:  # secrets (issue 17): the names only, never a value
        doc.update(secrets=list(fn.secrets), secret_env=dict(fn.secret_env))
    if fn.dependencies:
        doc["dependencies"] = fn.dependencies
    if fn.source_builds:
        doc["source_builds"] = True
    if fn.async_ != AsyncSettings():  # asynchronous invocation (issue 16): only when not the defaults
        doc["async"] = fn.async_.model_dump(mode="json", exclude_defaults=True)
    try:
        if fn.handler_file:  # in a subfolder maybe: through folder fds, as the other files
            write_tree_at(folder_fd, {handler_file: fn.code}, exclusive=not overwrite)
        else:
            _write_inside(folder_fd, code_path, fn.code.encode("utf-8"), overwrite)
        _write_inside(
            folder_fd, manifest, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode("utf-8"), overwrite
        )
        # every other file, through folder fds with O_NOFOLLOW (a link made after the checks above
        # is not followed either)
        write_tree_at(folder_fd, fn.files, exclusive=not overwrite)
    except (UnsafePath, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
            why = "a file or folder there is a symlink; export does not write through links"
        raise InvalidInput("export", [FieldError("dir", f"cannot write the files into {folder}: {why}")]) from None
    finally:
        os.close(folder_fd)
    return [manifest, code_path, *extra]


def _write_inside(folder_fd: int, path: Path, data: bytes, overwrite: bool) -> None:
    # O_NOFOLLOW and O_EXCL hold even if a link appears after the checks above.
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path.name, flags, 0o644, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            why = f"{path} is a symlink; export does not write through links: remove it or choose another folder"
        elif exc.errno == errno.EEXIST:
            why = f"already holds {path}; choose an empty folder or pass --force"
        else:
            why = f"cannot write {path}: {exc.strerror}"
        raise InvalidInput("export", [FieldError("dir", why)]) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidInput("export", [FieldError("dir", f"{path} is not a regular file; remove it first")])
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
