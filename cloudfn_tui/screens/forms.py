"""Forms: create a function (from a bundled template), configure one, edit an alert rule."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Input, Label, Select, Static, Switch, TextArea

from cloudfn_tui.keymap import Command, bindings
from cloudfn_tui.screens.modals import Dialog
from core.bundle import Bundle
from core.envtext import parse_env
from core.errors import InvalidInput
from core.models import ALERT_METRICS, RUNTIMES, AlertRule, Function, FunctionPatch, parse_patch, validation_errors

FORM_COMMANDS = [
    Command("form.submit", "ctrl+s", "submit", "Save", "save the form"),
    Command("form.cancel", "escape", "dismiss_none", "Cancel", palette=False),
]

STARTER = {
    "python": 'def handler(event, context):\n    return {"hello": event.get("name", "world")}\n',
    "nodejs": "async function handler(event, context) {\n  return { hello: event.name || 'world' };\n}\n",
    "go": "func handler(event interface{}, context map[string]string) interface{} {\n"
    '\treturn map[string]interface{}{"hello": "world"}\n}\n',
}


class Form(Dialog):
    COMMANDS_TABLE = FORM_COMMANDS
    BINDINGS = bindings(FORM_COMMANDS)

    def show_error(self, message: str) -> None:
        label = self.query_one("#form-error", Label)
        label.update(Text(message, style="bold red"))
        label.display = bool(message)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "submit":
            self.action_submit()
        else:
            self.dismiss(None)

    def buttons(self) -> ComposeResult:
        yield Label("", id="form-error")
        with Horizontal(classes="buttons"):
            yield Button("Save (ctrl+s)", variant="primary", id="submit")
            yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#form-error", Label).display = False

    def action_submit(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class CreateFunctionScreen(Form):
    """Dismisses with a create body: name, runtime, handler, code (+ template's settings)."""

    def __init__(self, templates: list[Bundle]) -> None:
        super().__init__()
        self.templates = templates

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label(Text("New function", style="bold"))
            yield Label("name (letters, digits, spaces, - _ .)")
            yield Input(placeholder="my-function", id="new-name")
            # Side by side: the template's description below them then still fits at 80x24.
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("runtime")
                    yield Select([(r, r) for r in RUNTIMES], value="python", allow_blank=False, id="new-runtime")
                with Vertical():
                    yield Label("template")
                    yield Select(self._template_options("python"), value="", allow_blank=False, id="new-template")
            yield Static(self._describe(""), id="template-description", classes="dim")
            yield from self.buttons()

    def _template_options(self, runtime: str) -> list[tuple[str, str]]:
        # Names only: a description in the list was cut at 40 characters, then wrapped by the
        # overlay. The chosen one's description is shown whole under the list.
        opts = [("blank starter", "")]
        for b in self.templates:
            if b.spec.runtime == runtime:
                opts.append((b.spec.name, b.spec.name))
        return opts

    def _describe(self, template: Any) -> str:
        for b in self.templates:
            if b.spec.name == template:
                return b.spec.description or "(no description)"
        return "a minimal handler that says hello: a place to start"

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#new-name", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "new-template":
            self.query_one("#template-description", Static).update(self._describe(event.value))
        if event.select.id == "new-runtime":
            tpl = self.query_one("#new-template", Select)
            tpl.set_options(self._template_options(str(event.value)))
            tpl.value = ""

    def action_submit(self) -> None:
        name = self.query_one("#new-name", Input).value.strip()
        runtime = str(self.query_one("#new-runtime", Select).value)
        template = self.query_one("#new-template", Select).value
        if not name:
            self.show_error("name: is required")
            return
        body: dict[str, Any] = {"name": name, "runtime": runtime, "handler": "handler", "code": STARTER[runtime]}
        for b in self.templates:
            if b.spec.name == template:
                spec = b.spec.model_dump()
                spec.update(name=name)
                body = spec
                body["_event"] = b.event
        self.dismiss(body)


def _env_text(env: dict[str, str]) -> str:
    return "\n".join(f"{k}={v}" for k, v in env.items())


def _credential_hint(env: dict[str, str]) -> str:
    from core.secrets import CREDENTIAL_KEY_RE

    keys = [k for k in env if CREDENTIAL_KEY_RE.search(k)]
    if not keys:
        return ""
    what = "looks like a credential" if len(keys) == 1 else "look like credentials"
    return f"⚠ {', '.join(keys)} {what}: stored and shown in plain text here; set a secret (s) and map it below instead"


class ConfigureScreen(Form):
    """Dismisses with a partial update of the settings that changed."""

    DEFAULT_CSS = """
    #cfg-secret-env {
        height: 4;
    }
    #cfg-dependencies {
        height: 6;
    }
    """

    def __init__(self, fn: Function) -> None:
        super().__init__()
        self.fn = fn

    def compose(self) -> ComposeResult:
        fn = self.fn
        with VerticalScroll(classes="dialog form wide"):
            yield Label(Text(f"Configure {fn.name} (v{fn.version})", style="bold"))
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("handler")
                    yield Input(fn.handler, id="cfg-handler")
                with Vertical():
                    yield Label("timeout (s, 1-900)")
                    yield Input(str(fn.timeout), id="cfg-timeout", type="integer")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("memory (MB, 64-8192)")
                    yield Input(str(fn.memory), id="cfg-memory", type="integer")
                with Vertical():
                    yield Label("max concurrency (empty: platform limit)")
                    yield Input(
                        "" if fn.max_concurrency is None else str(fn.max_concurrency),
                        id="cfg-concurrency",
                        type="integer",
                    )
            with Horizontal(classes="row switch-row"):
                yield Label("network access ")
                yield Switch(fn.network, id="cfg-network")
            yield Label("description")
            yield Input(fn.description, id="cfg-description")
            yield Label("environment variables (KEY=value, one a line; shown in plain text)")
            yield TextArea(_env_text(fn.environment), id="cfg-env", soft_wrap=False)
            yield Static(_credential_hint(fn.environment), id="cfg-env-hint", classes="dim")
            # secrets (issue 17): names only; values are set on the secrets screen (s)
            yield Label("secrets (names, comma-separated: files at /run/secrets/NAME)")
            yield Input(", ".join(fn.secrets), id="cfg-secrets")
            yield Label("secret variables (ENV=secret-name, one a line)")
            yield TextArea(_env_text(fn.secret_env), id="cfg-secret-env", soft_wrap=False)
            # -- triggers (issue 16) --
            with Horizontal(classes="row switch-row"):
                yield Label("public endpoint (no token) ")
                yield Switch(fn.http.public, id="cfg-public")
            with Horizontal(classes="row"):
                rate = fn.rate_limit
                with Vertical():
                    yield Label("rate limit (calls/s; empty: none)")
                    yield Input("" if rate is None else f"{rate.requests_per_second:g}", id="cfg-rate", type="number")
                with Vertical():
                    yield Label("burst (empty: the rate)")
                    yield Input("" if rate is None else str(rate.burst), id="cfg-burst", type="integer")
            yield Label(
                "schedules (YAML list: - every: 30s / - cron: '*/5 * * * *', event:, timezone:, overlap:, "
                "catch_up:, enabled:)"
            )
            yield TextArea(schedules_text(fn), id="cfg-schedules", soft_wrap=False)
            yield from _async_fields(fn)  # asynchronous invocation (issue 16)
            yield from _dependencies_fields(fn)  # dependencies (issue 15)
            yield from self.buttons()

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one("#cfg-handler", Input).focus()
        self.query_one("#cfg-env-hint", Static).display = bool(_credential_hint(self.fn.environment))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "cfg-env":
            try:
                hint = _credential_hint(parse_env(event.text_area.text.splitlines()))
            except InvalidInput:
                hint = ""
            box = self.query_one("#cfg-env-hint", Static)
            box.update(hint)
            box.display = bool(hint)

    def action_submit(self) -> None:
        fn = self.fn
        q = lambda i: self.query_one(i, Input).value.strip()  # noqa: E731
        try:
            env = parse_env(self.query_one("#cfg-env", TextArea).text.splitlines(), "environment", numbered=True)
            secret_env = parse_env(
                self.query_one("#cfg-secret-env", TextArea).text.splitlines(),
                "secret variables",
                numbered=True,
                form="ENV=secret name",
            )
        except InvalidInput as exc:
            self.show_error("; ".join(map(str, exc.errors)))
            return
        values: dict[str, Any] = {
            "handler": q("#cfg-handler"),
            "description": self.query_one("#cfg-description", Input).value,
            "network": self.query_one("#cfg-network", Switch).value,
            "environment": env,
            "secrets": [n.strip() for n in q("#cfg-secrets").split(",") if n.strip()],
            "secret_env": {k.strip(): v.strip() for k, v in secret_env.items()},
        }
        problems = []
        for key, ident in (
            ("timeout", "#cfg-timeout"),
            ("memory", "#cfg-memory"),
            ("max_concurrency", "#cfg-concurrency"),
        ):
            raw = q(ident)
            if not raw:
                if key == "max_concurrency":
                    values[key] = None
                    continue
                problems.append(f"{key}: is required")
                continue
            try:
                values[key] = int(raw)
            except ValueError:
                problems.append(f"{key}: must be a whole number")
        trigger_values, trigger_problems = self._triggers()
        values.update(trigger_values)
        problems += trigger_problems
        values["async"] = _async_values(self, problems)
        if DEPENDENCY_MANIFESTS.get(fn.runtime):
            values["dependencies"] = self.query_one("#cfg-dependencies", TextArea).text
        if problems:
            self.show_error("; ".join(problems))
            return
        current = fn.model_dump(mode="json")
        patch = {k: v for k, v in values.items() if current.get(k) != v}
        self.dismiss(patch)

    def _triggers(self) -> tuple[dict[str, Any], list[str]]:
        """http, rate_limit and schedules from the form, checked as the platform will check them
        (every bad field named, before anything is sent)."""
        values: dict[str, Any] = {"http": {"public": self.query_one("#cfg-public", Switch).value}}
        problems: list[str] = []
        rate, burst = (self.query_one(i, Input).value.strip() for i in ("#cfg-rate", "#cfg-burst"))
        if rate:
            limit: dict[str, Any] = {}
            try:
                limit["requests_per_second"] = float(rate)
            except ValueError:
                problems.append(f"rate_limit.requests_per_second: must be a number (got {rate!r})")
            if burst:
                try:
                    limit["burst"] = int(burst)
                except ValueError:
                    problems.append(f"rate_limit.burst: must be a whole number (got {burst!r})")
            values["rate_limit"] = limit
        elif burst:
            problems.append("burst: set a rate limit too, or clear it")
        else:
            values["rate_limit"] = None
        try:
            schedules = parse_schedules(self.query_one("#cfg-schedules", TextArea).text)
        except ValueError as exc:
            problems.append(str(exc))
        else:
            values["schedules"] = schedules
        given = {k: v for k, v in values.items() if v is not None}
        problems += [str(e) for e in validation_errors(FunctionPatch, given)]
        if problems:
            return {}, problems
        patch = parse_patch(given)
        if values["rate_limit"] is not None and patch.rate_limit is not None:
            values["rate_limit"] = patch.rate_limit.model_dump()
        values["schedules"] = [s.model_dump() for s in patch.schedules or []]
        return values, []


# dependencies (issue 15): the manifest's text, for the runtimes that install from one
DEPENDENCY_MANIFESTS = {"python": "requirements.txt: one package a line", "nodejs": "package.json text"}


def _dependencies_fields(fn: Function) -> ComposeResult:
    """The manifest as text; saving a change installs it first (the build log shows the progress)
    and the new version becomes current only once it is installed. Go builds from go.mod among
    the function's files instead."""
    manifest = DEPENDENCY_MANIFESTS.get(fn.runtime)
    if not manifest:
        return
    yield Label(f"dependencies ({manifest}; installed when saved)")
    yield TextArea(fn.dependencies, id="cfg-dependencies", soft_wrap=False)


def schedules_text(fn: Function) -> str:
    if not fn.schedules:
        return ""
    import yaml

    docs = [s.model_dump(exclude_defaults=True) for s in fn.schedules]
    return yaml.safe_dump(docs, sort_keys=False, allow_unicode=True, default_flow_style=False)


def parse_schedules(text: str) -> list[Any]:
    import yaml

    if not text.strip():
        return []
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"schedules: not valid YAML{where}: write a list such as '- every: 30s'") from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ValueError("schedules: must be a list such as '- every: 30s' or '- cron: \"0 3 * * *\"'")
    return data


