"""The alert engine: user rules over metric windows, with states inactive → pending → firing →
resolved, notified on the event bus, in the log and by webhook.

Evaluation reads the metrics' recent-invocation window, so it costs nothing on the invocation
path; webhooks go out from background tasks with a timeout and bounded retries, so a hanging
receiver never delays anything else.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core import __version__
from core.errors import Conflict, FieldError, InvalidInput, NotFound
from core.metrics import DURATION, STATUS, Metrics, WindowStats, percentile
from core.models import Alert, AlertRule, AlertRuleSpec, utcnow, validation_errors
from core.storage.base import Storage

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("cloudfn.alerts")
RULES = "rules"
HISTORY = "history"
META = "meta"
HISTORY_LIMIT = 1000
SEED_RULES = (
    # The seed's two rules: success rate under 90%, average duration over 5 s.
    {
        "name": "high_error_rate",
        "metric": "success_rate",
        "comparison": "<",
        "threshold": 90,
        "window": 300,
        "for": 60,
        "severity": "warning",
        "description": "Success rate under 90% over the last 5 minutes",
    },
    {
        "name": "slow_execution",
        "metric": "duration_avg",
        "comparison": ">",
        "threshold": 5000,
        "window": 300,
        "for": 60,
        "severity": "warning",
        "description": "Average duration over 5000 ms over the last 5 minutes",
    },
)
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
UNITS = {"error_rate": "%", "success_rate": "%", "duration_p95": " ms", "duration_avg": " ms", "invocation_rate": "/s"}


def metric_value(metric: str, window: WindowStats, seconds: float) -> float | None:
    """The rule's metric over a window; None when there is nothing to judge."""
    if metric == "invocation_rate":
        return window.count / seconds
    if metric in ("failures", "throttles", "timeouts", "cold_starts"):
        return float(getattr(window, metric))
    if not window.count:
        return None
    if metric in ("error_rate", "success_rate"):
        rate = 100.0 * (window.count - window.failures) / window.count
        return rate if metric == "success_rate" else 100.0 - rate
    if not window.ran:
        return None
    if metric == "duration_avg":
        return window.duration_sum / window.ran
    return percentile(sorted(r[DURATION] for r in window.items if r[STATUS] != "throttled"), 95)


NEGATED = {">": "≤", ">=": "<", "<": "≥", "<=": ">"}


def format_value(metric: str, value: float) -> str:
    """A metric's value as people read it: percentages with one decimal, milliseconds to a
    precision that fits their size, counts whole (the summary showed `53.8462`)."""
    unit = UNITS.get(metric, "")
    if unit == "%":
        return f"{value:.1f}%"
    if unit == " ms":
        digits = 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0
        return f"{value:.{digits}f} ms"
    if unit == "/s":
        return f"{value:.2f}/s"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def describe(rule: AlertRule, value: float | None, state: str) -> str:
    """The alert's one-line summary, without the rule's name (every place showing it names the
    rule already). A resolved alert says so, and states the comparison that now holds."""
    unit = UNITS.get(rule.metric, "")
    threshold = f"{rule.threshold:g}{unit}"
    shown = "no data" if value is None else format_value(rule.metric, value)
    where = f"({rule.scope}, {rule.window}s window)"
    if state == "resolved":
        return f"resolved: {rule.metric} {shown} {NEGATED[rule.comparison]} {threshold} {where}"
    return f"{rule.metric} {shown} {rule.comparison} {threshold} {where}"


def parse_rule(data: Any, partial_of: AlertRule | None = None) -> AlertRuleSpec:
    if not isinstance(data, dict):
        raise InvalidInput("alert rule", [FieldError("body", "must be an object")])
    if partial_of is not None:
        base = partial_of.model_dump(by_alias=True, include=set(AlertRuleSpec.model_fields))
        data = {**base, **{k: v for k, v in data.items() if k not in ("id", "created_at", "updated_at")}}
    errors = validation_errors(AlertRuleSpec, data)
    if errors:
        raise InvalidInput("alert rule", errors)
    return AlertRuleSpec.model_validate(data)


def check_scope(scope: str, function_exists: Callable[[str], bool]) -> None:
    """Shared with the console tests' fake platform, so both refuse the same scopes alike."""
    kind, _, target = scope.partition(":")
    if kind == "function" and not function_exists(target):
        # A 404, as everywhere a request names a function that is not there (exit 3 in the CLI).
        raise NotFound(
            f"alert rule scope {scope}: there is no function named {target!r}; create it first, "
            "or scope the rule to all or to a runtime"
        )


