"""The code editor (a new version on save) and the event editor (JSON, checked before invoking)."""

from __future__ import annotations

import json
import re
import weakref
from typing import Any

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, Static, TextArea
from textual.widgets.text_area import Selection

from cloudfn_tui._textual_compat import styled_highlight_source
from cloudfn_tui.drafts import CodeDrafts
from cloudfn_tui.keymap import ESC_DIGIT_KEYS, Command, bindings
from core.funcfiles import HANDLER_FILES
from core.models import Function

LANGUAGES = {"python": "python", "nodejs": "javascript", "go": "go"}
# Shown under each editor: inside one, printable keys are text, so only these leave it.
LEAVE_HINT = "esc: back to list · alt+N: pane"
EDITOR_COMMANDS = [
    # Textual's editor moves to the line's start on ctrl+a (home does that too); people expect
    # select-all there, as in every other editor they use.
    Command(
        "editor.select_all", "ctrl+a", "select_all", "Select all", "select the whole text", show=False, palette=False
    ),
]
# Per language: the unit of one indent level (each language's usual style: PEP 8, the bundled
# JavaScript templates' two spaces, gofmt's tabs), and what opens a block after which enter
# indents one level more.
INDENTS = {"python": ("    ", ":([{"), "javascript": ("  ", "{(["), "go": ("\t", "{(["), "json": ("  ", "{[")}


class EditorArea(TextArea):
    """A code TextArea that never types a key the console binds to navigation.

    Textual's code editor moves the focus to the next widget on esc (Code -> Event -> Result),
    and types ESC+digit (alt+digit in tmux and xterm), which Textual reads as macOS's Option+digit
    characters. Here both go on to the screen's bindings: esc back to the list, alt+N to a pane."""

    BINDINGS = bindings(EDITOR_COMMANDS)

    def check_consume_key(self, key: str, character: str | None = None) -> bool:
        # Textual drops the screen's bindings of any key the focused widget says it consumes.
        return not is_navigation_key(key) and super().check_consume_key(key, character)

    async def _on_key(self, event: events.Key) -> None:
        if is_navigation_key(event.key):
            event.prevent_default()  # not typed; the key still bubbles to the bindings
        elif event.key == "enter" and not self.read_only:
            event.stop()
            event.prevent_default()  # Textual's own enter would insert a bare newline
            start, end = self.selection
            self._replace_via_keyboard("\n" + self.next_indent(), start, end)

    def next_indent(self) -> str:
        """The indent of a new line broken at the cursor: the line's own, one level more after
        a line that opens a block (`def f():`, `{`, `(`)."""
        start, end = sorted(self.selection)
        row, column = start
        before = self.document.get_line(row)[:column]
        indent = before[: len(before) - len(before.lstrip())]
        unit, openers = INDENTS.get(self.language or "", ("", ""))
        stripped = before.rstrip()
        if self.language == "python":
            stripped = re.sub(r"\s+#.*$", "", stripped)  # `def f():  # why` still opens a block
        if unit and stripped and stripped[-1] in openers:
            indent += unit
        return indent


EXTENSIONS = {
    ".py": "python",
    ".js": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".go": "go",
    ".json": "json",
    ".md": "markdown",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".html": "html",
    ".css": "css",
    ".sh": "bash",
    ".sql": "sql",
    ".xml": "xml",
}


def _language(path: str, runtime: str | None, is_handler: bool) -> str | None:
    """How to highlight a file: the runtime's language for the handler file, else by extension
    (`go.mod`, `requirements.txt` and other plain files are shown as text)."""
    if is_handler:
        return LANGUAGES.get(runtime or "")
    dot = path.rfind(".")
    return EXTENSIONS.get(path[dot:].lower()) if dot > path.rfind("/") else None


def is_navigation_key(key: str) -> bool:
    """esc and alt+anything (and their ESC+digit stand-ins): keys no text field may type."""
    return key == "escape" or key in ESC_DIGIT_KEYS or key.startswith("alt+")


def _code_area(id: str) -> TextArea:
    return EditorArea.code_editor("", language=None, id=id, soft_wrap=False, theme="css")


