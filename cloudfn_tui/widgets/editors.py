"""The code editor (a new version on save) and the event editor (JSON, checked before invoking)."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, TextArea
from textual.widgets.text_area import Selection

from core.models import Function

LANGUAGES = {"python": "python", "nodejs": "javascript", "go": "go"}


def _code_area(id: str) -> TextArea:
    return TextArea.code_editor("", language=None, id=id, soft_wrap=False, theme="css")


def _load(area: TextArea, text: str, language: str | None) -> None:
    """Show `text` highlighted as `language`, parsing it once.

    Each new document of a highlighted area compiles the language's highlight query (20 ms for
    Python): setting the language, then loading the text, would compile it twice."""
    if language not in area.available_languages:
        language = None
    if area.language != language:
        area.language = None
        area.load_text(text)
        area.language = language
    else:
        area.load_text(text)


class CodeEditor(Vertical):
    """The selected function's code, with a title naming it and a dirty marker."""

    class DirtyChanged(Message):
        def __init__(self, dirty: bool) -> None:
            super().__init__()
            self.dirty = dirty

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.function: Function | None = None
        self._dirty = False
        self.border_title = "Code"

    def compose(self) -> ComposeResult:
        yield _code_area("code")

    @property
    def area(self) -> TextArea:
        return self.query_one("#code", TextArea)

    @property
    def dirty(self) -> bool:
        return self._dirty

    def load(self, fn: Function | None, keep_edits: bool = False) -> None:
        """Show `fn`; a reload of the same function with unsaved edits keeps them."""
        same = self.function is not None and fn is not None and fn.id == self.function.id
        self.function = fn
        if same and keep_edits and self._dirty:
            self._update_title()
            return
        area = self.area
        _load(area, fn.code if fn else "", LANGUAGES.get(fn.runtime) if fn else None)
        area.read_only = fn is None
        self._mark_dirty(False)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self.function is not None:
            self._mark_dirty(self.area.text != self.function.code)

    def _mark_dirty(self, dirty: bool) -> None:
        changed = dirty != self._dirty
        self._dirty = dirty
        self._update_title()
        if changed:
            self.post_message(self.DirtyChanged(dirty))

    def _update_title(self) -> None:
        fn = self.function
        if fn is None:
            self.border_title = "Code"
            self.border_subtitle = ""
            return
        marker = " ● modified" if self._dirty else ""
        self.border_title = f"{fn.name} · {fn.runtime} · v{fn.version}{marker}"
        self.border_subtitle = "ctrl+s save · ctrl+z undo"
        self.set_class(self._dirty, "-dirty")

    def goto_line(self, line: int, column: int | None = None) -> None:
        area = self.area
        row = max(0, min(line - 1, area.document.line_count - 1))
        col = max(0, (column or 1) - 1)
        end = len(area.document.get_line(row))
        # Highlight the line with the cursor at the failing column: a cursor at the line's end
        # (select_line) scrolls a long line sideways, out of sight of its start.
        area.selection = Selection((row, end), (row, min(col, end)))
        area.scroll_cursor_visible(center=True)
        area.focus()


class EventError(ValueError):
    pass


class EventEditor(Vertical):
    """The test event, as JSON. `value()` parses it or raises EventError naming the spot."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.border_title = "Event"
        self.saved_name: str | None = None

    def compose(self) -> ComposeResult:
        yield _code_area("event")  # the error line below it is made when first needed

    @property
    def area(self) -> TextArea:
        return self.query_one("#event", TextArea)

    def set_event(self, event: Any, saved_name: str | None = None) -> None:
        _load(self.area, json.dumps(event, indent=2, ensure_ascii=False) if event is not None else "{}", "json")
        self.saved_name = saved_name
        self._show_error("")
        self._update_title()

    def _update_title(self) -> None:
        self.border_title = f"Event · {self.saved_name}" if self.saved_name else "Event"
        self.border_subtitle = "ctrl+o saved · ctrl+t save as"

    def value(self) -> Any:
        text = self.area.text
        if not text.strip():
            self._show_error("")
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
            self._show_error(msg)
            self.area.move_cursor((exc.lineno - 1, max(0, exc.colno - 1)))
            raise EventError(msg) from None
        self._show_error("")
        return value

    def _error_label(self) -> Label | None:
        for label in self.query("#event-error").results(Label):
            return label
        return None

    def _show_error(self, message: str) -> None:
        label = self._error_label()
        if label is None:
            if message:
                self.mount(Label(message, id="event-error"))
            return
        label.update(message)
        label.display = bool(message)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        label = self._error_label()
        if label is not None and label.display:
            label.display = False
