"""The console opens on the embedded platform and shows the functions (Pilot)."""

from __future__ import annotations

from cloudfn_tui.app import CloudfnApp
from cloudfn_tui.widgets.function_list import FunctionList
from core.local import LocalPlatform


async def test_the_console_lists_the_bundled_examples_and_quits(config):
    platform = LocalPlatform(config)
    app = CloudfnApp(platform)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one("#functions", FunctionList)
        names = [table.get_row_at(i)[0] for i in range(table.row_count)]
        assert {"hello-python", "hello-nodejs", "hello-go"} <= set(names)
        await pilot.press("q")
    # Quitting released the data directory.
    LocalPlatform(config).lock.release()
