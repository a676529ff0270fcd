"""Every private Textual name the console uses, in one place.

Textual is pinned exactly (pyproject.toml) because of what is here. Each use saves start time the
console benchmark measures (tests/benchmarks/bench_console.py, figures in the README's performance
section); tests/console/test_textual_compat.py checks that each name still exists and behaves as
assumed, so an upgrade that moves one fails there, naming it, rather than somewhere in the console.

`CLOUDFN_STOCK_TEXTUAL=1` switches every one of them back to Textual's stock behaviour: a first
paint, resumes and resizes as Textual does them, the theme set through `App.theme`, and Textual's
own highlight queries. The console then looks the same and starts slower.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from textual.app import App
from textual.screen import Screen
from textual.widgets import TextArea

STOCK = os.environ.get("CLOUDFN_STOCK_TEXTUAL", "") not in ("", "0")


class _PaintOnceScreen(Screen):
    """A screen painted once, complete, when it first shows, instead of Textual's three paints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._resumed = False
        self._paint_after_next_layout = False
        self._first_paint_due = False

    def _on_screen_resume(self, event: Any) -> None:
        """Runs before Textual's own handler of the event (Textual calls the handler of each
        class in the MRO). The first resume would restyle every widget, each styled as it was
        mounted moments ago; later ones (back from a dialog) still do."""
        if not self._resumed:
            self._resumed = True
            event.refresh_styles = False
            self._paint_after_next_layout = True

    def _compositor_refresh(self) -> None:
        """The first layout of the screen always asks for another (each widget, sized for the
        first time, lays out again; the list's scrollbars appear), and Textual paints after
        both, every widget twice. The first of those paints is left out: the screen is painted
        once, complete, after the second layout (Textual's resume handler asks for that paint)."""
        if self._paint_after_next_layout:
            self._paint_after_next_layout = False
            if self._layout_required:
                self._first_paint_due = True
                return
        super()._compositor_refresh()
        if self._first_paint_due:
            # Everything was painted, as it is now (nothing had been): the repaints asked for
            # while the screen was built and laid out (of the screen, of every widget sized, of
            # the list's scrollbars) would draw it all once more.
            self._first_paint_due = False
            self._repaint_required = False
            for widget in self._compositor.widgets:
                widget._repaint_required = False

    def _screen_resized(self, size: Any) -> None:
        """Textual sends a screen that has just started three resizes to the size it already has
        (the app's first size, the driver's, and the one its own first layout sends itself);
        each laid out and painted every widget once more. A real change of size still does."""
        laid_out = getattr(getattr(self, "_compositor", None), "size", None)
        if laid_out and laid_out == size:
            return
        super()._screen_resized(size)


# The base class of the console's main screen.
if TYPE_CHECKING or not STOCK:
    PaintOnceScreen = _PaintOnceScreen
else:
    PaintOnceScreen = Screen


def start_with_theme(app: App, name: str) -> None:
    """Take the theme before any CSS is parsed. Setting `theme` runs Textual's watcher, which
    re-parses every stylesheet with the new colours and restyles every widget once the app
    runs: the start parsed the console's CSS three times for it."""
    if STOCK:
        app.theme = name
        return
    app.set_reactive(App.theme, name)
    app.stylesheet.set_variables(app.get_css_variables())
    dark = app.current_theme.dark
    app.set_class(True, f"-theme-{name}", update=False)
    app.set_class(dark, "-dark-mode", update=False)
    app.set_class(not dark, "-light-mode", update=False)
    app._refresh_truecolor_filter(app.ansi_theme)  # the ANSI colours of a light theme


def styled_highlight_source(area: TextArea, language: str) -> tuple[set[str], str | None]:
    """The capture names `area`'s theme styles and Textual's built-in highlight query for
    `language`; nothing under the stock switch (the editor then keeps Textual's own query)."""
    if STOCK:
        return set(), None
    theme = getattr(area, "_theme", None)
    styled = set(theme.syntax_styles) if theme is not None else set()
    return styled, TextArea._get_builtin_highlight_query(language)


def xterm_parser() -> Any:
    """Textual's parser of terminal input, for tests that need the key a byte sequence makes."""
    from textual._xterm_parser import XTermParser

    return XTermParser()
