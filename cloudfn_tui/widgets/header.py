"""The title line of the console: drawn like Textual's Header in one widget.

Textual's Header is four widgets (the bar, its icon, the title and the clock's place), and a
new title re-lays out the whole screen (the title is a Static, whose update asks for a layout).
This one draws the same line itself, repaints only itself when the title changes, and opens
the command palette when its icon is clicked, as Textual's does."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.widget import Widget

ICON = "⭘"
ICON_WIDTH = 8  # Textual's HeaderIcon: one space, the icon, room to its right
CLOCK_WIDTH = 10  # Textual's HeaderClockSpace (no clock shown)


class ConsoleHeader(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"console-header--icon-hover"}
    DEFAULT_CSS = """
    ConsoleHeader {
        dock: top;
        width: 100%;
        height: 1;
        background: $panel;
        color: $foreground;
        & > .console-header--icon-hover {
            background: $foreground 10%;
        }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._icon_hover = False

    def on_mount(self) -> None:
        for obj in (self.app, self.screen):
            self.watch(obj, "title", self._title_changed, init=False)
            self.watch(obj, "sub_title", self._title_changed, init=False)

    def _title_changed(self) -> None:
        self.refresh()

    @property
    def title_text(self) -> Text:
        screen, app = self.screen, self.app
        title = screen.title if screen.title is not None else app.title
        sub_title = screen.sub_title if screen.sub_title is not None else app.sub_title
        text = Text(title, end="", no_wrap=True)
        if sub_title:
            text.append(" — ", "dim")
            text.append(sub_title, "dim")
        return text

    def render(self) -> Text:
        width = self.size.width
        icon = Text(" " + ICON, end="", no_wrap=True)
        icon.pad_right(max(0, ICON_WIDTH - cell_len(icon.plain)))
        if self._icon_hover:
            icon.stylize(self.get_component_rich_style("console-header--icon-hover", partial=True))
        room = max(0, width - ICON_WIDTH - CLOCK_WIDTH)
        title = self.title_text
        if title.cell_len > room:
            title.truncate(max(0, room - 1))
            title.append("…")
        left = (room - title.cell_len) // 2
        line = Text(end="", no_wrap=True)
        line.append_text(icon)
        line.append(" " * left)
        line.append_text(title)
        line.append(" " * max(0, width - line.cell_len))
        line.stylize_before(self.rich_style)
        return line

    # -- mouse: the icon opens the command palette ---------------------------------------------
    def _on_icon(self, x: int) -> bool:
        return x < ICON_WIDTH and self.app.ENABLE_COMMAND_PALETTE

    def on_mouse_move(self, event: events.MouseMove) -> None:
        hover = self._on_icon(event.x)
        if hover != self._icon_hover:
            self._icon_hover = hover
            self.tooltip = "Open the command palette" if hover else None
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._icon_hover:
            self._icon_hover = False
            self.tooltip = None
            self.refresh()

    async def on_click(self, event: events.Click) -> None:
        if self._on_icon(event.x):
            event.stop()
            await self.run_action("app.command_palette")
