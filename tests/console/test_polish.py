"""Issue 13 items 8-10: the console's rough edges (help at 80x24, the palette, editor basics,
small things), each checked on what the user sees or gets."""

from __future__ import annotations

import re

import pytest
from textual.command import CommandList, CommandPalette
from textual.widgets import DataTable

from cloudfn_tui.screens.modals import HelpScreen
from console_waits import screen_text, settle, until

SIZES = [(80, 24), (120, 40)]
BORDERS = r"[\s█▁▂▃▄▅▆▇▔▕▏│]+"


def shown(lines: list[str], text: str) -> bool:
    """`text` is on the screen whole, maybe wrapped over lines (and a dialog's borders)."""
    pattern = BORDERS.join(re.escape(word) for word in text.split())
    return re.search(pattern, "\n".join(lines)) is not None


@pytest.mark.parametrize("size", SIZES)
async def test_help_rows_fit_with_descriptions_uncut_and_short_key_names(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        await pilot.pause()
        lines = screen_text(app)
        rows = app.screen.rows
        header = next(line for line in lines if " key " in line and "does" in line)
        start = header.index("does")
        end = header.index("  where") if "  where" in header else len(header)
        column = [line[start:end] for line in lines]  # the descriptions, as wrapped
        for _, desc, _, _ in rows[:6]:
            assert shown(column, desc), f"cut: {desc!r}\n" + "\n".join(lines)
        assert not any("…" in line for line in lines)
        # the next-pane row, scrolled to: its ctrl+] as the footer would say it
        table = app.screen.query_one("#help-table", DataTable)
        index = next(i for i, r in enumerate(rows) if r[3] == "main.next_pane")
        table.move_cursor(row=index)
        await pilot.pause()
        lines = screen_text(app)
        assert any("] / ctrl+]" in line and "move to the next pane" in line for line in lines)
        assert not any("square_bracket" in line for line in lines)


@pytest.mark.parametrize("size", SIZES)
async def test_palette_entries_are_unique_with_readable_keys(fake, make_app, size):
    app = make_app(fake)
    async with app.run_test(size=size) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, CommandPalette), "palette")
        options = app.screen.query_one(CommandList)
        await until(pilot, lambda: options.option_count > 20, "the entries")
        await pilot.pause()
        prompts = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        titles = [p.split("\n")[0] for p in prompts]
        assert len(titles) == len(set(titles)), sorted(t for t in titles if titles.count(t) > 1)
        assert titles.count("Theme") == 1 and titles.count("Quit") == 1
        assert "Metrics" in titles and "Metrics pane" in titles
        help_entry = prompts[titles.index("Help")]
        assert help_entry.endswith("· ?/F1")
        assert not any(re.search(r"question_mark|square_bracket|\[\w+(,\w+)*\]", p) for p in prompts), prompts
