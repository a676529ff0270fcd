"""A live log tail that stays flat in memory however many lines stream.

Like Toolong, it renders line by line (the Line API: only the visible rows are drawn) with a
small cache of rendered strips. Unlike a file viewer it owns its lines: a bounded ring buffer
(`deque(maxlen=...)`) of compact tuples, plus a second bounded ring of the lines that pass the
current level/search filter. Appends are O(1); repaints are batched to a few per second.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import NamedTuple

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.widgets.base_style import CachedBaseStyle

LEVELS = ("debug", "info", "warning", "error", "critical")
LEVEL_RANK = {name: i for i, name in enumerate(LEVELS)}
LEVEL_ALIASES = {"warn": "warning", "err": "error", "fatal": "critical", "trace": "debug"}
LEVEL_STYLE = {
    "debug": Style(dim=True),
    "info": Style(color="cyan"),
    "warning": Style(color="yellow", bold=True),
    "error": Style(color="red", bold=True),
    "critical": Style(color="red", bold=True, reverse=True),
}
DEFAULT_MAX_LINES = 10_000

LOG_COMMANDS = [
    Command("logs.follow", "f", "toggle_follow", "Follow", "follow the tail (or stop following)"),
    Command("logs.pause", "p,space", "toggle_pause", "Pause", "freeze the view; lines keep arriving in the buffer"),
    Command("logs.level", "l", "cycle_level", "Level", "cycle the minimum level shown"),
    Command("logs.search", "slash", "search", "Search", "search the log lines"),
    Command("logs.clear", "c", "clear", "Clear", "clear the log buffer"),
    Command("logs.down", "j", "scroll_down", "Down", show=False, palette=False),
    Command("logs.up", "k", "scroll_up", "Up", show=False, palette=False),
    Command("logs.end", "G,end", "scroll_end", "End", show=False, palette=False),
    Command("logs.top", "g,home", "scroll_home", "Top", show=False, palette=False),
]


class LogLine(NamedTuple):
    time: str  # HH:MM:SS
    level: str
    source: str  # function name or logger
    message: str


def normalize_level(level: str) -> str:
    level = (level or "info").lower()
    level = LEVEL_ALIASES.get(level, level)
    return level if level in LEVEL_RANK else "info"


def line_from_record(data: dict) -> LogLine:
    t = data.get("time")
    if isinstance(t, datetime):
        stamp = t.strftime("%H:%M:%S")
    elif isinstance(t, str) and len(t) >= 19:
        stamp = t[11:19]
    else:
        stamp = "--:--:--"
    source = data.get("function") or data.get("logger") or ""
    return LogLine(stamp, normalize_level(data.get("level", "info")), source, str(data.get("message", "")))


class LogView(CachedBaseStyle, ScrollView, can_focus=True):
    BINDINGS = bindings(LOG_COMMANDS)

    min_level: reactive[str] = reactive("debug")
    search_text: reactive[str] = reactive("")
    following: reactive[bool] = reactive(True)
    paused: reactive[bool] = reactive(False)

    def __init__(self, max_lines: int = DEFAULT_MAX_LINES, **kw) -> None:
        super().__init__(**kw)
        self.max_lines = max_lines
        self.buffer: deque[LogLine] = deque(maxlen=max_lines)
        self.view: deque[LogLine] = deque(maxlen=max_lines)
        self.total = 0  # every line ever appended
        self.pending = 0  # arrived while paused
        self._cache: LRUCache[tuple, Strip] = LRUCache(512)
        self._pending_flush = False
        self._max_width = 80

    def on_mount(self) -> None:
        self.set_interval(1 / 8, self.flush)
        self._update_title()

    # -- feeding ---------------------------------------------------------------------------
    def matches(self, line: LogLine) -> bool:
        if LEVEL_RANK[line.level] < LEVEL_RANK[self.min_level]:
            return False
        if self.search_text:
            needle = self.search_text.lower()
            return needle in line.message.lower() or needle in line.source.lower()
        return True

    def append(self, line: LogLine) -> None:
        """O(1): the oldest line falls out of a full buffer; the repaint happens later."""
        self.buffer.append(line)
        self.total += 1
        if self.paused:
            self.pending += 1
            return
        if self.matches(line):
            self.view.append(line)
            self._pending_flush = True

    def append_record(self, data: dict) -> None:
        self.append(line_from_record(data))

    def flush(self) -> None:
        """Show what arrived since the last repaint (a timer calls this a few times a second)."""
        if not self._pending_flush:
            return
        self._pending_flush = False
        self._refresh_view()

    def _refresh_view(self) -> None:
        self.virtual_size = Size(self._max_width, len(self.view))
        if self.following:
            self.scroll_end(animate=False, immediate=True)
            # The first overflow adds the scrollbars, which take rows only at the next layout:
            # the end reached above is then short of the newest line. Reach it again after.
            self.call_after_refresh(self._stick_to_end)
        self._update_title()
        self.refresh()

    def _stick_to_end(self) -> None:
        if self.following and self.scroll_y < self.max_scroll_y:
            self.scroll_end(animate=False, immediate=True)

    def on_resize(self) -> None:
        if self.following:
            self.call_after_refresh(self._stick_to_end)

    def rebuild(self) -> None:
        self.view = deque((rec for rec in self.buffer if self.matches(rec)), maxlen=self.max_lines)
        self._cache.clear()
        self._refresh_view()

    # -- actions ---------------------------------------------------------------------------
    def watch_min_level(self) -> None:
        if self.is_mounted:
            self.rebuild()

    def watch_search_text(self) -> None:
        if self.is_mounted:
            self.rebuild()

    def action_cycle_level(self) -> None:
        self.min_level = LEVELS[(LEVEL_RANK[self.min_level] + 1) % 4]  # debug..error

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        if self.following:
            self.paused = False
            self.scroll_end(animate=False)
        self._update_title()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.pending = 0
            self.rebuild()
        self._update_title()

    def action_clear(self) -> None:
        self.buffer.clear()
        self.view.clear()
        self._cache.clear()
        self._refresh_view()

    def action_search(self) -> None:
        # The logs pane owns the search box; ask it to open.
        self.post_message(SearchRequested())

    def action_scroll_down(self) -> None:
        self.following = False
        self.scroll_relative(y=1, animate=False)

    def action_scroll_up(self) -> None:
        self.following = False
        self.scroll_relative(y=-1, animate=False)

    def _update_title(self) -> None:
        state = "paused" if self.paused else ("following" if self.following else "scrolling")
        extra = f" · {self.pending} new" if self.paused and self.pending else ""
        flt = f" · ≥{self.min_level}" if self.min_level != "debug" else ""
        srch = f" · “{self.search_text}”" if self.search_text else ""
        self.border_title = f"Logs · {state}{flt}{srch}{extra}"
        self.border_subtitle = f"{len(self.view)}/{len(self.buffer)} lines (max {self.max_lines})"

    # -- rendering -------------------------------------------------------------------------
    def notify_style_update(self) -> None:
        self._cache.clear()  # the cached lines carry the old theme's colours
        super().notify_style_update()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.scrollable_content_region.width
        if index >= len(self.view):
            return Strip.blank(width, self._base_style)
        line = self.view[index]
        key = (id(line), line, scroll_x, width)
        strip = self._cache.get(key)
        if strip is None:
            style = LEVEL_STYLE[line.level]
            segments = [
                Segment(line.time + " ", Style(dim=True)),
                Segment(f"{line.level[:4].upper():<5}", style),
                Segment(f"{line.source[:18]:<19}", Style(color="magenta")),
                Segment(line.message, style if line.level in ("error", "critical") else None),
            ]
            strip = Strip(segments).crop(scroll_x, scroll_x + width).extend_cell_length(width)
            strip = strip.apply_style(self._base_style)
            self._cache[key] = strip
        return strip

    def plain_lines(self) -> list[str]:
        return [f"{r.time} {r.level} {r.source} {r.message}" for r in self.view]


from textual.message import Message  # noqa: E402


class SearchRequested(Message):
    pass