# -- asynchronous invocation (issue 16) -----------------------------------------------------------
_ASYNC_NUMBERS = (
    ("max_retries", "#cfg-async-retries", int),
    ("retry_backoff", "#cfg-async-backoff", float),
    ("max_event_age", "#cfg-async-age", int),
)


def _async_fields(fn: Function) -> ComposeResult:
    a = fn.async_
    yield Label(Text("asynchronous invocation", style="bold"))
    with Horizontal(classes="row"):
        with Vertical():
            yield Label("retries (0-5)")
            yield Input(str(a.max_retries), id="cfg-async-retries", type="integer")
        with Vertical():
            yield Label("first backoff (s)")
            yield Input(f"{a.retry_backoff:g}", id="cfg-async-backoff", type="number")
        with Vertical():
            yield Label("max event age (s)")
            yield Input(str(a.max_event_age), id="cfg-async-age", type="integer")
    with Horizontal(classes="row"):
        with Vertical():
            yield Label("on success (function or URL)")
            yield Input(a.on_success or "", id="cfg-async-success")
        with Vertical():
            yield Label("on failure (function or URL)")
            yield Input(a.on_failure or "", id="cfg-async-failure")


def _async_values(form: Form, problems: list[str]) -> dict[str, Any]:
    """The async block as the form holds it; the platform validates the ranges and names."""
    out: dict[str, Any] = {}
    for key, ident, kind in _ASYNC_NUMBERS:
        raw = form.query_one(ident, Input).value.strip()
        try:
            out[key] = kind(raw)
        except ValueError:
            problems.append(f"async.{key}: must be a number")
    for key, ident in (("on_success", "#cfg-async-success"), ("on_failure", "#cfg-async-failure")):
        out[key] = form.query_one(ident, Input).value.strip() or None
    return out


