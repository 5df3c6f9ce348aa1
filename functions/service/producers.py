"""SQS producers: registered per tenant, they sign ingress messages with a secret shown once (stored KMS-encrypted)."""

from __future__ import annotations

import hashlib
import hmac
import secrets as random
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import Forbidden, InvalidRequest
from core.ids import new_id
from core.models.common import Principal, Role, utcnow
from core.models.producers import Producer, ProducerCreate, ProducerCreated
from core.observability import logger
from core.store import secrets
from core.store.tables import ProducerItem
from functions.service.accounts import require_role
from functions.service.context import Services

SIGNATURE_PREFIX = "sha256="
_AWS_SQS_HOSTS = ("sqs.{region}.amazonaws.com", "sqs.{region}.amazonaws.com.cn", "{region}.queue.amazonaws.com")


def _view(item: ProducerItem) -> Producer:
    return Producer(producer_id=item.producer_id, name=item.name, tenant_id=item.tenant_id,
                    reply_queue_urls=list(item.reply_queue_urls or []), created_at=item.created_at,
                    created_by=item.created_by)


def _require_producer_admin(principal: Principal) -> None:
    require_role(principal, Role.ADMIN)
    if principal.account_ids:
        raise Forbidden("account-scoped keys cannot manage producers (they act for the whole tenant)",
                        code="forbidden_scope")


def check_reply_queue(svc: Services, url: str) -> None:
    """InvalidRequest unless `url` is an SQS queue of this region outside the gateway's own queues.

    The ingress and sweeper functions may send to any account's queues of the region (a producer's reply
    queue is usually in its own account); so no producer may name the gateway's internal queues.
    """
    parts = urlsplit(url)
    region = svc.settings.region
    endpoint = urlsplit(svc.settings.endpoint_url) if svc.settings.endpoint_url else None
    if endpoint is not None:
        host_ok = parts.netloc == endpoint.netloc
    else:
        host_ok = parts.scheme == "https" and parts.netloc in {h.format(region=region) for h in _AWS_SQS_HOSTS}
    if not host_ok:
        raise InvalidRequest(f"{url} is not an SQS queue URL of {region}", code="reply_queue_not_allowed",
                             details={"url": url})
    account, _, name = parts.path.strip("/").partition("/")
    own_account = urlsplit(svc.settings.control_queue_url).path.strip("/").partition("/")[0]
    stack_prefix = svc.settings.host_queue_prefix.removesuffix("host-")
    if account == own_account and stack_prefix and name.startswith(stack_prefix):
        raise InvalidRequest(f"{url} is one of the gateway's own queues", code="reply_queue_not_allowed",
                             details={"url": url})


def create_producer(svc: Services, principal: Principal, body: ProducerCreate) -> ProducerCreated:
    """`POST /producers`: the returned model is the only place the secret ever appears."""
    _require_producer_admin(principal)
    urls = list(dict.fromkeys(body.reply_queue_urls))
    for url in urls:
        check_reply_queue(svc, url)
    secret = random.token_urlsafe(32)
    item = ProducerItem(new_id("prd"), tenant_id=principal.tenant_id, name=body.name,
                        secret_ciphertext=secrets.encrypt(secret), reply_queue_urls=urls,
                        created_at=utcnow(), created_by=principal.key_id)
    svc.producers.put(item)
    return ProducerCreated(**_view(item).model_dump(), secret=secret)


def list_producers(svc: Services, principal: Principal) -> list[Producer]:
    return [_view(item) for item in svc.producers.list_for_tenant(principal.tenant_id)]


def get_producer(svc: Services, principal: Principal, producer_id: str) -> Producer:
    return _view(svc.producers.get_for_tenant(producer_id, principal.tenant_id))


def delete_producer(svc: Services, principal: Principal, producer_id: str) -> None:
    """`DELETE /producers/{id}`: revoke. Warm ingress functions trust a cached producer up to a minute more."""
    _require_producer_admin(principal)
    svc.producers.delete(producer_id, principal.tenant_id)
    _cache.forget(producer_id)


def sign(secret: str, body: str) -> str:
    """The `wagate-signature` attribute value of a message body."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body.encode("utf-8", "surrogatepass"),
                                       hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class VerifiedProducer:
    """Who put an ingress message on the queue (the signature checked)."""

    producer_id: str
    tenant_id: str
    reply_queue_urls: frozenset[str]


class _ProducerCache:
    """Producers and their decrypted secrets for a short while: a batch of ten is one read and one KMS call."""

    MAX_ENTRIES = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, VerifiedProducer, str]] = {}

    def get(self, producer_id: str) -> tuple[VerifiedProducer, str] | None:
        with self._lock:
            entry = self._entries.get(producer_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1], entry[2]

    def put(self, producer: VerifiedProducer, secret: str, ttl: float) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[producer.producer_id] = (time.monotonic() + ttl, producer, secret)

    def forget(self, producer_id: str | None = None) -> None:
        with self._lock:
            if producer_id is None:
                self._entries.clear()
            else:
                self._entries.pop(producer_id, None)


_cache = _ProducerCache()
forget_cached_producers = _cache.forget


def _load(svc: Services, producer_id: str) -> tuple[VerifiedProducer, str] | None:
    cached = _cache.get(producer_id)
    if cached is not None:
        return cached
    item = svc.producers.get(producer_id)
    if item is None:
        return None
    producer = VerifiedProducer(item.producer_id, item.tenant_id, frozenset(item.reply_queue_urls or []))
    try:
        secret = secrets.decrypt(item.secret_ciphertext)
    except ValueError:  # not our ciphertext (restored from elsewhere, key replaced): cannot verify anything
        logger.error("producer secret cannot be decrypted", extra={"producer_id": producer_id})
        return None
    _cache.put(producer, secret, svc.settings.producer_cache_seconds)
    return producer, secret


def authenticate(svc: Services, producer_id: str | None, signature: str | None, body: str) -> VerifiedProducer | None:
    """The producer that signed `body`, or None (missing attributes, unknown or revoked producer, bad signature)."""
    if not producer_id or not signature or len(producer_id) > 64 or not producer_id.startswith("prd_"):
        return None
    found = _load(svc, producer_id)
    if found is None:
        return None
    producer, secret = found
    if not hmac.compare_digest(sign(secret, body).encode(), signature.strip().lower().encode()):
        return None
    return producer
