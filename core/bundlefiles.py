"""The files of a function folder for `cloudfn deploy DIR`: every regular file under it but the
manifest and the handler file, minus what `.cloudfnignore` (gitignore syntax) and the default
skips leave out.

The folder may come from anyone, so the walk opens each folder relative to its parent's fd with
O_NOFOLLOW and never follows a link: a symlink is refused by name (it could point at a secret)
unless it is ignored. Limits are checked while walking, so a huge tree is refused early, and
every problem is named at once.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pathspec

from core.errors import FieldError, InvalidInput
from core.funcfiles import MAX_FILE_BYTES, MAX_FILES, MAX_TOTAL_BYTES, path_problem, shown_path

IGNORE_FILE = ".cloudfnignore"
# Never part of a function unless .cloudfnignore re-includes them (`!node_modules/`): VCS data,
# installed dependencies (the platform installs its own) and caches.
DEFAULT_IGNORES = (".git/", "node_modules/", "__pycache__/", ".venv/")
MAX_ERRORS = 20  # a tree full of problems: the first ones name the fix


def ignore_spec(ignore_text: str | None) -> pathspec.GitIgnoreSpec:
    lines = [*DEFAULT_IGNORES, *(ignore_text.splitlines() if ignore_text else ())]
    return pathspec.GitIgnoreSpec.from_lines(lines)


def read_folder_files(
    folder_fd: int, folder: Path, skip: set[str], ignore: pathspec.GitIgnoreSpec, what: str
) -> dict[str, str]:
    """{relative path: text} of every file to deploy under the open folder. `skip`: top-level
    paths that are not files of the function (the manifest, the handler file, the ignore file)."""
    files: dict[str, str] = {}
    errors: list[FieldError] = []
    total = 0

    def refuse(rel: str, why: str) -> None:
        errors.append(FieldError(f"files.{shown_path(rel)}", why))

    def walk(dir_fd: int, prefix: str) -> None:
        nonlocal total
        with os.scandir(dir_fd) as it:
            entries = sorted(it, key=lambda e: e.name)
        for entry in entries:
            if len(errors) >= MAX_ERRORS:
                return
            rel = prefix + entry.name
            st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if rel in skip or ignore.match_file(rel + "/" if is_dir else rel):
                continue
            shown = Path(shown_path(str(folder / rel)))  # a hostile name may hold terminal escapes
            if stat.S_ISLNK(st.st_mode):
                refuse(
                    rel,
                    f"{shown} is a symlink; deploy does not follow links (they could point at secrets): "
                    f"put a copy of the file there, or list it in {IGNORE_FILE}",
                )
                continue
            if is_dir:
                try:
                    sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
                except OSError as exc:
                    refuse(rel, f"cannot open the folder {shown}: {exc.strerror}")
                    continue
                try:
                    walk(sub, rel + "/")
                finally:
                    os.close(sub)
                continue
            if not stat.S_ISREG(st.st_mode):
                refuse(
                    rel,
                    f"{shown} is not a regular file (a device, FIFO or socket); remove it or list it in {IGNORE_FILE}",
                )
                continue
            why = path_problem(rel, reserved_ok=True)  # reserved names: the API names them
            if why:
                refuse(rel, f"{shown}: the name {why}")
                continue
            if len(files) >= MAX_FILES:
                refuse(
                    rel,
                    f"the folder holds more than {MAX_FILES} files (the limit, MAX_FILES); list generated "
                    f"or vendored files you do not need in {IGNORE_FILE}",
                )
                return
            if st.st_size > MAX_FILE_BYTES:
                refuse(
                    rel,
                    f"{shown} is {st.st_size} bytes; the limit per file is {MAX_FILE_BYTES} bytes "
                    f"(MAX_FILE_BYTES): list it in {IGNORE_FILE} or make it smaller",
                )
                continue
            text = _read(dir_fd, entry.name, shown, refuse, rel)
            if text is None:
                continue
            total += len(text.encode("utf-8"))
            if total > MAX_TOTAL_BYTES:
                refuse(
                    rel,
                    f"the files hold more than {MAX_TOTAL_BYTES} bytes in all (MAX_TOTAL_BYTES); list "
                    f"what the function does not need in {IGNORE_FILE}",
                )
                return
            files[rel] = text

    walk(folder_fd, "")
    if errors:
        raise InvalidInput(what, errors)
    return files


def _read(dir_fd: int, name: str, shown: Path, refuse: Callable[[str, str], None], rel: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError as exc:
        refuse(rel, f"cannot read {shown}: {exc.strerror}")
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:  # swapped since the listing
            refuse(rel, f"{shown} changed while it was read; deploy again")
            return None
        chunks, size = [], 0
        while size <= MAX_FILE_BYTES and (chunk := os.read(fd, 1 << 20)):
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        refuse(
            rel,
            f"{shown} is not UTF-8 text; a function holds text files only: list it in {IGNORE_FILE}, "
            "or turn it into text (base64) the code decodes",
        )
        return None
    if "\0" in text:
        refuse(
            rel,
            f"{shown} holds NUL characters (binary data); a function holds text files only: list it in {IGNORE_FILE}",
        )
        return None
    return text