def _load(area: TextArea, text: str, language: str | None) -> None:
    """Show `text` highlighted as `language`, parsing it once.

    Each new document of a highlighted area compiles the language's highlight query (20 ms for
    Python): setting the language, then loading the text, would compile it twice."""
    if language not in area.available_languages:
        language = None
    if area.language != language:
        area.language = None
        if language is not None:
            _use_styled_query(area, language)
        area.load_text(text)
        area.language = language
    else:
        area.load_text(text)


# -- highlight queries: only the patterns the editor's theme draws ------------------------------
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_CAPTURE = re.compile(r"@([\w.-]+)")
_NAME = re.compile(r"[\w.!-]+")


# The languages whose query each area has been given already (weak: an area can go away).
_STYLED_QUERIES: weakref.WeakKeyDictionary[TextArea, set[str]] = weakref.WeakKeyDictionary()


def _use_styled_query(area: TextArea, language: str) -> None:
    """Give `area` Textual's highlight query for `language` without the patterns whose every
    capture the area's theme leaves unstyled (variables, parameters, fields, ...).

    The editor draws a capture only if its theme has a style of that exact name, so the picture
    is the same; the query compiles in half the time (Python: 20 ms of the console's start, and
    of every function shown after a function of another language). Once per area and language;
    anything unexpected keeps Textual's own query."""
    done = _STYLED_QUERIES.setdefault(area, set())
    if language in done:
        return
    done.add(language)
    try:
        styled, source = styled_highlight_source(area, language)
        if not styled or not source:
            return
        kept = [p for p in split_query(source) if _draws(p, styled)]
        area.update_highlight_query(language, "\n".join(kept))
    except Exception:
        return


def _draws(pattern: str, styled: set[str]) -> bool:
    names = _CAPTURE.findall(_STRING.sub('""', pattern))
    return any(name in styled for name in names if not name.startswith("_"))


def split_query(source: str) -> list[str]:
    """The top-level patterns of a tree-sitter query, each with its captures, quantifiers and
    predicates. Raises ValueError on text it does not understand."""
    patterns: list[str] = []
    i, n = 0, len(source)

    def skip(i: int) -> int:  # blanks and ; comments
        while i < n:
            if source[i].isspace():
                i += 1
            elif source[i] == ";":
                i = source.find("\n", i)
                i = n if i < 0 else i
            else:
                break
        return i

    def string_end(i: int) -> int:
        m = _STRING.match(source, i)
        if m is None:
            raise ValueError(f"unterminated string at {i}")
        return m.end()

    def form_end(i: int) -> int:
        depth = 0
        while i < n:
            c = source[i]
            if c == '"':
                i = string_end(i)
                continue
            if c == ";":
                i = skip(i)
                continue
            if c in "([":
                depth += 1
            elif c in ")]":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise ValueError("unbalanced pattern")

    i = skip(0)
    while i < n:
        start, c = i, source[i]
        if c in "([":
            i = form_end(i)
        elif c == '"':
            i = string_end(i)
        else:
            m = _NAME.match(source, i)
            if m is None:
                raise ValueError(f"unexpected {c!r} at {i}")
            i = m.end()
        while True:  # what follows the pattern: quantifiers and captures
            j = skip(i)
            if j < n and source[j] in "*+?":
                i = j + 1
            elif j < n and source[j] == "@":
                m = _CAPTURE.match(source, j)
                if m is None:
                    raise ValueError(f"bad capture at {j}")
                i = m.end()
            else:
                break
        patterns.append(source[start:i])
        i = skip(i)
    return patterns