def rule_name_taken(name: str) -> Conflict:
    """Shared with the console tests' fake platform, as check_scope."""
    return Conflict(f"an alert rule named {name!r} already exists")


def no_rule(ref: str) -> NotFound:
    return NotFound(f"no alert rule named {ref!r}")


def alertmanager_payload(alert: Alert, rule: AlertRule) -> dict[str, Any]:
    """Shaped like Alertmanager's webhook body, so existing receivers understand it."""
    status = "firing" if alert.state == "firing" else "resolved"
    return {
        "version": "4",
        "status": status,
        "receiver": "cloudfn",
        "groupLabels": {"alertname": rule.name},
        "commonLabels": {"alertname": rule.name, "severity": rule.severity, "scope": rule.scope},
        "commonAnnotations": {"summary": alert.summary, "description": rule.description},
        "externalURL": "",
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": rule.name,
                    "severity": rule.severity,
                    "scope": rule.scope,
                    "metric": rule.metric,
                },
                "annotations": {"summary": alert.summary, "description": rule.description},
                "startsAt": (alert.fired_at or alert.since or utcnow()).isoformat(),
                "endsAt": alert.resolved_at.isoformat() if alert.resolved_at else "0001-01-01T00:00:00Z",
                "generatorURL": f"cloudfn/{__version__}",
                "fingerprint": rule.id,
            }
        ],
    }