class AlertRuleScreen(Form):
    """Dismisses with an alert-rule body (create or update)."""

    def __init__(self, rule: AlertRule | None, functions: list[str]) -> None:
        super().__init__()
        self.rule = rule
        self.functions = functions

    def compose(self) -> ComposeResult:
        r = self.rule
        scopes = ["all", *(f"runtime:{x}" for x in RUNTIMES), *(f"function:{f}" for f in self.functions)]
        if r and r.scope not in scopes:
            scopes.append(r.scope)
        with VerticalScroll(classes="dialog form wide"):
            yield Label(Text("Edit alert rule" if r else "New alert rule", style="bold"))
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("name")
                    yield Input(r.name if r else "", id="rule-name", disabled=r is not None)
                with Vertical():
                    yield Label("metric")
                    yield Select(
                        [(m, m) for m in ALERT_METRICS],
                        value=r.metric if r else "error_rate",
                        allow_blank=False,
                        id="rule-metric",
                    )
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("comparison")
                    yield Select(
                        [(c, c) for c in (">", ">=", "<", "<=")],
                        value=r.comparison if r else ">",
                        allow_blank=False,
                        id="rule-comparison",
                    )
                with Vertical():
                    yield Label("threshold")
                    yield Input(f"{r.threshold:g}" if r else "10", id="rule-threshold", type="number")
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("scope")
                    yield Select(
                        [(s, s) for s in scopes], value=r.scope if r else "all", allow_blank=False, id="rule-scope"
                    )
                with Vertical():
                    yield Label("severity")
                    yield Select(
                        [(s, s) for s in ("info", "warning", "critical")],
                        value=r.severity if r else "warning",
                        allow_blank=False,
                        id="rule-severity",
                    )
            with Horizontal(classes="row"):
                with Vertical():
                    yield Label("window (s)")
                    yield Input(str(r.window if r else 300), id="rule-window", type="integer")
                with Vertical():
                    yield Label("for (s)")
                    yield Input(str(r.for_ if r else 0), id="rule-for", type="integer")
            with Horizontal(classes="row switch-row"):
                yield Label("enabled ")
                yield Switch(r.enabled if r else True, id="rule-enabled")
            yield from self.buttons()

    def action_submit(self) -> None:
        q = lambda i: self.query_one(i, Input).value.strip()  # noqa: E731
        s = lambda i: self.query_one(i, Select).value  # noqa: E731
        try:
            body = {
                "name": q("#rule-name"),
                "metric": s("#rule-metric"),
                "comparison": s("#rule-comparison"),
                "threshold": float(q("#rule-threshold")),
                "scope": s("#rule-scope"),
                "severity": s("#rule-severity"),
                "window": int(q("#rule-window")),
                "for": int(q("#rule-for")),
                "enabled": self.query_one("#rule-enabled", Switch).value,
            }
        except ValueError:
            self.show_error("threshold, window and for must be numbers")
            return
        if not body["name"]:
            self.show_error("name: is required")
            return
        self.dismiss(body)
