"""Webhooks: tenant webhooks (CRUD), delivery records (list, redeliver) and the delivery rules the
dispatcher follows (targets, signing, retries, dead letters)."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError

from core import net
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.ids import b32, new_id
from core.models.common import Principal, utcnow
from core.models.events import Event
from core.models.webhooks import (
    DeliveryAttempt,
    DeliveryState,
    RedeliveryAccepted,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookDelivery,
    WebhookUpdate,
)
from core.observability import logger
from core.store import secrets as secret_store
from core.store.accounts import plain
from core.store.tables import AccountItem, WebhookDeliveryItem, WebhookItem
from functions.service.accounts import WRITERS, load, require_role
from functions.service.context import Services

MAX_WEBHOOKS_PER_TENANT = 20
ACCOUNT_TARGET = "account"
USER_AGENT = "wagate-webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024
RETRYABLE_STATUS = frozenset({408, 429})
#: A claimed attempt with no outcome after this long (beyond its timeout) was lost with its invocation.
STALL_GRACE_SECONDS = 120


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
                   created_at=item.created_at, updated_at=item.updated_at)


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
    secret = body.secret or new_secret()
    now = utcnow()
    item = WebhookItem(principal.tenant_id, new_id("whk"), url=body.url, events=[e.value for e in body.events],
                       secret_ciphertext=secret_store.encrypt(secret), description=body.description,
                       enabled=body.enabled, created_at=now, updated_at=now)
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
    if not changes:
        raise InvalidRequest("nothing to update", code="empty_update")
    return _view(svc.webhooks.update(item, changes))


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
    if not svc.deliveries.reopen(item):
        raise Conflict("the delivery changed meanwhile; retry", code="delivery_busy")
    attempt = int(item.attempts) + 1
    svc.webhook_retries.schedule(account_id, delivery_id, attempt, 0)
    return RedeliveryAccepted(delivery_id=delivery_id, state=DeliveryState.PENDING, attempt=attempt)


# --- delivery rules (the dispatcher) -----------------------------------------------------------------------

def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`X-Wagate-Signature`: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def delivery_id(event_id: str, target: str) -> str:
    """Deterministic per event id and target: a redelivered or re-published event finds its record."""
    digest = int(hashlib.sha256(f"{event_id}\x1f{target}".encode()).hexdigest()[:32], 16)
    return f"dlv_{b32(digest, 26)}"


@dataclass(frozen=True)
class Target:
    name: str  # ACCOUNT_TARGET or a webhook id
    url: str
    secret_ciphertext: str | None
    plain_secret: str | None = None  # account webhooks stored before secrets were encrypted


@dataclass(frozen=True)
class Job:
    """One claimed attempt: only its holder POSTs it and writes its outcome."""

    item: WebhookDeliveryItem
    attempt: int
    target: Target | None  # None: the webhook is gone or disabled; the attempt fails with that reason
    missing: str = ""


@dataclass(frozen=True)
class Outcome:
    delivery_id: str
    state: str
    status_code: int | None
    error: str | None


def _account_target(account: AccountItem | None, event_type: str | None) -> Target | None:
    webhook = plain(account.webhook) if account is not None and account.webhook else None
    if not webhook or not webhook.get("url"):
        return None
    if event_type is not None and event_type not in (webhook.get("events") or []):
        return None
    return Target(ACCOUNT_TARGET, str(webhook["url"]), webhook.get("secret_ciphertext"), webhook.get("secret"))


def _tenant_target(item: WebhookItem | None, event_type: str | None) -> Target | None:
    if item is None or not item.enabled:
        return None
    if event_type is not None and event_type not in (item.events or []):
        return None
    return Target(item.webhook_id, item.url, item.secret_ciphertext)


def _find_account(svc: Services, account_id: str) -> AccountItem | None:
    try:
        return svc.accounts.get(account_id)
    except NotFound:
        return None


def _stalled(item: WebhookDeliveryItem, svc: Services) -> bool:
    """A pending record nobody is working on: never attempted, or its attempt or retry was lost."""
    if item.state != DeliveryState.PENDING.value:
        return False
    if not item.attempts:
        return True
    now = time.time()
    if item.attempt_started_at is not None:
        return bool(now - item.attempt_started_at > svc.settings.webhook_timeout_seconds + STALL_GRACE_SECONDS)
    if item.next_retry_at:
        due = datetime.fromisoformat(item.next_retry_at.replace("Z", "+00:00")).timestamp()
        return now - due > STALL_GRACE_SECONDS
    return False


class Lookups:
    """Accounts and tenant webhooks read once per batch: a batch's events mostly share a few accounts and one
    tenant. Lives for one invocation only, so a webhook changed now applies from the next batch on."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._accounts: dict[str, AccountItem | None] = {}
        self._webhooks: dict[str, list[WebhookItem]] = {}
        self._lock = threading.Lock()

    def account(self, account_id: str) -> AccountItem | None:
        with self._lock:
            if account_id in self._accounts:
                return self._accounts[account_id]
        found = _find_account(self.svc, account_id)
        with self._lock:
            return self._accounts.setdefault(account_id, found)

    def webhooks(self, tenant_id: str) -> list[WebhookItem]:
        with self._lock:
            if tenant_id in self._webhooks:
                return self._webhooks[tenant_id]
        found = self.svc.webhooks.list_for_tenant(tenant_id)
        with self._lock:
            return self._webhooks.setdefault(tenant_id, found)


