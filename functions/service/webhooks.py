"""Webhooks: tenant webhooks (CRUD, Meta's verification handshake) and delivery records (list, redeliver).
The rules the dispatcher follows to deliver are in webhook_delivery.py."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

from pydantic import ValidationError

from core import net
from core.errors import Conflict, Forbidden, InvalidRequest, Unprocessable
from core.ids import new_id
from core.models.common import Principal, utcnow
from core.models.webhooks import (
    DeliveryAttempt,
    DeliveryState,
    RedeliveryAccepted,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookFormat,
    WebhookUpdate,
)
from core.store import secrets as secret_store
from core.store.accounts import plain
from core.store.tables import WebhookDeliveryItem, WebhookItem
from functions.service.accounts import WRITERS, load, require_role
from functions.service.context import Services
from functions.service.webhook_delivery import MAX_RESPONSE_BYTES, META, USER_AGENT

MAX_WEBHOOKS_PER_TENANT = 20


# --- tenant webhooks -------------------------------------------------------------------------------------

def _require_tenant_wide(principal: Principal) -> None:
    """A tenant webhook sees every account's events: account-scoped keys may not read or manage them."""
    if principal.account_ids:
        raise Forbidden("account-scoped keys cannot use tenant webhooks", code="forbidden_scope")


def check_url(svc: Services, url: str) -> None:
    """Refuse a URL that may not be fetched (like account webhooks; every delivery checks it again)."""
    try:
        net.check_url(url, net.OutboundPolicy.from_settings(svc.settings))
    except net.UnresolvedHost:
        pass  # a name without DNS records yet is no reason to refuse it; deliveries fail until it resolves
    except net.UnsafeUrl as exc:
        raise InvalidRequest(f"webhook url is not allowed: {exc}", code="webhook_url_not_allowed") from None


def _view(item: WebhookItem) -> Webhook:
    return Webhook(webhook_id=item.webhook_id, url=item.url, events=list(item.events or []),
                   description=item.description, enabled=bool(item.enabled), has_secret=bool(item.secret_ciphertext),
                   format=WebhookFormat(item.format or WebhookFormat.WAGATE.value),
                   has_verify_token=bool(item.verify_token_ciphertext),
                   created_at=item.created_at, updated_at=item.updated_at)