class CodeEditor(Vertical):
    """The selected function's files, one shown at a time, with a title naming it and a dirty
    marker. A function with files besides its handler file gets a one-line strip of their names
    above the text (f6 / shift+f6 or `:file NAME` switch); the others keep their edits while
    another is shown, and all of them are saved together as one version."""

    class DirtyChanged(Message):
        def __init__(self, dirty: bool) -> None:
            super().__init__()
            self.dirty = dirty

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.function: Function | None = None
        self._dirty = False
        self.restored = False  # the unsaved code came back from an earlier console
        self.border_title = "Code"
        self.texts: dict[str, str] = {}  # every file's working text; the shown one's is in the area
        self.shown = ""  # the path of the file in the area
        self._others_dirty = False  # a file not shown differs from the saved version
        self.drafts = CodeDrafts()  # the unsaved work of every function shown (the screen attaches the store)

    def on_mount(self) -> None:
        # Unsaved code also reaches the disk while the console runs, not only when it quits:
        # a killed terminal or SSH session then loses two seconds of typing at most.
        self.set_interval(2.0, self.autosave_draft)

    def compose(self) -> ComposeResult:
        strip = Static("", id="file-strip", markup=False)
        strip.display = False
        yield strip
        yield _code_area("code")

    @property
    def area(self) -> TextArea:
        return self.query_one("#code", TextArea)

    @property
    def dirty(self) -> bool:
        return self._dirty

    @property
    def handler_file(self) -> str:
        if self.function is None:
            return "code"
        return self.function.handler_file or HANDLER_FILES.get(self.function.runtime, "code")

    def workspace(self) -> tuple[str, dict[str, str]]:
        """(code, files) as edited: what a save sends."""
        texts = dict(self.texts)
        if self.shown:
            texts[self.shown] = self.area.text
        code = texts.pop(self.handler_file, "")
        return code, texts

    def _saved(self) -> dict[str, str]:
        fn = self.function
        return {self.handler_file: fn.code, **fn.files} if fn is not None else {}

    def load(self, fn: Function | None, keep_edits: bool = False) -> None:
        """Show `fn`; a reload of the same function with unsaved edits keeps them."""
        same = self.function is not None and fn is not None and fn.id == self.function.id
        if same and keep_edits and self._dirty:
            self.function = fn
            self._recheck()
            return
        if same and fn is not None and self.workspace() == (fn.code, fn.files):
            # What the editor shows is the version now saved: reloading it would wipe the undo
            # history, and ctrl+z after ctrl+s is how one gets back what the save replaced.
            self.function = fn
            self.restored = False
            self.texts = self._saved()
            self._others_dirty = False
            self._mark_dirty(False)
            self._update_strip()
            return
        self.function = fn
        self.restored = False
        self.set_workspace(fn.code if fn else "", dict(fn.files) if fn else {})
        self.area.read_only = fn is None

    def set_workspace(self, code: str, files: dict[str, str], shown: str | None = None) -> None:
        """Show these texts (a draft's, or the saved version's) with the handler file in front."""
        self.texts = {self.handler_file: code, **files}
        self.shown = ""
        self.show_file(shown if shown in self.texts else self.handler_file)

    def show_file(self, path: str) -> None:
        if self.shown and self.shown in self.texts:
            self.texts[self.shown] = self.area.text
        self.shown = path
        area = self.area
        language = _language(path, self.function.runtime if self.function else None, path == self.handler_file)
        if language == "go":
            area.indent_type, area.indent_width = "tabs", 4
        else:
            area.indent_type, area.indent_width = "spaces", 2 if language in ("javascript", "json", "yaml") else 4
        _load(area, self.texts.get(path, ""), language)
        saved = self._saved()
        self._others_dirty = {p: t for p, t in self.texts.items() if p != path} != {
            p: t for p, t in saved.items() if p != path
        }
        self._recheck()
        self._update_strip()

    def cycle(self, step: int) -> str:
        names = self.file_names()
        if len(names) < 2:
            return self.shown
        self.show_file(names[(names.index(self.shown) + step) % len(names)])
        return self.shown

    def file_names(self) -> list[str]:
        """The handler file first, the others by path."""
        return [self.handler_file, *sorted(p for p in self.texts if p != self.handler_file)]

    def add_file(self, path: str) -> None:
        self.texts[path] = ""
        self.show_file(path)

    def rename_shown(self, new: str) -> None:
        text = self.area.text
        old = self.shown
        self.texts.pop(old, None)
        self.texts[new] = text
        self.shown = ""
        self.show_file(new)

    def remove_shown(self) -> str:
        old = self.shown
        self.texts.pop(old, None)
        self.shown = ""
        self.show_file(self.handler_file)
        return old

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._recheck()

    def _recheck(self) -> None:
        if self.function is None:
            self._mark_dirty(False)
            return
        saved = self._saved()
        shown_dirty = self.shown not in saved or self.area.text != saved[self.shown]
        self._mark_dirty(self._others_dirty or shown_dirty)

    def _mark_dirty(self, dirty: bool) -> None:
        changed = dirty != self._dirty
        self._dirty = dirty
        self._update_title()
        if changed:
            self.post_message(self.DirtyChanged(dirty))

    def _update_strip(self) -> None:
        strip = self.query_one("#file-strip", Static)
        names = self.file_names()
        many = len(names) > 1 or self.shown != self.handler_file
        strip.display = many
        if not many:
            return
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"{names.index(self.shown) + 1}/{len(names)} ", style="dim")
        at = names.index(self.shown)
        # the shown file and the one before it first: a long list is cut at the right edge
        if at > 1:
            line.append("… ", style="dim")  # files before these: shift+f6 reaches them
        for i, name in enumerate(names[max(0, at - 1) :]):
            if i:
                line.append(" │ ", style="dim")
            line.append(name, style="reverse bold" if name == self.shown else "")
        strip.update(line)
        self._update_title()

    def _update_title(self) -> None:
        fn = self.function
        if fn is None:
            self.border_title = "Code"
            self.border_subtitle = ""
            return
        marker = (" ● draft restored" if self.restored else " ● modified") if self._dirty else ""
        where = f" · {self.shown}" if len(self.texts) > 1 or self.shown != self.handler_file else ""
        self.border_title = f"{fn.name} · {fn.runtime} · v{fn.version}{where}{marker}"
        self.border_subtitle = f"ctrl+s save · {'f6 file · ' if where else ''}{LEAVE_HINT}"
        self.set_class(self._dirty, "-dirty")

    # -- drafts: the unsaved work of each function, kept while another is shown (drafts.py) ------
    def stash_draft(self) -> None:
        """The shown function's texts become its draft (none if clean), on disk too."""
        fn = self.function
        if fn is None:
            return
        self.drafts.take(fn, self._dirty, *self.workspace())
        self._warn(self.drafts.persist(fn.id))

    def autosave_draft(self) -> None:
        fn = self.function
        if fn is None or not self.is_mounted:
            return
        self.drafts.take(fn, self._dirty, *self.workspace())
        if self._dirty:
            self.drafts.bases.setdefault(fn.id, fn.version)
        self._warn(self.drafts.persist(fn.id))

    def show_draft(self) -> None:
        """Show the shown function's draft in place of its saved version, if it has one."""
        fn = self.function
        if fn is None or fn.id not in self.drafts:
            return
        self.restored = fn.id in self.drafts.restored
        self.set_workspace(*self.drafts.workspace(fn))

    def restore_drafts(self) -> list[str]:
        """Drafts an earlier console left, the shown function's into the editor; returns what to
        say of each."""
        restored = self.drafts.restore()
        if restored:
            self.show_draft()
        return restored

    def keep_drafts(self) -> None:
        self._warn(self.drafts.keep_all())

    def _warn(self, problem: str) -> None:
        if problem:
            self.notify(problem, title="Drafts", severity="warning", timeout=10)

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
        self.drafts: dict[str, tuple[str, str | None]] = {}  # function id -> event text, saved name

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

    def stash_draft(self, fn_id: str) -> None:
        self.drafts[fn_id] = (self.area.text, self.saved_name)

    def show_draft(self, fn_id: str) -> bool:
        """Show the event `fn_id` had when another function was shown; False if it had none."""
        if fn_id not in self.drafts:
            return False
        text, name = self.drafts[fn_id]
        self.area.load_text(text)
        self.saved_name = name
        self._update_title()
        return True

    def _update_title(self) -> None:
        self.border_title = f"Event · {self.saved_name}" if self.saved_name else "Event"
        self.border_subtitle = "esc: list · alt+N: pane"  # narrow in the wide layout: the way out first

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
