"""KEY=VALUE entries for a function's environment: the one parser behind `--env` on the command
line and the console's environment box, which had drifted (one stripped keys and skipped
comments, the other accepted neither; one let an empty key through)."""

from __future__ import annotations

from collections.abc import Iterable

from core.errors import FieldError, InvalidInput


def parse_env(
    entries: Iterable[str], field: str = "env", numbered: bool = False, form: str = "KEY=VALUE"
) -> dict[str, str]:
    """Blank entries and `#` comments are skipped; the key loses surrounding spaces, the value is
    kept as written (a value may hold `=` and spaces). Every bad entry is named in one
    InvalidInput; `numbered` names entries by line (the console's box). Whether a key is a valid
    variable name is the Function model's rule, checked when the function is saved."""
    env: dict[str, str] = {}
    bad: list[FieldError] = []
    for n, entry in enumerate(entries, 1):
        if not entry.strip() or entry.lstrip().startswith("#"):
            continue
        key, sep, value = entry.partition("=")
        key = key.strip()
        if not sep or not key:
            where = f"line {n}: " if numbered else ""
            bad.append(FieldError(field, f"{where}{entry.strip()!r} is not {form}"))
        else:
            env[key] = value
    if bad:
        raise InvalidInput("environment", bad)
    return env