def plan(svc: Services, body: str, attributes: dict[str, str], lookups: Lookups | None = None) -> list[Job]:
    """The attempts one queue message asks for, already claimed: an event (every matching target) or a retry."""
    if attributes.get("kind") == "webhook.retry":
        return _plan_retry(svc, body)
    return _plan_event(svc, body, attributes, lookups or Lookups(svc))


def _plan_event(svc: Services, body: str, attributes: dict[str, str], lookups: Lookups) -> list[Job]:
    try:
        event = Event.model_validate_json(body)
    except ValidationError as exc:
        logger.warning("not an event: dropped", extra={"error": str(exc)[:500]})
        return []
    account = lookups.account(event.account_id)
    tenant_id = attributes.get("tenant_id") or (account.tenant_id if account is not None else None)
    targets = [t for t in [_account_target(account, event.type.value)] if t is not None]
    if tenant_id:
        targets += [t for t in (_tenant_target(w, event.type.value) for w in lookups.webhooks(tenant_id))
                    if t is not None]
    jobs = []
    for target in targets:
        # Created with its first attempt already claimed: one write, and a duplicate event finds it taken.
        item = WebhookDeliveryItem(
            event.account_id, delivery_id(event.id, target.name), tenant_id=tenant_id,
            event_id=event.id, event_type=event.type.value, target=target.name, url=target.url,
            state=DeliveryState.PENDING.value, attempts=1, attempt_started_at=int(time.time()), event=body,
            history=[], created_at=utcnow())
        if svc.deliveries.create(item):
            jobs.append(Job(item, 1, target))
            continue
        existing = svc.deliveries.find(item.account_id, item.delivery_id)
        if existing is None or not _stalled(existing, svc):
            continue  # delivered, failed, or in the hands of an attempt or a scheduled retry
        item = existing
        attempt = int(item.attempts) + 1
        if svc.deliveries.claim(item, attempt, target.url):
            jobs.append(Job(item, attempt, target))
    return jobs


def _plan_retry(svc: Services, body: str) -> list[Job]:
    try:
        message = json.loads(body)
        account_id, wanted = str(message["account_id"]), int(message["attempt"])
        item = svc.deliveries.find(account_id, str(message["delivery_id"]))
    except (ValueError, KeyError, TypeError):
        logger.warning("not a retry message: dropped", extra={"body": body[:200]})
        return []
    if item is None or item.state != DeliveryState.PENDING.value:
        return []
    if int(item.attempts) != wanted - 1 and not _stalled(item, svc):
        return []  # a duplicate, or another attempt took this one's place
    if item.target == ACCOUNT_TARGET:
        target = _account_target(_find_account(svc, item.account_id), None)
        missing = "the account's webhook was removed"
    else:
        target = _tenant_target(svc.webhooks.find(item.tenant_id, item.target) if item.tenant_id else None, None)
        missing = "the webhook was deleted or disabled"
    attempt = int(item.attempts) + 1
    if not svc.deliveries.claim(item, attempt, target.url if target else item.url):
        return []
    return [Job(item, attempt, target, missing)]


