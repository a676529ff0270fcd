"""The function list: name, runtime, version and the outcome of the last invocation."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import DataTable

from core.models import Function
from cloudfn_tui.keymap import Command, bindings

LIST_COMMANDS = [
    Command("list.down", "j", "cursor_down", "Down", show=False, palette=False),
    Command("list.up", "k", "cursor_up", "Up", show=False, palette=False),
    Command("list.top", "g", "scroll_top", "Top", show=False, palette=False),
    Command("list.bottom", "G", "scroll_bottom", "Bottom", show=False, palette=False),
]


@dataclass
class Outcome:
    ok: bool
    label: str  # "12 ms" or the error type

    def render(self) -> Text:
        if self.ok:
            return Text.assemble(("✓ ", "bold green"), self.label)
        return Text.assemble(("✗ ", "bold red"), (self.label, "red"))


def outcome_of(status: str, duration: float, error_type: str | None) -> Outcome:
    if status == "success":
        return Outcome(True, f"{duration:.0f} ms" if duration >= 1 else f"{duration:.1f} ms")
    label = error_type or status
    return Outcome(False, label.removesuffix("Error") if label.endswith("Error") and label != "Error" else label)


class VimTable(DataTable):
    """A DataTable with j/k (and g/G) as in k9s."""

    BINDINGS = bindings(LIST_COMMANDS)


class FunctionList(VimTable):
    """Rows keyed by function id; `filter` narrows by name, runtime or description."""

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kw)
        self.functions: dict[str, Function] = {}
        self.outcomes: dict[str, Outcome] = {}  # by function id
        self.filter_text = ""

    def on_mount(self) -> None:
        # Fixed widths: no measuring of every cell when a thousand functions load.
        self.add_column("name", key="name", width=18)
        self.add_column("runtime", key="runtime", width=7)
        self.add_column("v", key="version", width=3)
        self.add_column("last", key="last", width=10)

    @property
    def selected_id(self) -> str | None:
        if not self.row_count:
            return None
        try:
            return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:
            return None

    def visible(self) -> list[Function]:
        words = self.filter_text.lower().split()
        fns = sorted(self.functions.values(), key=lambda f: f.name)
        if not words:
            return fns
        return [f for f in fns if all(w in f"{f.name} {f.runtime} {f.description}".lower() for w in words)]

    def set_functions(self, functions: list[Function]) -> None:
        self.functions = {f.id: f for f in functions}
        self.rebuild()

    def upsert(self, fn: Function) -> None:
        self.functions[fn.id] = fn
        if fn.id in self.rows and fn in self.visible():
            self.update_cell(fn.id, "name", fn.name)
            self.update_cell(fn.id, "runtime", fn.runtime)
            self.update_cell(fn.id, "version", str(fn.version))
        else:
            self.rebuild(keep=self.selected_id)

    def remove(self, fn_id: str) -> None:
        self.functions.pop(fn_id, None)
        self.outcomes.pop(fn_id, None)
        if fn_id in self.rows:
            self.rebuild()

    def set_outcome(self, fn_id: str, outcome: Outcome) -> None:
        self.outcomes[fn_id] = outcome
        if fn_id in self.rows:
            self.update_cell(fn_id, "last", outcome.render())

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.rebuild(keep=self.selected_id)

    def rebuild(self, keep: str | None = None) -> None:
        keep = keep or self.selected_id
        self.clear()
        dash = Text("–", style="dim")
        for fn in self.visible():
            out = self.outcomes.get(fn.id)
            self.add_row(fn.name, fn.runtime, str(fn.version), out.render() if out else dash, key=fn.id)
        if keep and keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep))

    def select_id(self, fn_id: str) -> None:
        if fn_id in self.rows:
            self.move_cursor(row=self.get_row_index(fn_id))
