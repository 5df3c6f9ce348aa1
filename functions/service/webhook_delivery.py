"""Webhook delivery rules (the dispatcher): which targets an event goes to, the body and signature each gets,
the claimed attempt, retries with backoff, dead letters.

A `meta` webhook gets the payload Meta's Cloud API would have sent (core/meta.py), rendered once when its record
is created so every attempt POSTs the same bytes; an event Meta has no equivalent for is recorded `skipped`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import ValidationError

from core import meta, net
from core.errors import NotFound
from core.ids import b32
from core.models.common import utcnow
from core.models.events import Event, EventType
from core.models.webhooks import DeliveryState, WebhookFormat
from core.observability import logger
from core.store import secrets as secret_store
from core.store.accounts import plain
from core.store.tables import AccountItem, WebhookDeliveryItem, WebhookItem
from functions.service.context import Services

ACCOUNT_TARGET = "account"
USER_AGENT = "wagate-webhooks/1"
MAX_RESPONSE_BYTES = 64 * 1024
RETRYABLE_STATUS = frozenset({408, 429})
#: A claimed attempt with no outcome after this long (beyond its timeout) was lost with its invocation.
STALL_GRACE_SECONDS = 120
META = WebhookFormat.META.value


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
    format: str = WebhookFormat.WAGATE.value


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


@dataclass(frozen=True)
class Rendered:
    """An event in Meta's format: the text to POST, or why there is none (`state` skipped or failed)."""

    body: str | None
    state: str = DeliveryState.PENDING.value
    reason: str | None = None


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
    return Target(item.webhook_id, item.url, item.secret_ciphertext,
                  format=item.format or WebhookFormat.WAGATE.value)


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


# --- Meta's format ------------------------------------------------------------------------------------------

def meta_metadata(account: AccountItem | None, account_id: str, tenant_id: str | None) -> dict[str, str]:
    """`phone_number_id`, `display_phone_number` and `waba_id` of the account, as Meta's payloads name them:
    a cloud account's own Graph ids; for a web account its id, its number's digits and its tenant."""
    digits = re.sub(r"\D", "", account.phone_number or "") if account is not None else ""
    cloud = plain(getattr(account, "cloud", None)) if account is not None else None
    if isinstance(cloud, dict) and cloud.get("phone_number_id"):
        return {"phone_number_id": str(cloud["phone_number_id"]),
                "display_phone_number": re.sub(r"\D", "", str(cloud.get("display_phone_number") or "")) or digits,
                "waba_id": str(cloud.get("waba_id") or tenant_id or "")}
    return {"phone_number_id": account_id, "display_phone_number": digits, "waba_id": tenant_id or ""}


def render_meta(svc: Services, event: Event, raw: str, account: AccountItem | None,
                tenant_id: str | None) -> Rendered:
    """The event as Meta's `whatsapp_business_account` payload; `skipped` when Meta has no equivalent."""
    data: dict[str, Any] = json.loads(raw)
    wa_message_id = recipient = None
    if event.type is EventType.MESSAGE_STATUS and event.data.get("message_id"):
        # A status names the id the send answered with (`messages[0].id` of wagate's answer, also on the Cloud API
        # compatibility route: the wagate message id), so a bot matches statuses to its sends as it does with Meta;
        # the recipient comes from the stored message.
        message = svc.messages.find(event.account_id, str(event.data["message_id"]))
        if message is not None:
            wa_message_id, recipient = message.message_id, message.to
    try:
        payload = meta.to_meta_payload(data, **meta_metadata(account, event.account_id, tenant_id),
                                       wa_message_id=wa_message_id, recipient=recipient)
    except meta.MetaTranslationError as exc:
        return Rendered(None, DeliveryState.FAILED.value, f"not_translatable: {exc}")
    if payload is None:
        what = event.type.value
        if event.type is EventType.MESSAGE_STATUS:
            what += f" {event.data.get('status')}"
        return Rendered(None, DeliveryState.SKIPPED.value, f"not_in_meta_format: Meta's webhooks have no {what}")
    return Rendered(meta.dumps(payload).decode())


# --- planning: the attempts a queue message asks for ---------------------------------------------------------

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
    rendered: Rendered | None = None  # Meta's format, rendered once for all the event's `meta` targets
    jobs = []
    for target in targets:
        if target.format == META and rendered is None:
            rendered = render_meta(svc, event, body, account, tenant_id)
        as_meta = rendered if target.format == META else None
        # Created with its first attempt already claimed: one write, and a duplicate event finds it taken.
        item = WebhookDeliveryItem(
            event.account_id, delivery_id(event.id, target.name), tenant_id=tenant_id,
            event_id=event.id, event_type=event.type.value, target=target.name, url=target.url,
            state=DeliveryState.PENDING.value, attempts=1, attempt_started_at=int(time.time()), event=body,
            history=[], created_at=utcnow())
        if as_meta is not None:
            item.format, item.body = META, as_meta.body
            if as_meta.body is None:  # nothing to POST: recorded as such, never attempted
                item.state, item.attempts, item.attempt_started_at = as_meta.state, 0, None
                item.last_error = as_meta.reason
        if svc.deliveries.create(item):
            if item.state == DeliveryState.PENDING.value:
                jobs.append(Job(item, 1, target))
            else:
                logger.info("webhook delivery not made", extra={
                    "delivery_id": item.delivery_id, "account_id": item.account_id, "event_id": item.event_id,
                    "target": item.target, "state": item.state, "error": item.last_error})
            continue
        existing = svc.deliveries.find(item.account_id, item.delivery_id)
        if existing is None or not _stalled(existing, svc):
            continue  # delivered, failed, skipped, or in the hands of an attempt or a scheduled retry
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


# --- the attempt ---------------------------------------------------------------------------------------------

def request_headers(item: WebhookDeliveryItem, secret: str, body: bytes) -> dict[str, str]:
    """wagate's headers (event id for de-duplication, signature); Meta's signature too for `meta` deliveries."""
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "X-Wagate-Event-Id": item.event_id,
               "X-Wagate-Delivery-Id": item.delivery_id, "X-Wagate-Timestamp": timestamp,
               "X-Wagate-Signature": sign(secret, timestamp, body)}
    if item.format == META:
        # Meta's scheme (HMAC of the raw body), the webhook's secret in the role of the app secret.
        headers[meta.SIGNATURE_HEADER] = meta.sign(secret, body)
    return headers


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
    elif item.format == META and item.body is None:
        error = "not_translatable: this event has no body in Meta's format"
    else:
        try:
            secret = _secret(job.target) or ""
        except ValueError:
            error = "secret_unreadable: set a new secret on the webhook"
        if not secret and error is None:
            error = "no_secret: set a secret on the webhook (deliveries are always signed)"
    if error is None and job.target is not None:
        body = (item.body if item.format == META and item.body is not None else item.event).encode()
        headers = request_headers(item, secret, body)
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
