"""The audit hook of the API: every state-changing call and every refusal becomes one audit entry.

`record_request` runs once per request around the resolver (functions/api/handler.py, graph.py), so no route
records anything itself; `refused` is the authorizer's (and the bearer-checking Graph routes') one call for
credentials it turned away. Only ids, routes and error codes are recorded: never a body, never a secret (a key
create records the new key's id, read from the answer; the key itself is not looked at).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.models.audit import Actor, ActorType, Target
from core.models.common import Principal
from core.observability import logger, metrics
from core.store.audit import AuditRepository
from functions.service.api_keys import presented_key
from functions.service.context import services

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ACCOUNT_PARAMS = ("account_id", "session_id")
KEY_PREFIX_LENGTH = 12  # what `ApiKey.prefix` shows: `wgk_` and the start of the key id


@dataclass(frozen=True)
class RouteAction:
    """What a call of one route does: the action's name, the kind of object and where its id is."""

    action: str
    target: str
    id_param: str | None = None  # path parameter naming the target
    created: tuple[str | int, ...] = ()  # where in the answer the created object's id is


def _lifecycle(param: str) -> dict[str, RouteAction]:
    base = "/accounts/{account_id}" if param == "account_id" else "/sessions/{session_id}"
    return {
        f"PATCH {base}": RouteAction("account.update", "account", param),
        f"DELETE {base}": RouteAction("account.delete", "account", param),
        **{f"POST {base}/{verb}": RouteAction(f"account.{verb}", "account", param)
           for verb in ("start", "stop", "restart", "logout")},
        f"POST {base}/pairing-code": RouteAction("account.pairing_code", "account", param),
        f"POST {base}/messages": RouteAction("message.send", "message", created=("message_id",)),
    }


ACTIONS: dict[str, RouteAction] = {
    "POST /accounts": RouteAction("account.create", "account", created=("account_id",)),
    "POST /sessions": RouteAction("account.create", "account", created=("session_id",)),
    **_lifecycle("account_id"),
    **_lifecycle("session_id"),
    "PATCH /accounts/{account_id}/messages/{message_id}": RouteAction("message.edit", "message", "message_id"),
    "DELETE /accounts/{account_id}/messages/{message_id}": RouteAction("message.revoke", "message", "message_id"),
    "POST /accounts/{account_id}/webhook-deliveries/{delivery_id}/redeliver":
        RouteAction("webhook_delivery.redeliver", "webhook_delivery", "delivery_id"),
    "POST /api-keys": RouteAction("api_key.create", "api_key", created=("key_id",)),
    "DELETE /api-keys/{key_id}": RouteAction("api_key.revoke", "api_key", "key_id"),
    "POST /producers": RouteAction("producer.create", "producer", created=("producer_id",)),
    "DELETE /producers/{producer_id}": RouteAction("producer.revoke", "producer", "producer_id"),
    "POST /webhooks": RouteAction("webhook.create", "webhook", created=("webhook_id",)),
    "PATCH /webhooks/{webhook_id}": RouteAction("webhook.update", "webhook", "webhook_id"),
    "DELETE /webhooks/{webhook_id}": RouteAction("webhook.delete", "webhook", "webhook_id"),
    "POST /media": RouteAction("media.upload", "media", created=("id",)),
    # Tickets and access tokens are secrets: no target id.
    "POST /realtime/tickets": RouteAction("realtime_ticket.create", "realtime_ticket"),
    "POST /auth/token": RouteAction("access_token.create", "access_token"),
    # Cloud API compatibility routes (functions/api/graph.py): the object id is an account's phone number id.
    "POST /{version}/{object_id}/messages": RouteAction("message.send", "message", created=("messages", 0, "id")),
    "POST /{version}/{object_id}/media": RouteAction("media.upload", "media", created=("id",)),
    "DELETE /{version}/{object_id}": RouteAction("media.delete", "media", "object_id"),
}
NOUNS = {"accounts": "account", "sessions": "account", "api-keys": "api_key", "webhooks": "webhook",
         "producers": "producer", "media": "media", "realtime": "realtime_ticket", "audit": "audit", "me": "api_key",
         "auth": "access_token"}
VERBS = {"GET": "read", "HEAD": "read", "POST": "create", "PUT": "replace", "PATCH": "update", "DELETE": "delete"}


def route_action(method: str, resource: str) -> RouteAction:
    """The action of a route; routes without one of their own get `<object>.<verb>` from their path."""
    known = ACTIONS.get(f"{method} {resource}")
    if known is not None:
        return known
    segments = [s for s in resource.split("/") if s]
    noun = NOUNS.get(segments[0], segments[0].replace("-", "_")) if segments else "api"
    if len(segments) >= 3 and segments[0] in {"accounts", "sessions"} and not segments[2].startswith("{"):
        noun = "message" if segments[2] == "messages" else "account"
    params = [s[1:-1].rstrip("+") for s in segments if s.startswith("{")]
    return RouteAction(f"{noun}.{VERBS.get(method, method.lower())}", noun, params[-1] if params else None)


def _context(event: dict[str, Any]) -> dict[str, Any]:
    return dict(event.get("requestContext") or {})


