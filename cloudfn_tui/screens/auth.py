"""The server refused the token: a screen that says so and how to fix it, in place of an empty
console reconnecting forever (a 401 does not heal by retrying with the same token)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from cloudfn_tui.keymap import Command, bindings

AUTH_COMMANDS = [
    Command("auth.retry", "r", "retry", "Retry", "try the same token again (after the server's token changed back)"),
    Command("auth.quit", "q,escape", "app.quit", "Quit", "leave the console"),
]

if TYPE_CHECKING:
    from cloudfn_tui.app import CloudfnApp


def fixes(url: str, config_file: str) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row("--token", f"cloudfn --remote {url} --token TOKEN")
    table.add_row("CLOUDFN_TOKEN", f"CLOUDFN_TOKEN=TOKEN cloudfn --remote {url}")
    table.add_row(
        "the token file",
        "the server keeps its token in <its data dir>/server.token (0600), made at its "
        "first start, unless it was started with --token or CLOUDFN_TOKEN: use that value",
    )
    table.add_row(
        "a named remote",
        f"in {config_file}:\n"
        f'remotes: {{prod: {{url: "{url}", token_file: ~/.config/cloudfn/prod.token}}}}\n'
        "then: cloudfn --remote prod",
    )
    return table


class AuthScreen(Screen):
    app: CloudfnApp  # the console's own, with its platform: for the type checker

    COMMANDS_TABLE = AUTH_COMMANDS
    BINDINGS = bindings(AUTH_COMMANDS)
    DEFAULT_CSS = """
    AuthScreen {
        align: center middle;
    }
    AuthScreen > Vertical {
        width: 100;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $error;
        padding: 0 1;
        overflow-y: auto;
    }
    AuthScreen Static {
        margin-top: 1;
    }
    """

    def __init__(self, url: str, reason: str, token_sent: bool, config_file: str) -> None:
        super().__init__()
        self.url = url
        self.reason = reason
        self.token_sent = token_sent
        self.config_file = config_file

    def compose(self) -> ComposeResult:
        what = (
            "the token this console sent is not the server's"
            if self.token_sent
            else "this console sent no token, and the server asks for one"
        )
        with Vertical():
            yield Static(Text("The cloudfn server refused this console (401 unauthorized)", style="bold red"))
            head = Table.grid(padding=(0, 2))
            head.add_column(style="bold")
            head.add_column()
            head.add_row("server", self.url)
            head.add_row("what was wrong", what)
            yield Static(head, id="auth-what")
            yield Static(Text("How to fix it: give the console the server's token, one of these ways", style="bold"))
            yield Static(fixes(self.url, self.config_file), id="auth-fixes")
            yield Static(Text("r retry · q quit", style="dim"), id="auth-keys")

    def action_retry(self) -> None:
        self.app.retry_auth()
