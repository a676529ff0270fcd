"""The footer of the screens: the keys of the focused screen, drawn like Textual's Footer.

Textual's Footer is a container of one widget per key, rebuilt (removed, mounted, styled, laid
out) whenever the bindings may have changed, which made it the dearest part of the console's
start: nine widgets to compose, style and paint for one line of text. This one is a single
widget that draws the same line, and repaints only when the keys it shows change. Clicking a
key presses it, as in Textual's."""

from __future__ import annotations

from typing import NamedTuple

from rich.style import Style
from rich.text import Text
from textual import events
from textual.widget import Widget


class _Item(NamedTuple):
    key: str
    key_display: str
    description: str
    enabled: bool
    tooltip: str
    palette: bool  # the command palette's key, drawn apart on the right


class KeyFooter(Widget, can_focus=False):
    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"key-footer--key", "key-footer--description", "key-footer--separator", "key-footer--hover"}
    # The colours and spacing of Textual's Footer and FooterKey (a key in the footer's usual
    # style; the palette's key docked right, compact, after a thin bar).
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        & > .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-footer--separator {
            color: $foreground 20%;
        }
        & > .key-footer--hover {
            background: $block-hover-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._items: tuple[_Item, ...] = ()
        self._spans: list[tuple[int, int, _Item]] = []  # (start, end) columns of each key
        self._hover: _Item | None = None

    def on_mount(self) -> None:
        self._items = self._read_items()
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _read_items(self) -> tuple[_Item, ...]:
        app = self.app
        active = self.screen.active_bindings
        items: list[_Item] = []
        seen: set[str] = set()
        for _, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in seen:  # one key per action, as Footer does
                seen.add(binding.action)
                items.append(
                    _Item(binding.key, app.get_key_display(binding), binding.description, enabled, tooltip, False)
                )
        palette = app.COMMAND_PALETTE_BINDING
        if app.ENABLE_COMMAND_PALETTE and palette in active:
            _, binding, enabled, tooltip = active[palette]
            items.append(
                _Item(
                    binding.key,
                    app.get_key_display(binding),
                    binding.description,
                    enabled,
                    binding.tooltip or binding.description,
                    True,
                )
            )
        return tuple(items)

    def _bindings_changed(self, screen) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        items = self._read_items()
        if items != self._items:  # most focus moves leave the keys as they were
            self._items = items
            self.refresh()

    # -- drawing ---------------------------------------------------------------------------
    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-footer--key")
        description_style = self.get_component_rich_style("key-footer--description")
        hover_style = self.get_component_rich_style("key-footer--hover", partial=True)
        width = self.size.width
        left = Text(end="", no_wrap=True)
        right = Text(end="", no_wrap=True)
        spans: list[tuple[int, int, _Item]] = []
        for item in self._items:
            dim = Style(dim=True) if not item.enabled else Style()
            hover = hover_style if item == self._hover else Style()
            if item.palette:
                right.append("▏", self.get_component_rich_style("key-footer--separator") + dim)
                start = len(right)
                right.append(item.key_display, key_style + dim + hover)
                right.append(f" {item.description}", description_style + dim + hover)
                right.append(" ", hover if item == self._hover else Style())
                spans.append((start, len(right), item))
            else:
                start = len(left)
                left.append(f" {item.key_display} ", key_style + dim + hover)
                left.append(f"{item.description} ", description_style + dim + hover)
                spans.append((start, len(left), item))
        # The palette's key is docked right: it covers the end of a line too long for both.
        room = max(0, width - len(right))
        if len(left) > room:
            left.truncate(room)
        gap = max(0, room - len(left))
        offset = len(left) + gap
        self._spans = [
            (s + offset, e + offset, item) if item.palette else (s, min(e, room), item) for s, e, item in spans
        ]
        left.append(" " * gap)
        left.append_text(right)
        left.stylize_before(self.rich_style)
        return left

    # -- mouse -------------------------------------------------------------------------------
    def _item_at(self, x: int) -> _Item | None:
        for start, end, item in self._spans:
            if start <= x < end:
                return item
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        item = self._item_at(event.x)
        if item != self._hover:
            self._hover = item
            self.tooltip = item.tooltip if item is not None and item.tooltip else None
            self.refresh()

    def on_leave(self, event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.tooltip = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        item = self._item_at(event.x)
        if item is None:
            return
        if item.enabled:
            self.app.simulate_key(item.key)
        else:
            self.app.bell()
