"""The Textual console. For now: the function list over PlatformAPI (the full console is issue 6)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Footer, Header

from core.api import PlatformAPI


class CloudfnApp(App):
    TITLE = "cloudfn"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("r", "refresh", "Refresh", id="app.refresh"),
    ]

    def __init__(self, platform: PlatformAPI):
        super().__init__()
        self.platform = platform

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="functions", cursor_type="row")
        yield Footer()

    async def on_mount(self) -> None:
        table = self.query_one("#functions", DataTable)
        table.add_columns("name", "runtime", "version", "description")
        await self.action_refresh()

    async def action_refresh(self) -> None:
        table = self.query_one("#functions", DataTable)
        table.clear()
        for fn in await self.platform.list_functions():
            table.add_row(fn.name, fn.runtime, str(fn.version), fn.description, key=fn.id)

    async def on_unmount(self) -> None:
        await self.platform.close()