class AlertEngine:
    def __init__(
        self,
        store: Storage,
        metrics: Metrics,
        publish: Callable[[str, dict[str, Any]], Any] | None = None,
        webhook_timeout: float = 5.0,
        webhook_retries: int = 3,
        function_exists: Callable[[str], bool] | None = None,
    ):
        self.store = store
        # A rule scoped to a function that does not exist would never fire, silently: refused.
        self.function_exists = function_exists
        self.metrics = metrics
        self.publish = publish
        self.webhook_timeout = webhook_timeout
        self.webhook_retries = webhook_retries
        self.states: dict[str, Alert] = {}
        self._pending_since: dict[str, float] = {}
        self.webhooks_sent = 0
        self.webhooks_failed = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        if not self._meta("seed_rules_installed"):
            self.store.transaction(self._install_seed_rules)  # one installer among processes sharing the store

    @staticmethod
    def _install_seed_rules(store: Storage) -> None:
        if store.get(META, "key", "seed_rules_installed") is not None:
            return
        for spec in SEED_RULES:
            if store.get(RULES, "name", spec["name"]) is None:
                rule = AlertRule(**parse_rule(dict(spec)).model_dump())
                store.insert(RULES, rule.model_dump(mode="json", by_alias=True))
        store.upsert(META, "key", {"key": "seed_rules_installed", "value": True})

    def _meta(self, key: str) -> Any:
        doc = self.store.get(META, "key", key)
        return doc["value"] if doc else None

    # -- rules ---------------------------------------------------------------------------
    def rules(self) -> list[AlertRule]:
        return sorted((AlertRule.model_validate(d) for d in self.store.all(RULES)), key=lambda r: r.name)

    def rule(self, ref: str) -> AlertRule:
        for r in self.rules():
            if ref in (r.id, r.name):
                return r
        raise no_rule(ref)

    def _check_scope(self, scope: str) -> None:
        if self.function_exists is not None:
            check_scope(scope, self.function_exists)

    def create(self, data: dict[str, Any]) -> AlertRule:
        rule = AlertRule(**parse_rule(data).model_dump())
        self._check_scope(rule.scope)

        def write(store: Storage) -> AlertRule:
            if store.get(RULES, "name", rule.name) is not None:
                raise rule_name_taken(rule.name)
            store.insert(RULES, rule.model_dump(mode="json", by_alias=True))
            return rule

        created = self.store.transaction(write)
        log.info("alert rule %s added", created.name, extra={"rule": created.name})
        return created

    def update(self, ref: str, data: dict[str, Any]) -> AlertRule:
        current = self.rule(ref)
        spec = parse_rule(data, partial_of=current)
        if spec.scope != current.scope:  # a rule whose function went since still edits
            self._check_scope(spec.scope)
        updated = AlertRule(
            **{**spec.model_dump(), "id": current.id, "created_at": current.created_at, "updated_at": utcnow()}
        )

        def write(store: Storage) -> AlertRule:
            if updated.name != current.name and store.get(RULES, "name", updated.name) is not None:
                raise rule_name_taken(updated.name)
            store.upsert(RULES, "id", updated.model_dump(mode="json", by_alias=True))
            return updated

        result = self.store.transaction(write)
        if current.name != result.name:
            self.states.pop(current.name, None)
        return result

    def delete(self, ref: str) -> AlertRule:
        rule = self.rule(ref)
        self.store.remove(RULES, "id", rule.id)
        self.states.pop(rule.name, None)
        return rule

    # -- state ---------------------------------------------------------------------------
    def current(self) -> list[Alert]:
        out = []
        for rule in self.rules():
            out.append(
                self.states.get(rule.name) or Alert(rule=rule.name, severity=rule.severity, threshold=rule.threshold)
            )
        return out

    def history(self, limit: int = 100) -> list[Alert]:
        docs = self.store.all(HISTORY)
        return [Alert.model_validate(d) for d in reversed(docs[-limit:])]

    def evaluate(self, now: float | None = None) -> list[Alert]:
        """Judge every enabled rule once; returns the transitions made."""
        now = time.time() if now is None else now
        when = datetime.fromtimestamp(now, UTC)
        changes = []
        windows: dict[tuple[str, float], WindowStats] = {}  # rules over the same window share it
        for rule in self.rules():
            if not rule.enabled:
                self.states.pop(rule.name, None)
                continue
            key = (rule.scope, rule.window)
            if key not in windows:
                windows[key] = self.metrics.window_stats(rule.scope, rule.window, now)
            value = metric_value(rule.metric, windows[key], rule.window)
            holds = value is not None and COMPARE[rule.comparison](value, rule.threshold)
            prev = self.states.get(rule.name) or Alert(rule=rule.name, severity=rule.severity, threshold=rule.threshold)
            state = prev.model_copy(update={"value": value, "severity": rule.severity, "threshold": rule.threshold})

            new_state = prev.state
            if holds:
                if prev.state in ("inactive", "resolved"):
                    new_state, state.since = "pending", when
                    self._pending_since[rule.name] = now  # float: a datetime round trip may lose a microsecond
                if new_state == "pending" and now - self._pending_since.get(rule.name, now) >= rule.for_:
                    new_state, state.since, state.fired_at, state.resolved_at = "firing", when, when, None
            elif prev.state == "pending":
                new_state, state.since = "inactive", when
            elif prev.state == "firing":
                new_state, state.since, state.resolved_at = "resolved", when, when
            state.summary = describe(rule, value, new_state)
            if new_state != prev.state:
                state.state = new_state
                changes.append(state)
                self._transition(rule, state)
            self.states[rule.name] = state
        self.metrics.keep_windows(windows)
        return changes

    def _transition(self, rule: AlertRule, alert: Alert) -> None:
        doc = alert.model_dump(mode="json")
        self.store.insert(HISTORY, doc)
        docs = self.store.all(HISTORY)
        if len(docs) > HISTORY_LIMIT * 1.1:  # trim in steps, not on every write
            self.store.replace_all(HISTORY, docs[-HISTORY_LIMIT:])
        if alert.state in ("firing", "resolved"):
            kind = "alert.fired" if alert.state == "firing" else "alert.resolved"
            level = logging.WARNING if alert.state == "firing" else logging.INFO
            log.log(
                level,
                "alert %s %s: %s",
                rule.name,
                alert.state,
                alert.summary,
                extra={"rule": rule.name, "severity": rule.severity, "state": alert.state},
            )
            if self.publish:
                self.publish(kind, doc)
            if rule.webhook:
                self._spawn(self._send_webhook(rule.webhook, alertmanager_payload(alert, rule)))

    # -- webhooks ------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (a one-shot command): nothing to deliver with
            coro.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_webhook(self, url: str, payload: dict[str, Any]) -> bool:
        # Imported here: httpx (with the click and rich its CLI pulls in) is a tenth of a
        # second of every start, and most platforms never send a webhook.
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.webhook_timeout)
        delay = 0.5
        for attempt in range(1, self.webhook_retries + 1):
            try:
                response = await self._client.post(url, json=payload)
                if response.status_code < 500:
                    self.webhooks_sent += 1
                    return True
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.webhook_retries:
                await asyncio.sleep(delay)  # back off before retrying a failing receiver
                delay *= 2
        self.webhooks_failed += 1
        log.warning("alert webhook %s failed after %d attempts: %s", url, self.webhook_retries, problem)
        return False

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                self.evaluate()
            except Exception:  # a bad evaluation must not end alerting
                log.exception("alert evaluation failed")
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
