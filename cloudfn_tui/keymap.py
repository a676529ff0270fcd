"""The console's commands: one table per screen gives each key binding (with its id, so the
config's `console.keymap` can remap it), its help line and its command-palette entry."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from textual.binding import Binding, BindingType


@dataclass(frozen=True)
class Command:
    id: str  # the binding id users remap: `console: {keymap: {main.invoke: f9}}`
    keys: str
    action: str
    description: str
    help: str = ""
    show: bool = True  # in the footer
    priority: bool = False
    palette: bool = True  # in the command palette (ctrl+p)

    def binding(self) -> Binding:
        return Binding(self.keys, self.action, self.description, show=self.show, priority=self.priority, id=self.id)


def bindings(commands: Iterable[Command]) -> list[BindingType]:
    # BindingType, not Binding: Textual's BINDINGS is a list of it, and lists are invariant
    return [c.binding() for c in commands]


# What Textual makes of alt+1…8 in xterm, tmux and most Linux terminals, which send ESC and the
# digit: the characters macOS's Option+digit types (¡ ™ £ ¢ ∞ § ¶ •), not alt+digit. Bound with
# alt+digit, they make those keys work there, except in an editor, where they are typed.
ESC_DIGIT_KEYS = (
    "inverted_exclamation_mark",
    "trade_mark_sign",
    "pound_sign",
    "cent_sign",
    "infinity",
    "section_sign",
    "pilcrow_sign",
    "bullet",
)


def listed_keys(keys: str) -> str:
    """The keys as bound, less the alt+digit stand-ins."""
    return ",".join(k for k in keys.split(",") if k.strip() not in ESC_DIGIT_KEYS)


_KEY_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "colon": ":",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "escape": "esc",
    "delete": "del",
    "full_stop": ".",
    "comma": ",",
    "underscore": "_",
    "plus": "+",
    "minus": "-",
}


def key_name(key: str) -> str:
    """One key as people write it: `ctrl+right_square_bracket` -> `ctrl+]`, `f1` -> `F1`.

    The modifiers stay spelled out (`ctrl+]`, not the footer's `^]`): help and the palette
    are read by people looking up a key, who type what they read."""
    *mods, base = key.strip().split("+")
    base = _KEY_NAMES.get(base, base)
    if re.fullmatch(r"f\d{1,2}", base):
        base = base.upper()
    return "+".join([*mods, base])


def display_keys(keys: str, sep: str = " / ") -> str:
    """`ctrl+enter,ctrl+r` -> `ctrl+enter / ctrl+r`, each key by `key_name` (and the alt+digit
    stand-ins left out)."""
    return sep.join(key_name(k) for k in listed_keys(keys).split(","))


def known_ids(*tables: Iterable[Command]) -> set[str]:
    return {c.id for table in tables for c in table}