def deliver(svc: Services, job: Job) -> Outcome:
    """Make the claimed attempt, record its outcome, and schedule the next one or give up."""
    settings = svc.settings
    item = job.item
    status: int | None = None
    latency_ms: int | None = None
    retry_after: float | None = None
    retryable = False
    error: str | None = None
    secret = ""
    if job.target is None:
        error = f"target_gone: {job.missing}"
    else:
        try:
            secret = _secret(job.target) or ""
        except ValueError:
            error = "secret_unreadable: set a new secret on the webhook"
        if not secret and error is None:
            error = "no_secret: set a secret on the webhook (deliveries are always signed)"
    if error is None and job.target is not None:
        body = item.event.encode()
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Wagate-Event-Id": item.event_id,
                   "X-Wagate-Delivery-Id": item.delivery_id, "X-Wagate-Timestamp": timestamp,
                   "X-Wagate-Signature": sign(secret, timestamp, body)}
        started = time.monotonic()
        try:
            # Redirects are not followed: a 30x would turn the POST into a GET (and a success into a lie).
            result = net.fetch(job.target.url, net.OutboundPolicy.from_settings(settings), method="POST", body=body,
                               headers=headers, max_bytes=MAX_RESPONSE_BYTES, timeout=settings.webhook_timeout_seconds,
                               max_redirects=0)
            status = result.status
            latency_ms = int(result.elapsed * 1000)
            if not 200 <= status < 300:
                retryable = status in RETRYABLE_STATUS or status >= 500
                error = f"http_{status}"
                retry_after = _retry_after(result.headers.get("retry-after"))
        except net.UnsafeUrl as exc:
            error = f"{exc.code}: {exc}"
        except net.FetchError as exc:
            latency_ms = int((time.monotonic() - started) * 1000)
            if exc.code == "too_many_redirects":
                error = "redirect_not_followed: the receiver answered with a redirect; use the final URL"
            elif exc.code == "too_large":
                error = f"response_too_large: answer with a body under {MAX_RESPONSE_BYTES} bytes"
            else:
                retryable, error = True, f"{exc.code}: {exc}"
    return _settle(svc, job, status, latency_ms, error, retryable, retry_after)


def _settle(svc: Services, job: Job, status: int | None, latency_ms: int | None, error: str | None,
            retryable: bool, retry_after: float | None) -> Outcome:
    settings = svc.settings
    item, attempt = job.item, job.attempt
    log = {"delivery_id": item.delivery_id, "account_id": item.account_id, "event_id": item.event_id,
           "target": item.target, "attempt": attempt, "status_code": status, "latency_ms": latency_ms, "error": error}
    if error is None:
        svc.deliveries.record(item, attempt, state=DeliveryState.DELIVERED.value, status_code=status,
                              latency_ms=latency_ms, error=None, next_retry_at=None)
        logger.info("webhook delivered", extra=log)
        return Outcome(item.delivery_id, DeliveryState.DELIVERED.value, status, None)
    if retryable and attempt < settings.webhook_max_attempts:
        delay = backoff(attempt, settings.webhook_retry_base_seconds, settings.webhook_retry_cap_seconds, retry_after)
        due = (datetime.now(UTC) + timedelta(seconds=delay)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if svc.deliveries.record(item, attempt, state=DeliveryState.PENDING.value, status_code=status,
                                 latency_ms=latency_ms, error=error, next_retry_at=due):
            svc.webhook_retries.schedule(item.account_id, item.delivery_id, attempt + 1, delay)
        logger.info("webhook delivery will be retried", extra={**log, "delay_seconds": delay})
        return Outcome(item.delivery_id, DeliveryState.PENDING.value, status, error)
    if retryable:
        error = f"gave up after {attempt} attempts: {error}"
        svc.events_dlq.send(item.event, delivery_id=item.delivery_id, url=item.url, reason=error,
                            account_id=item.account_id, event_type=item.event_type)
    svc.deliveries.record(item, attempt, state=DeliveryState.FAILED.value, status_code=status,
                          latency_ms=latency_ms, error=error, next_retry_at=None)
    logger.warning("webhook delivery failed", extra={**log, "error": error})
    return Outcome(item.delivery_id, DeliveryState.FAILED.value, status, error)


def _secret(target: Target) -> str | None:
    if target.secret_ciphertext:
        return secret_store.decrypt(target.secret_ciphertext)
    return target.plain_secret or None


def backoff(attempt: int, base: float, cap: int, retry_after: float | None = None) -> int:
    """Seconds before attempt `attempt + 1`: the receiver's Retry-After (capped), else full jitter."""
    if retry_after is not None:
        return max(1, min(cap, math.ceil(retry_after)))
    return min(cap, math.ceil(random.uniform(0, min(cap, base * 2 ** (attempt - 1)))))


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None when absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
