"""Small dialogs: confirm, prompt for a line of text, and the key help."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, Static

from cloudfn_tui.keymap import Command, bindings, display_keys

DIALOG_COMMANDS = [
    Command("dialog.close", "escape", "dismiss_none", "Close", palette=False),
]


class Dialog(ModalScreen):
    BINDINGS = bindings(DIALOG_COMMANDS)
    COMMANDS_TABLE = DIALOG_COMMANDS
    # Here, not in app.tcss: parsed when the first dialog opens, not while the console starts.
    DEFAULT_CSS = """
    .dialog {
        width: 64;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    .dialog.wide {
        width: 110;
    }
    .dialog.tall {
        height: 90%;
    }
    .dialog.help {
        width: 110;
        height: 90%;
    }
    .dialog.confirm {
        border: thick $error;
    }
    .dialog.quit {
        width: 76;  /* four buttons in a row */
    }
    .dialog.quit Static {
        margin-top: 1;
    }
    .dialog Label {
        margin-top: 1;
    }
    .dialog .buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    .dialog .buttons Button {
        margin-left: 1;
    }
    .dialog .row {
        height: auto;
    }
    .dialog .row > Vertical {
        height: auto;
        width: 1fr;
        margin-right: 1;
    }
    .dialog .switch-row {
        height: 3;
    }
    .dialog .switch-row Label {
        margin-top: 1;
    }
    #cfg-env, #cfg-schedules {
        height: 6;
    }
    #help-table {
        height: 1fr;
    }
    #versions-table, #saved-table {
        width: 40;
        height: 1fr;
    }
    #versions-diff, #saved-preview, #invocation-body {
        width: 1fr;
        height: 1fr;
        padding: 0 1;
    }
    #form-error {
        height: auto;
    }
    """

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ConfirmScreen(Dialog):
    """y confirms, n or esc cancels. Dismisses with True or False."""

    COMMANDS_TABLE = [
        Command("confirm.yes", "y", "yes", "Yes", palette=False),
        Command("confirm.no", "n,escape", "no", "No", palette=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, question: str, detail: str = "", yes: str = "Delete") -> None:
        super().__init__()
        self.question = question
        self.detail = detail
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm"):
            yield Label(Text(self.question, style="bold"), id="confirm-question")
            if self.detail:
                yield Label(self.detail, classes="dim")
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", variant="error", id="yes")
                yield Button("Cancel (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def action_yes(self) -> None:
        self.dismiss(True)

    def action_no(self) -> None:
        self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class QuitScreen(Dialog):
    """Quitting with unsaved code. Dismisses with "save", "keep", "discard" or None (cancel)."""

    COMMANDS_TABLE = [
        Command(
            "quit.save", "s", "choose('save')", "Save", "save every draft as a new version, then quit", palette=False
        ),
        Command(
            "quit.keep", "k", "choose('keep')", "Keep", "keep the drafts for the next start, then quit", palette=False
        ),
        Command("quit.discard", "d", "choose('discard')", "Discard", "drop the drafts, then quit", palette=False),
        Command("quit.cancel", "escape,c", "choose('')", "Cancel", "back to the console", palette=False),
    ]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def compose(self) -> ComposeResult:
        listed = ", ".join(self.names[:5]) + (f" and {len(self.names) - 5} more" if len(self.names) > 5 else "")
        with Vertical(classes="dialog confirm quit"):
            yield Static(Text(f"Unsaved code in {listed}", style="bold"), id="quit-question")
            yield Static("Save it as new versions, keep it as drafts for the next start, or discard it?", classes="dim")
            with Horizontal(classes="buttons"):
                yield Button("Save (s)", variant="primary", id="save")
                yield Button("Keep draft (k)", id="keep")
                yield Button("Discard (d)", variant="error", id="discard")
                yield Button("Cancel (c)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#keep", Button).focus()  # the choice that loses nothing

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)


class PromptScreen(Dialog):
    """One line of text; dismisses with the text or None."""

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog prompt"):
            yield Label(Text(self.title_text, style="bold"))
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Label("enter to accept · esc to cancel", classes="dim")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class HelpScreen(Dialog):
    """Every key of the screen it was opened on, with its binding id (for the keymap)."""

    COMMANDS_TABLE = [Command("help.close", "escape,question_mark,f1,q", "dismiss_none", "Close", palette=False)]
    BINDINGS = bindings(COMMANDS_TABLE)

    def __init__(self, rows: list[tuple[str, str, str, str]], title: str) -> None:
        super().__init__()
        self.rows = rows
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help"):
            yield Label(Text(self.title_text, style="bold"))
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Label("Remap a key in the config: console: {keymap: {<id>: <keys>}} · esc closes", classes="dim")

    def on_mount(self) -> None:
        table = self.query_one("#help-table", DataTable)
        keys = [display_keys(k) for k, _, _, _ in self.rows]
        key_width = min(max(map(len, keys), default=3), 24)
        # The dialog's inside: its border and padding, the table's scrollbar, one cell of
        # padding each side of every column.
        inside = min(110, self.app.size.width) - 4 - 2
        wide = inside >= 100
        if wide:
            id_width = max((len(r[3]) for r in self.rows), default=2)
            where_width = max((len(r[2]) for r in self.rows), default=5)
            does_width = inside - key_width - id_width - where_width - 8
            table.add_column("key", width=key_width)
            table.add_column("id (for the keymap)", width=id_width)
            table.add_column("does", width=does_width)
            table.add_column("where", width=where_width)
        else:
            # At 80 columns four columns cut every description: the id and the place go under
            # it, and it wraps rather than being cut.
            does_width = inside - key_width - 4
            table.add_column("key", width=key_width)
            table.add_column("does · where · id (for the keymap)", width=does_width)
        for shown, (_, desc, where, ident) in zip(keys, self.rows, strict=True):  # one key per row
            key = Text(shown, style="bold")
            if wide:
                table.add_row(key, Text(ident, style="dim"), Text(desc), Text(where), height=None)
            else:
                cell = Text(desc)
                cell.append(f"\n{where} · {ident}", style="dim")
                table.add_row(key, cell, height=None)
        table.focus()
