"""The private Textual names cloudfn_tui/_textual_compat.py relies on still exist and behave as
assumed; a Textual upgrade that moves one fails here, by name (README, "Upgrading")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from textual.app import App
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import TextArea

from cloudfn_tui import _textual_compat as compat

REPO = Path(__file__).resolve().parents[2]

# One screen with a long list, as the console's main screen has; prints how often the app drew.
PAINTS = r"""
import asyncio, json
from textual.app import App
from textual.containers import Vertical
from textual.widgets import Label, ListItem, ListView, Static
from cloudfn_tui import _textual_compat as compat

class Main(compat.PaintOnceScreen):
    def compose(self):
        with Vertical():
            yield Static("hello")
            yield ListView(*[ListItem(Label(f"item {i}")) for i in range(100)])

class Hello(App):
    def get_default_screen(self):
        return Main()

async def main():
    app = Hello()
    paints = 0
    display = app._display
    def counting(*args, **kwargs):
        nonlocal paints
        paints += 1
        return display(*args, **kwargs)
    app._display = counting
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = app.screen.query_one(Static).render()
    print(json.dumps({"stock": compat.STOCK, "paints": paints, "text": str(text)}))

asyncio.run(main())
"""


def _paints(stock: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLOUDFN_STOCK_TEXTUAL": "1" if stock else ""}
    out = subprocess.run([sys.executable, "-c", PAINTS], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_overridden_screen_methods_still_exist():
    for name in ("_compositor_refresh", "_screen_resized", "_on_screen_resume"):
        assert callable(getattr(Screen, name, None)), f"textual.screen.Screen.{name} is gone"
    assert {"_compositor_refresh", "_screen_resized", "_on_screen_resume"} <= set(vars(compat._PaintOnceScreen))


def test_the_screen_is_painted_fewer_times_than_stock_and_shows_the_same():
    ours, stock = _paints(stock=False), _paints(stock=True)
    assert (ours["stock"], stock["stock"]) == (False, True)
    assert ours["text"] == stock["text"] == "hello"
    # Measured with Textual 8.2.8: 2 against 6. Equal means the override no longer does anything.
    assert ours["paints"] < stock["paints"], (ours, stock)


async def test_the_flags_the_first_paint_clears_are_there():
    async with App().run_test() as pilot:
        screen = pilot.app.screen
        assert isinstance(screen._layout_required, bool)
        assert isinstance(screen._repaint_required, bool)
        assert all(isinstance(w._repaint_required, bool) for w in screen._compositor.widgets)
        assert isinstance(Widget()._repaint_required, bool)


@pytest.mark.parametrize("name", ["nord", "textual-light"])
async def test_start_with_theme_gives_the_theme_colours_before_the_app_runs(name):
    app = App()
    compat.start_with_theme(app, name)
    assert app.theme == name
    theme = app.available_themes[name]
    assert app.stylesheet._variables["primary"].lower() == theme.primary.lower()
    async with app.run_test():
        assert app.has_class(f"-theme-{name}")
        assert app.has_class("-dark-mode" if theme.dark else "-light-mode")


async def test_the_highlight_query_and_the_area_theme_are_where_we_read_them():
    class Editor(App):
        def compose(self):
            yield TextArea.code_editor("x = 1\n", language="python")

    async with Editor().run_test() as pilot:
        area = pilot.app.query_one(TextArea)
        styled, source = compat.styled_highlight_source(area, "python")
        assert "keyword" in styled and "string" in styled
        assert source and "@keyword" in source and "@string" in source


def test_the_xterm_parser_makes_the_keys_the_keymap_binds_for_escape_digit():
    from cloudfn_tui.keymap import ESC_DIGIT_KEYS

    keys = [list(compat.xterm_parser().feed(f"\x1b{i}"))[0].key for i in range(1, 9)]
    assert tuple(keys) == ESC_DIGIT_KEYS


def test_the_stock_switch_turns_every_override_off():
    code = (
        "from cloudfn_tui import _textual_compat as c; from textual.screen import Screen; "
        "print(c.STOCK, c.PaintOnceScreen is Screen, c.styled_highlight_source(None, 'python'))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLOUDFN_STOCK_TEXTUAL": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[0] == "True True (set(), None)", out.stderr
