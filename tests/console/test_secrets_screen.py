"""The secrets screen at 80x24 (Pilot, in-memory platform): reached by `s` and `:secrets`; the
value is typed into a masked input, set, and never shown; delete asks first. The configure form
marks credential-like environment keys and edits the secret fields."""

from __future__ import annotations

from console_waits import settle, until
from textual.widgets import Input, Static

from cloudfn_tui.screens.forms import ConfigureScreen
from cloudfn_tui.screens.modals import ConfirmScreen
from cloudfn_tui.screens.secrets import SecretsScreen

VALUE = "Console-Typed-Value-55"


def screen_text(app) -> str:
    return "\n".join(str(w.render()) for w in app.screen.query("Static, Label, DataTable"))


async def test_set_a_secret_masked_then_delete_it(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen))
        await pilot.press("n")
        assert app.focused.id == "secret-name"
        await pilot.press(*"db-pw", "enter")
        assert app.focused.id == "secret-value" and app.focused.password  # typed hidden
        await pilot.press(*VALUE)
        await pilot.press("enter")
        await until(pilot, lambda: [s.name for s in fake.__dict__.get("secrets", {}).values()] == ["db-pw"])
        await until(pilot, lambda: "set db-pw" in str(app.screen.query_one("#secret-note", Static).render()))
        assert app.screen.query_one("#secret-value", Input).value == ""
        table = app.screen.query_one("#secrets-table")
        await until(pilot, lambda: table.row_count == 1)
        assert VALUE not in screen_text(app) and VALUE not in str(table.get_row_at(0))
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: not fake.secrets)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, SecretsScreen))


async def test_bad_name_is_said_and_colon_secrets_opens_it(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("colon", *"secrets", "enter")
        await until(pilot, lambda: isinstance(app.screen, SecretsScreen))
        await pilot.press("n", *"../up", "enter")
        note = str(app.screen.query_one("#secret-note", Static).render())
        assert "name:" in note and "letters" in note
        assert app.focused.id == "secret-name"


async def test_configure_marks_credential_keys_and_edits_secret_fields(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, app)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen))
        hint = app.screen.query_one("#cfg-env-hint", Static)
        area = app.screen.query_one("#cfg-env")
        area.text = "GREETING=hi\nAPI_TOKEN=abc"
        await until(pilot, lambda: "API_TOKEN looks like a credential" in str(hint.render()))
        assert hint.display
        app.screen.query_one("#cfg-secrets", Input).value = "db-pw, api"
        app.screen.query_one("#cfg-secret-env").text = "DB_PW=db-pw"
        results = []
        app.screen.dismiss = results.append
        app.screen.action_submit()
        assert results[0]["secrets"] == ["db-pw", "api"] and results[0]["secret_env"] == {"DB_PW": "db-pw"}
