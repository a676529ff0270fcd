"""The console's commands: one table per screen gives each key binding (with its id, so the
config's `console.keymap` can remap it), its help line and its command-palette entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from textual.binding import Binding


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
        return Binding(
            self.keys, self.action, self.description, show=self.show, priority=self.priority, id=self.id
        )


def bindings(commands: Iterable[Command]) -> list[Binding]:
    return [c.binding() for c in commands]


# What Textual makes of alt+1…8 in xterm, tmux and most Linux terminals, which send ESC and the
# digit: the characters macOS's Option+digit types (¡ ™ £ ¢ ∞ § ¶ •), not alt+digit. Bound with
# alt+digit, they make those keys work there, except in an editor, where they are typed.
ESC_DIGIT_KEYS = ("inverted_exclamation_mark", "trade_mark_sign", "pound_sign", "cent_sign", "infinity",
                  "section_sign", "pilcrow_sign", "bullet")


def listed_keys(keys: str) -> str:
    """The keys as bound, less the alt+digit stand-ins."""
    return ",".join(k for k in keys.split(",") if k.strip() not in ESC_DIGIT_KEYS)


def display_keys(keys: str) -> str:
    """`ctrl+enter,ctrl+r` -> `ctrl+enter / ctrl+r`, with Textual's long names made short (and
    the alt+digit stand-ins left out)."""
    names = {"question_mark": "?", "slash": "/", "colon": ":", "left_square_bracket": "[",
             "right_square_bracket": "]", "escape": "esc"}
    return " / ".join(names.get(k.strip(), k.strip()) for k in listed_keys(keys).split(","))


def known_ids(*tables: Iterable[Command]) -> set[str]:
    return {c.id for table in tables for c in table}
