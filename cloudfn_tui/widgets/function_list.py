"""The function list: name, runtime, version and the outcome of the last invocation.

Not a DataTable: a DataTable measures every cell of every new row (about 0.15 s for a thousand
functions, on each reload and filter keystroke). The columns here have fixed widths and every row
is one line, so the list only keeps its rows and renders the few that are on screen (Line API).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import DataTable

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.widgets.base_style import CachedBaseStyle
from core.models import Function

LIST_COMMANDS = [
    Command("list.down", "j", "cursor_down", "Down", show=False, palette=False),
    Command("list.up", "k", "cursor_up", "Up", show=False, palette=False),
    Command("list.top", "g", "scroll_top", "Top", show=False, palette=False),
    Command("list.bottom", "G", "scroll_bottom", "Bottom", show=False, palette=False),
]
# The keys a DataTable had, so the list moves as the other tables do (not in the help: they are
# the usual arrow keys).
NAV_COMMANDS = [
    Command("list.select", "enter", "select_cursor", "Select", show=False, palette=False),
    Command("list.cursor_down", "down", "cursor_down", "Down", show=False, palette=False),
    Command("list.cursor_up", "up", "cursor_up", "Up", show=False, palette=False),
    Command("list.page_down", "pagedown", "page_down", "Page down", show=False, palette=False),
    Command("list.page_up", "pageup", "page_up", "Page up", show=False, palette=False),
    Command("list.first", "home,ctrl+home", "scroll_top", "First", show=False, palette=False),
    Command("list.last", "end,ctrl+end", "scroll_bottom", "Last", show=False, palette=False),
]

# 44 cells with their padding: the wide layout's pane inside its border, so no sideways scrolling.
COLUMNS = [("name", 17), ("runtime", 7), ("v", 3), ("last", 9)]
PADDING = 1  # a space either side of each cell, as a DataTable has
ROW_WIDTH = sum(width + 2 * PADDING for _, width in COLUMNS)


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


def _fit(text: str, width: int) -> str:
    """`text` padded or cut (with an ellipsis) to `width` cells."""
    size = cell_len(text)
    if size <= width:
        return text + " " * (width - size)
    return set_cell_size(text, width - 1) + "…"


class VimTable(DataTable):
    """A DataTable with j/k (and g/G) as in k9s."""

    BINDINGS = bindings(LIST_COMMANDS)


class FunctionList(CachedBaseStyle, ScrollView, can_focus=True):
    """Rows keyed by function id; `filter` narrows by name, runtime or description."""

    BINDINGS = bindings(LIST_COMMANDS + NAV_COMMANDS)
    COMPONENT_CLASSES = {"function-list--header", "function-list--cursor"}
    # The look of a DataTable with a row cursor.
    DEFAULT_CSS = """
    FunctionList {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .function-list--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .function-list--header {
                background-tint: $foreground 5%;
            }
        }
        & > .function-list--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .function-list--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .function-list--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class Highlighted(Message):
        """The cursor is on another function."""

        def __init__(self, fn_id: str) -> None:
            super().__init__()
            self.fn_id = fn_id

    class Selected(Message):
        """enter (or a click) on the function under the cursor."""

        def __init__(self, fn_id: str) -> None:
            super().__init__()
            self.fn_id = fn_id

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.functions: dict[str, Function] = {}
        self.outcomes: dict[str, Outcome] = {}  # by function id
        self.filter_text = ""
        self._order: list[str] = []  # the shown function ids, top to bottom
        self._index: dict[str, int] = {}
        self.cursor_row = 0
        self._highlighted: str | None = None  # the id the last Highlighted named
        self._strips: dict[tuple[str, bool], Strip] = {}  # rendered rows, until a style or row changes
        self.virtual_size = Size(ROW_WIDTH, 1)

    # -- what the tests and the screen read -------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._order)

    @property
    def selected_id(self) -> str | None:
        return self._order[self.cursor_row] if self._order else None

    def get_row(self, fn_id: str) -> list[str | Text]:
        fn = self.functions[fn_id]
        out = self.outcomes.get(fn_id)
        return [fn.name, fn.runtime, str(fn.version), out.render() if out else Text("–", style="dim")]

    def get_row_at(self, index: int) -> list[str | Text]:
        return self.get_row(self._order[index])

    # Not `visible` nor `remove`: those are Textual's (Widget.visible is read by its compositor,
    # Widget.remove takes the widget out of the DOM).
    def visible_functions(self) -> list[Function]:
        words = self.filter_text.lower().split()
        fns = sorted(self.functions.values(), key=lambda f: f.name)
        if not words:
            return fns
        return [f for f in fns if all(w in f"{f.name} {f.runtime} {f.description}".lower() for w in words)]

    # -- changes ----------------------------------------------------------------------------
    def set_functions(self, functions: list[Function]) -> None:
        self.functions = {f.id: f for f in functions}
        self.rebuild()

    def upsert(self, fn: Function) -> None:
        self.functions[fn.id] = fn
        if fn.id in self._index and fn in self.visible_functions():
            self._changed(fn.id)
        else:
            self.rebuild(keep=self.selected_id)

    def remove_function(self, fn_id: str) -> None:
        self.functions.pop(fn_id, None)
        self.outcomes.pop(fn_id, None)
        if fn_id in self._index:
            self.rebuild()

    def set_outcome(self, fn_id: str, outcome: Outcome) -> None:
        self.outcomes[fn_id] = outcome
        if fn_id in self._index:
            self._changed(fn_id)

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self.rebuild(keep=self.selected_id)

    def rebuild(self, keep: str | None = None) -> None:
        """Show the functions that pass the filter; the cursor stays on `keep` (or the selected
        function) if it is still shown, else it goes to the top."""
        keep = keep or self.selected_id
        self._order = [f.id for f in self.visible_functions()]
        self._index = {fn_id: i for i, fn_id in enumerate(self._order)}
        self._strips.clear()
        self.virtual_size = Size(ROW_WIDTH, len(self._order) + 1)  # + the header
        self.move_cursor(row=self._index.get(keep, 0) if keep else 0)
        self.refresh()

    def _changed(self, fn_id: str) -> None:
        for cursor in (False, True):
            self._strips.pop((fn_id, cursor), None)
        self.refresh()

    # -- the cursor -------------------------------------------------------------------------
    def move_cursor(self, row: int) -> None:
        self.cursor_row = max(0, min(row, len(self._order) - 1))
        self.refresh()
        self.call_after_refresh(self._scroll_cursor_visible)
        fn_id = self.selected_id
        if fn_id is not None and fn_id != self._highlighted:
            self._highlighted = fn_id
            self.post_message(self.Highlighted(fn_id))

    def select_id(self, fn_id: str) -> None:
        if fn_id in self._index:
            self.move_cursor(row=self._index[fn_id])

    def _scroll_cursor_visible(self) -> None:
        shown = self.scrollable_content_region.height - 1  # rows under the header
        if shown <= 0:
            return
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + shown:
            self.scroll_to(y=self.cursor_row - shown + 1, animate=False)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + max(1, self.scrollable_content_region.height - 1))

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - max(1, self.scrollable_content_region.height - 1))

    def action_scroll_top(self) -> None:
        self.move_cursor(0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(len(self._order) - 1)

    def action_select_cursor(self) -> None:
        if self.selected_id is not None:
            self.post_message(self.Selected(self.selected_id))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:  # the header
            return
        row = round(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self._order):
            again = row == self.cursor_row
            self.move_cursor(row)
            if again:
                self.action_select_cursor()

    # -- drawing ----------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self._base_style
        if y == 0:  # the header bar spans the whole width, as a DataTable's does
            header = base + self.get_component_rich_style("function-list--header")
            return self._line([name for name, _ in COLUMNS], header).crop_extend(scroll_x, scroll_x + width, header)
        row = scroll_y + y - 1
        if row >= len(self._order):
            return Strip.blank(width, base)
        # The cursor bar spans the whole width too.
        fill = base + self._cursor_style() if row == self.cursor_row else base
        return self._row_strip(row).crop_extend(scroll_x, scroll_x + width, fill)

    def _line(self, cells: list[str | Text], style: Style, post: Style | None = None) -> Strip:
        """One row; plain cells become one segment (no Text to lay out: this runs for every row
        that scrolls into view)."""
        segments: list[Segment] = []
        plain = ""
        pad = " " * PADDING
        for cell, (_, width) in zip(cells, COLUMNS, strict=True):  # get_row makes one cell per column
            if isinstance(cell, Text):
                text = cell.copy()
                text.truncate(width, overflow="ellipsis", pad=True)
                console = self.app.console  # Text.render leaves the text's own style out
                segments += [
                    Segment(plain + pad),
                    *Segment.apply_style(text.render(console), console.get_style(text.style)),
                ]
                plain = pad
            else:
                plain += pad + _fit(cell, width) + pad
        segments.append(Segment(plain))
        # `style` goes under the cells' own styles, `post` over them.
        return Strip(list(Segment.apply_style(segments, style, post)), ROW_WIDTH)

    def _row_strip(self, row: int) -> Strip:
        fn_id = self._order[row]
        cursor = row == self.cursor_row
        strip = self._strips.get((fn_id, cursor))
        if strip is None:
            # The cursor's colours win over a cell's own (a red ✗ on the cursor row), as in a
            # DataTable.
            post = self._cursor_style() if cursor else None
            strip = self._strips[(fn_id, cursor)] = self._line(self.get_row(fn_id), self._base_style, post)
        return strip

    def _cursor_style(self) -> Style:
        cursor = self.get_component_rich_style("function-list--cursor")
        return Style.from_color(cursor.color, cursor.bgcolor) + Style(
            bold=cursor.bold, italic=cursor.italic, reverse=cursor.reverse
        )