def verify_subscription(svc: Services, url: str, verify_token: str) -> None:
    """Meta's subscription handshake: GET the URL with `hub.mode=subscribe`, the verify token and a random
    challenge; the receiver must answer 2xx with the challenge as its body, else `webhook_verification_failed`."""
    challenge = str(10**9 + secrets.randbelow(9 * 10**9))  # digits, like Meta's (some bots parse it as a number)
    query = urlencode({"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge})
    target = f"{url}{'&' if urlsplit(url).query else '?'}{query}"
    try:
        result = net.fetch(target, net.OutboundPolicy.from_settings(svc.settings), method="GET",
                           headers={"User-Agent": USER_AGENT}, max_bytes=MAX_RESPONSE_BYTES,
                           timeout=svc.settings.webhook_timeout_seconds, max_redirects=0)
    except net.UnsafeUrl as exc:
        raise InvalidRequest(f"webhook url is not allowed: {exc}", code="webhook_url_not_allowed") from None
    except net.FetchError as exc:
        raise Unprocessable(f"webhook verification failed: {exc.code}: {exc}", {"error": exc.code},
                            code="webhook_verification_failed") from None
    answer = result.body.decode("utf-8", "replace")
    if 200 <= result.status < 300 and answer.strip() == challenge:
        return
    raise Unprocessable(f"webhook verification failed: the URL answered {result.status} without the challenge "
                        "(answer hub.challenge as the body when hub.verify_token is yours)",
                        {"status": result.status, "body": answer[:200]}, code="webhook_verification_failed")


def new_secret() -> str:
    """A random signing secret (256 bits)."""
    return "whsec_" + secrets.token_urlsafe(32)


def create_webhook(svc: Services, principal: Principal, body: WebhookCreate) -> WebhookCreated:
    """Store a tenant webhook; the answer is the only place its secret is ever shown."""
    require_role(principal, *WRITERS)
    _require_tenant_wide(principal)
    check_url(svc, body.url)
    if len(svc.webhooks.list_for_tenant(principal.tenant_id)) >= MAX_WEBHOOKS_PER_TENANT:
        raise Conflict(f"a tenant has at most {MAX_WEBHOOKS_PER_TENANT} webhooks", code="webhook_limit_reached")
    if body.verify and body.verify_token:
        verify_subscription(svc, body.url, body.verify_token)
    secret = body.secret or new_secret()
    now = utcnow()
    item = WebhookItem(principal.tenant_id, new_id("whk"), url=body.url, events=[e.value for e in body.events],
                       secret_ciphertext=secret_store.encrypt(secret), description=body.description,
                       enabled=body.enabled, format=body.format.value,
                       verify_token_ciphertext=secret_store.encrypt(body.verify_token) if body.verify_token else None,
                       created_at=now, updated_at=now)
    svc.webhooks.create(item)
    return WebhookCreated(**_view(item).model_dump(), secret=secret)


def list_webhooks(svc: Services, principal: Principal) -> list[Webhook]:
    _require_tenant_wide(principal)
    return [_view(item) for item in svc.webhooks.list_for_tenant(principal.tenant_id)]


def get_webhook(svc: Services, principal: Principal, webhook_id: str) -> Webhook:
    _require_tenant_wide(principal)
    return _view(svc.webhooks.get(principal.tenant_id, webhook_id))


def update_webhook(svc: Services, principal: Principal, webhook_id: str, body: WebhookUpdate) -> Webhook:
    require_role(principal, *WRITERS)
    _require_tenant_wide(principal)
    item = svc.webhooks.get(principal.tenant_id, webhook_id)
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    if "url" in given and body.url is not None:
        check_url(svc, body.url)
        changes["url"] = body.url
    if "events" in given and body.events is not None:
        changes["events"] = [e.value for e in body.events]
    if "secret" in given and body.secret is not None:
        changes["secret_ciphertext"] = secret_store.encrypt(body.secret)
    if "description" in given:
        changes["description"] = body.description or None
    if "enabled" in given and body.enabled is not None:
        changes["enabled"] = body.enabled
    if "format" in given and body.format is not None:
        changes["format"] = body.format.value
    if "verify_token" in given and body.verify_token is not None:
        changes["verify_token_ciphertext"] = secret_store.encrypt(body.verify_token)
    if body.verify:
        token = body.verify_token or _stored_verify_token(item)
        if not token:
            raise Unprocessable("`verify: true` needs a `verify_token` (none is stored)", code="verify_token_required")
        verify_subscription(svc, changes.get("url", item.url), token)
        if not changes:
            return _view(item)  # a handshake on its own: nothing else to store
    if not changes:
        raise InvalidRequest("nothing to update", code="empty_update")
    return _view(svc.webhooks.update(item, changes))


def _stored_verify_token(item: WebhookItem) -> str | None:
    if not item.verify_token_ciphertext:
        return None
    try:
        return secret_store.decrypt(item.verify_token_ciphertext)
    except ValueError:
        return None  # unreadable (key changed): ask for a new one


def delete_webhook(svc: Services, principal: Principal, webhook_id: str) -> None:
    require_role(principal, *WRITERS)
    _require_tenant_wide(principal)
    svc.webhooks.delete(principal.tenant_id, webhook_id)


# --- delivery records ------------------------------------------------------------------------------------

def delivery_view(item: WebhookDeliveryItem) -> WebhookDelivery:
    history = []
    for entry in item.history or []:
        try:
            history.append(DeliveryAttempt.model_validate(plain(entry)))
        except (ValidationError, TypeError, ValueError):
            continue
    try:
        state = DeliveryState(item.state)
    except ValueError:
        state = DeliveryState.FAILED
    return WebhookDelivery(
        delivery_id=item.delivery_id, account_id=item.account_id, event_id=item.event_id,
        event_type=item.event_type, target=item.target, url=item.url, state=state, attempts=int(item.attempts),
        last_status_code=_int(item.last_status_code), last_latency_ms=_int(item.last_latency_ms),
        last_error=item.last_error, next_retry_at=item.next_retry_at, history=history,
        created_at=item.created_at, updated_at=item.updated_at)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def list_deliveries(svc: Services, principal: Principal, account_id: str, *, state: DeliveryState | None,
                    limit: int, cursor: str | None) -> tuple[list[WebhookDelivery], str | None]:
    load(svc, principal, account_id)
    items, next_cursor = svc.deliveries.list_page(account_id, state=state.value if state else None, limit=limit,
                                                  cursor=cursor)
    return [delivery_view(item) for item in items], next_cursor


def redeliver(svc: Services, principal: Principal, account_id: str, delivery_id: str) -> RedeliveryAccepted:
    """Make a new attempt now (the count continues), whatever the record's state."""
    require_role(principal, *WRITERS)
    load(svc, principal, account_id)
    item = svc.deliveries.get(account_id, delivery_id)
    if item.format == META and item.body is None:
        raise Conflict(f"nothing to deliver: {item.last_error or 'the event has no equivalent in Meta format'}",
                       code="delivery_not_deliverable")
    if not svc.deliveries.reopen(item):
        raise Conflict("the delivery changed meanwhile; retry", code="delivery_busy")
    attempt = int(item.attempts) + 1
    svc.webhook_retries.schedule(account_id, delivery_id, attempt, 0)
    return RedeliveryAccepted(delivery_id=delivery_id, state=DeliveryState.PENDING, attempt=attempt)