def _identity(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """(source IP, user agent) as API Gateway saw them."""
    identity = _context(event).get("identity") or {}
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return identity.get("sourceIp"), identity.get("userAgent") or headers.get("user-agent")


def _route(event: dict[str, Any]) -> str:
    method = str(event.get("httpMethod") or _context(event).get("httpMethod") or "")
    return f"{method} {event.get('resource') or event.get('path') or ''}"


def _authorized_caller(event: dict[str, Any]) -> Principal | None:
    """The principal the authorizer put in the request context, if any (the ANY catch-alls have none)."""
    raw = _context(event).get("authorizer") or {}
    try:
        return Principal.model_validate({
            "key_id": str(raw.get("key_id") or ""), "tenant_id": raw["tenant_id"], "role": raw["role"],
            "account_ids": tuple(a for a in str(raw.get("account_ids") or "").split(",") if a),
            **({"credential": raw["credential"]} if raw.get("credential") else {})})
    except (KeyError, ValueError):
        return None


def _actor(principal: Principal) -> Actor:
    credential = getattr(principal, "credential", "key")  # `jwt` when an access token of the key was presented
    return Actor(type=ActorType.JWT if credential in ("jwt", "idp") else ActorType.KEY, id=principal.key_id)


def _answer(response: dict[str, Any]) -> Any:
    body = response.get("body")
    if not body or response.get("isBase64Encoded"):
        return None
    try:
        return json.loads(body)
    except (TypeError, ValueError):
        return None


def _dig(document: Any, path: tuple[str | int, ...]) -> str | None:
    for step in path:
        if isinstance(step, int):
            document = document[step] if isinstance(document, list) and len(document) > step else None
        else:
            document = document.get(step) if isinstance(document, dict) else None
    return str(document) if isinstance(document, str | int) else None


def _error_code(answer: Any) -> str | None:
    """The machine-readable code of an error answer: ours (`code`) or a Cloud API one (`error.wagate_code`)."""
    if not isinstance(answer, dict):
        return None
    code = answer.get("code") or (answer.get("error") or {}).get("wagate_code")
    return str(code) if code else None


def record_request(event: dict[str, Any], response: dict[str, Any], principal: Principal | None = None) -> None:
    """Record a state-changing call (whatever its outcome) or a forbidden one; never raises."""
    try:
        _record_request(event, response, principal)
    except Exception as exc:  # noqa: BLE001 - the caller's answer goes out whatever happens here
        logger.warning("audit hook failed", extra={"error": type(exc).__name__})


def _record_request(event: dict[str, Any], response: dict[str, Any], principal: Principal | None) -> None:
    method = str(event.get("httpMethod") or "").upper()
    status = int(response.get("statusCode") or 0)
    if status == 403:
        metrics.add_metric(name="Forbidden", unit="Count", value=1)
    if method not in STATE_CHANGING and status != 403:
        return
    principal = principal or _authorized_caller(event)
    if principal is None:
        return  # no credentials reached this function: nothing happened in any tenant
    action = route_action(method, str(event.get("resource") or ""))
    params = {str(k): str(v) for k, v in (event.get("pathParameters") or {}).items()}
    answer = _answer(response) if action.created or status >= 400 else None
    ok = 200 <= status < 400
    target_id = _dig(answer, action.created) if ok and action.created else params.get(action.id_param or "")
    account_id = next((params[p] for p in ACCOUNT_PARAMS if p in params), None)
    if account_id is None and action.target == "account":
        account_id = target_id
    source_ip, user_agent = _identity(event)
    # services(): the tables are bound even when no route ran (a 413 answered before the resolver).
    AuditRepository(services().settings.audit_retention_days).record(
        principal.tenant_id, action.action, _actor(principal), Target(type=action.target, id=target_id),
        result="ok" if ok else str(status), account_id=account_id,
        reason=None if ok else _error_code(answer), route=_route(event), source_ip=source_ip,
        user_agent=user_agent, request_id=_context(event).get("requestId"))


def refused(event: dict[str, Any]) -> None:
    """Record credentials the authorizer refused (a security event): under the operator's (bootstrap) tenant,
    since a refused credential names no tenant anyone can trust. Never raises."""
    try:
        presented = presented_key(event.get("headers")) or ""
        if not presented:
            actor_id, reason = "anonymous", "no credentials"
        elif presented.startswith("wgk_"):
            actor_id, reason = presented[:KEY_PREFIX_LENGTH], "invalid or revoked API key"
        elif presented.count(".") == 2:
            actor_id, reason = "anonymous", "invalid, expired or revoked access token"
        else:
            actor_id, reason = "anonymous", "malformed credentials"
        source_ip, user_agent = _identity(event)
        route = _route(event)
        settings = services().settings
        AuditRepository(settings.audit_retention_days).record(
            settings.bootstrap_tenant, "auth.refused", Actor(type=ActorType.KEY, id=actor_id),
            Target(type="route", id=route), result="401", reason=reason, route=route, source_ip=source_ip,
            user_agent=user_agent, request_id=_context(event).get("requestId"))
    except Exception as exc:  # noqa: BLE001 - the 401 goes out whatever happens here
        logger.warning("audit of a refused credential failed", extra={"error": type(exc).__name__})
