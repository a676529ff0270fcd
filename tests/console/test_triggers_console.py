"""The console's view of triggers (issue 16): the triggers dialog, and the configure form's
public switch, rate limit and schedules, with the platform's named errors shown in the form."""

from __future__ import annotations

from console_waits import settle, until
from test_flows import select
from textual.widgets import Input, Static, Switch

from cloudfn_tui.screens.forms import ConfigureScreen
from cloudfn_tui.screens.triggers import TriggersScreen


async def test_configure_edits_public_rate_limit_and_schedules(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await select(pilot, app, "hello-python")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure")
        app.screen.query_one("#cfg-public", Switch).value = True
        app.screen.query_one("#cfg-rate", Input).value = "2.5"
        app.screen.query_one("#cfg-schedules").load_text(
            "- every: 30s\n- cron: '0 3 * * *'\n  timezone: Asia/Tokyo\n  event: {job: nightly}\n"
        )
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        fn = await fake.get_function("hello-python")
        assert fn.http.public and fn.rate_limit.requests_per_second == 2.5 and fn.rate_limit.burst == 3
        assert [s.describe() for s in fn.schedules] == ["every 30s", "cron 0 3 * * * (Asia/Tokyo)"]
        assert fn.schedules[1].event == {"job": "nightly"} and fn.version == 2
        # Unchanged settings send nothing: saving again is not a new version.
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure again")
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert (await fake.get_function("hello-python")).version == 2


async def test_configure_names_bad_trigger_fields_and_keeps_the_form(fake, make_app):
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await select(pilot, app, "hello-python")
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure")
        app.screen.query_one("#cfg-rate", Input).value = "0"
        app.screen.query_one("#cfg-schedules").load_text("- every: 100ms\n- cron: '* * *'\n- timezone: Mars/Base\n")
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert isinstance(app.screen, ConfigureScreen)
        error = str(app.screen.query_one("#form-error").render())
        for field in ("rate_limit.requests_per_second", "schedules.0.every", "schedules.1.cron", "schedules.2"):
            assert field in error, error
        app.screen.query_one("#cfg-schedules").load_text("every: [unclosed")
        app.screen.query_one("#cfg-rate", Input).value = ""
        await pilot.press("ctrl+s")
        await settle(pilot, app)
        assert "not valid YAML" in str(app.screen.query_one("#form-error").render())
        assert (await fake.get_function("hello-python")).version == 1


async def test_triggers_dialog_shows_endpoint_schedules_and_rate_limit(fake, make_app):
    await fake.update_function(
        "hello-python",
        {
            "rate_limit": {"requests_per_second": 5},
            "schedules": [{"every": "1h"}, {"cron": "@daily", "enabled": False}],
            "async": {"max_retries": 4, "on_failure": "fail-python"},
        },
    )
    app = make_app(fake)
    async with app.run_test(size=(80, 24)) as pilot:
        await select(pilot, app, "hello-python")
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, TriggersScreen), "triggers")
        text = str(app.screen.query_one("#triggers-text", Static).content)
        assert "/fn/hello-python" in text and "cloudfn serve" in text
        assert "5 per second, burst 5" in text and "every 1h  next" in text and "(disabled)" in text
        assert "4 retries" in text and "on failure fail-python" in text
        await pilot.press("c")  # straight to the form
        await until(pilot, lambda: isinstance(app.screen, ConfigureScreen), "configure from triggers")
