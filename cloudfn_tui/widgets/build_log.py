"""The live build log: shown while a function's dependencies install (build.* events, so it
works attached to a server too), with an indeterminate progress bar and the installer's lines.
It closes itself when the install succeeds; a failed one stays open, with the installer's last
words, until the next build or esc."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Log, ProgressBar, Static

MAX_LINES = 500  # a long install's log stays bounded; the whole log is in the BuildError


class BuildLog(Vertical):
    DEFAULT_CSS = """
    BuildLog {
        dock: bottom;
        height: 12;
        display: none;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    BuildLog.failed { border: round $error; }
    BuildLog #build-title { height: 1; }
    BuildLog ProgressBar { height: 1; }
    BuildLog Log { height: 1fr; }
    """

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.function = ""
        self.running = False
        self.lines = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="build-title")
        yield Log(max_lines=MAX_LINES, id="build-lines")

    def _progress(self, running: bool) -> None:
        # Mounted only while an install runs: an indeterminate bar repaints many times a
        # second, hidden or not, and that kept the whole console busy.
        bars = list(self.query(ProgressBar))
        if running and not bars:
            self.mount(
                ProgressBar(total=None, show_eta=False, show_percentage=False, id="build-progress"),
                after="#build-title",
            )
        elif not running:
            for bar in bars:
                bar.remove()

    @property
    def title(self) -> Static:
        return self.query_one("#build-title", Static)

    @property
    def log_widget(self) -> Log:
        return self.query_one(Log)

    def on_build(self, kind: str, data: dict[str, Any]) -> None:
        name = str(data.get("function", ""))
        if kind == "build.started":
            self.function, self.running, self.lines = name, True, 0
            self.remove_class("failed")
            self.log_widget.clear()
            self._progress(True)
            self.title.update(f"Installing the dependencies of {name} ({data.get('manifest', '')})…")
            self.border_title = "Build"
            self.display = True
        elif name != self.function:
            return
        elif kind == "build.log":
            self.lines += 1
            self.log_widget.write_line(str(data.get("line", "")))
        elif kind == "build.finished":
            self.running = False
            self._progress(False)
            if data.get("ok"):
                n = len(data.get("packages") or [])
                self.title.update(
                    f"Installed {n} package{'s' if n != 1 else ''} for {name} "
                    f"in {float(data.get('seconds') or 0):.2f} s"
                )
                self.display = False
            else:
                self.add_class("failed")
                self.title.update(f"[b]Install failed[/b] for {name}: {data.get('error', '')} (esc closes)")

    def close(self) -> bool:
        """esc: close a finished log. True when it was open."""
        if self.display and not self.running:
            self.display = False
            return True
        return False
