"""A row of tabs over an underline, drawn like Textual's Tabs in one widget.

Textual's TabbedContent is fourteen widgets for the console's four live panes (a tab bar of
containers, one widget per tab and one for the underline, a switcher, a pane per tab), all
composed, styled and laid out when the console starts, and its underline animates into place
after the first paint. This one draws the same two lines itself; the screen shows the pane of
the active tab. Left and right (when focused) or a click change the tab, as in Textual's."""

from __future__ import annotations

from rich.console import Group
from rich.style import Style
from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.renderables.bar import Bar
from textual.widget import Widget

from cloudfn_tui.keymap import Command, bindings

TAB_COMMANDS = [
    Command(
        "tabs.previous",
        "left",
        "previous_tab",
        "Previous tab",
        "the live pane on the left (tab bar focused)",
        show=False,
        palette=False,
    ),
    Command(
        "tabs.next",
        "right",
        "next_tab",
        "Next tab",
        "the live pane on the right (tab bar focused)",
        show=False,
        palette=False,
    ),
]


class TabBar(Widget, can_focus=True):
    BINDINGS = bindings(TAB_COMMANDS)
    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"tab-bar--tab", "tab-bar--active", "tab-bar--hover", "tab-bar--bar"}
    # The colours of Textual's Tab, Tabs and Underline.
    DEFAULT_CSS = """
    TabBar {
        width: 100%;
        height: 2;
        & > .tab-bar--tab {
            color: $foreground 50%;
        }
        & > .tab-bar--hover {
            color: $foreground;
        }
        & > .tab-bar--active {
            color: $foreground;
        }
        & > .tab-bar--bar {
            color: $block-cursor-background;
            background: $foreground 10%;
        }
        &:focus {
            & > .tab-bar--active {
                text-style: $block-cursor-text-style;
                color: $block-cursor-foreground;
                background: $block-cursor-background;
            }
            & > .tab-bar--bar {
                background: $foreground 30%;
            }
        }
    }
    """

    active: reactive[str] = reactive("")

    class Activated(Message):
        """A tab was made active (by a key, a click, or by setting `active`)."""

        def __init__(self, tab_bar: TabBar, tab: str) -> None:
            super().__init__()
            self.tab_bar = tab_bar
            self.tab = tab

        @property
        def control(self) -> TabBar:
            return self.tab_bar

    def __init__(
        self,
        tabs: list[tuple[str, str]],
        active: str | None = None,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        """`tabs`: (id, label) in order."""
        super().__init__(id=id, classes=classes)
        self.tabs = list(tabs)
        self._hover: str | None = None
        self.set_reactive(TabBar.active, active or (tabs[0][0] if tabs else ""))

    def watch_active(self, old: str, new: str) -> None:
        if old != new:
            self.post_message(self.Activated(self, new))

    # -- geometry ------------------------------------------------------------------------------
    def _spans(self) -> list[tuple[int, int, str]]:
        """(start, end) columns of each tab's label, padding included."""
        spans, x = [], 0
        for tab, label in self.tabs:
            width = Text(label).cell_len + 2
            spans.append((x, x + width, tab))
            x += width
        return spans

    def _tab_at(self, x: int) -> str | None:
        for start, end, tab in self._spans():
            if start <= x < end:
                return tab
        return None

    # -- drawing -------------------------------------------------------------------------------
    def render(self) -> Group:
        tab_style = self.get_component_rich_style("tab-bar--tab")
        active_style = self.get_component_rich_style("tab-bar--active")
        hover_style = self.get_component_rich_style("tab-bar--hover")
        labels = Text(no_wrap=True)  # ends its line: the bar goes under it
        highlight = (0, 0)
        for (start, end, tab), (_, label) in zip(self._spans(), self.tabs, strict=True):  # a span per tab
            if tab == self.active:
                style = active_style
                highlight = (start + 1, end - 1)
            else:
                style = hover_style if tab == self._hover else tab_style
            labels.append(f" {label} ", style)
        labels.append(" " * max(0, self.size.width - labels.cell_len))
        labels.stylize_before(self.rich_style)
        bar_style = self.get_component_rich_style("tab-bar--bar")
        bar = Bar(
            highlight_range=highlight,
            highlight_style=Style.from_color(bar_style.color),
            background_style=Style.from_color(bar_style.bgcolor),
        )
        return Group(labels, bar)

    # -- keys and mouse ------------------------------------------------------------------------
    def _move(self, step: int) -> None:
        ids = [tab for tab, _ in self.tabs]
        if ids:
            self.active = ids[(ids.index(self.active) + step) % len(ids)] if self.active in ids else ids[0]

    def action_next_tab(self) -> None:
        self._move(1)

    def action_previous_tab(self) -> None:
        self._move(-1)

    def on_click(self, event: events.Click) -> None:
        tab = self._tab_at(event.x)
        if tab is not None:
            event.stop()
            self.focus()
            self.active = tab

    def on_mouse_move(self, event: events.MouseMove) -> None:
        tab = self._tab_at(event.x) if event.y == 0 else None
        if tab != self._hover:
            self._hover = tab
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh()
