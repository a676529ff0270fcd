"""Alert rules (CRUD), the state of every rule, and the alerts' history."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from core.models import AlertRule, AlertRuleSpec
from core.server import schema as S
from core.server.app import json_response
from core.server.routes import V1, Routes


def add(r: Routes) -> None:
    app, platform = r.app, r.platform

    def rule_doc(rule: AlertRule) -> dict[str, Any]:
        return rule.model_dump(mode="json", by_alias=True)

    rule_create, rule_patch = S.rule_body(), S.rule_body(patch=True)

    @app.get(f"{V1}/alerts/rules", tags=["alerts"], summary="alert rules", responses=S.responses(S.RuleList))
    async def list_alert_rules() -> Response:
        rules = await platform.list_alert_rules()
        return json_response({"rules": [rule_doc(r) for r in rules], "count": len(rules)})

    @app.post(
        f"{V1}/alerts/rules",
        tags=["alerts"],
        status_code=201,
        summary="create an alert rule",
        openapi_extra=rule_create,
        responses=S.responses(S.RuleChanged, 400, 404, 409, 422, status=201),
    )
    async def create_alert_rule(request: Request) -> Response:
        data = await r.object_body(request, "alert rule", rule_create, AlertRuleSpec)
        rule = await platform.create_alert_rule(data)
        return json_response({"message": "alert rule created", "rule": rule_doc(rule)}, 201)

    async def update_alert_rule(ref: str, request: Request) -> Response:
        rule = await platform.update_alert_rule(
            ref, await r.object_body(request, "alert rule update", rule_patch, AlertRuleSpec, S.RULE_BASE)
        )
        return json_response({"message": "alert rule updated", "rule": rule_doc(rule)})

    for method in ("PUT", "PATCH"):
        app.add_api_route(
            f"{V1}/alerts/rules/{{ref}}",
            update_alert_rule,
            methods=[method],
            tags=["alerts"],
            operation_id=f"update_alert_rule_{method.lower()}",
            summary="update an alert rule: only the fields sent change",
            openapi_extra=rule_patch,
            responses=S.responses(S.RuleChanged, 400, 404, 409, 422),
        )

    @app.delete(
        f"{V1}/alerts/rules/{{ref}}",
        tags=["alerts"],
        summary="delete an alert rule",
        responses=S.responses(S.RuleChanged, 404),
    )
    async def delete_alert_rule(ref: str) -> Response:
        rule = await platform.delete_alert_rule(ref)
        return json_response({"message": "alert rule deleted", "rule": rule_doc(rule)})

    @app.get(
        f"{V1}/alerts", tags=["alerts"], summary="the current state of every rule", responses=S.responses(S.AlertList)
    )
    async def alerts() -> Response:
        items = await platform.alerts()
        return json_response({"alerts": [a.model_dump(mode="json") for a in items], "count": len(items)})

    @app.get(
        f"{V1}/alerts/history",
        tags=["alerts"],
        summary="alert transitions, newest first",
        openapi_extra=S.params(S.param("limit", S.int_schema(1, 1000, 100))),
        responses=S.responses(S.AlertList, 422),
    )
    async def alert_history(request: Request) -> Response:
        q = S.Query(request.query_params, "alert history query")
        limit = q.integer("limit", 100, 1, 1000)
        q.done()
        items = await platform.alert_history(limit)
        return json_response({"alerts": [a.model_dump(mode="json") for a in items], "count": len(items)})
