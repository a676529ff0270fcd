"""Themes: Textual's built-ins, the YAML files in `themes/` (bundled) and in the user's theme
folder, and the remembered choice."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from textual.theme import Theme

from core import paths

DEFAULT_THEME = "cloudfn-night"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's: a tenth of the time
THEME_KEYS = {
    "name",
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "dark",
    "luminosity_spread",
    "text_alpha",
    "variables",
}


@dataclass
class ThemeSet:
    themes: list[Theme] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_theme_file(path: Path) -> Theme:
    data = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_LOADER)
    if not isinstance(data, dict):
        raise ValueError("expected a mapping of Theme fields (name, primary, background, ...)")
    unknown = sorted(set(data) - THEME_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {', '.join(unknown)} (known: {', '.join(sorted(THEME_KEYS))})")
    if not data.get("name") or not data.get("primary"):
        raise ValueError("a theme needs at least `name` and `primary`")
    return Theme(**data)


def discover(folders: list[Path] | None = None) -> ThemeSet:
    """Bundled themes first, then the user's (a user's theme of the same name wins)."""
    folders = folders if folders is not None else [paths.bundled_themes_dir(), paths.user_themes_dir()]
    found = ThemeSet()
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                found.themes.append(load_theme_file(path))
            except Exception as exc:  # a bad user file must not stop the console
                found.problems.append(f"theme file {path}: {exc}")
    return found


def state_file() -> Path:
    return paths.user_themes_dir().parent / "console-state.json"


def remembered_theme() -> str | None:
    try:
        return json.loads(state_file().read_text()).get("theme")
    except (OSError, ValueError, AttributeError):
        return None


def remember_theme(name: str) -> None:
    path = state_file()
    try:
        state = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        state = {}
    state["theme"] = name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(path)
    except OSError:
        pass  # a read-only config folder only costs the memory of the choice
