"""Meta's webhooks for a Cloud API account (`/webhooks/meta/{account_id}`, public): the verification handshake,
the signature check, and what the payload says — received messages (stored, media fetched into the bucket with
the account's token, `message.received`), reactions (on their target, `message.reaction`) and statuses of sent
messages (`message.status`). Meta retries deliveries: every effect is keyed so a repeat changes nothing."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from core.cloud import GraphError
from core.errors import DomainError
from core.ids import event_id, inbound_message_id
from core.meta import inbound_messages, parse_webhook, status_updates, verification_answer, verify_signature
from core.models.common import utcnow
from core.models.events import EventType
from core.models.media import MAX_BYTES
from core.models.messages import Direction, MessageStatus
from core.models.meta import InboundMessage, StatusUpdate
from core.observability import logger
from core.store.media import inbound_key
from core.store.messages import PENDING
from core.store.tables import AccountItem, MessageItem
from functions.service import cloud_accounts as cloud
from functions.service.context import Services
from functions.service.messages import publish_status

#: Received media's URL in the event (reads of the message presign a fresh one).
EVENT_URL_SECONDS = 3600


@dataclass(frozen=True)
class Answer:
    status: int
    body: str
    content_type: str = "application/json"
    retry_after: int | None = None


def error(status: int, code: str, message: str, retry_after: int | None = None) -> Answer:
    return Answer(status, json.dumps({"code": code, "message": message}), retry_after=retry_after)


def _account(svc: Services, account_id: str) -> AccountItem | None:
    item = svc.accounts.read(account_id)
    if item is None or item.deleted_at or not cloud.is_cloud(item):
        return None
    return item


def verify(svc: Services, account_id: str, params: dict[str, Any]) -> Answer:
    """`GET`: Meta's subscription check — echo `hub.challenge` when `hub.verify_token` is the account's."""
    account = _account(svc, account_id)
    if account is None:
        return error(404, "account_not_found", f"no Cloud API account {account_id}")
    token = cloud.secret(account, "verify_token")
    if not token:
        return error(403, "verify_token_not_set", "set cloud.verify_token on the account first")
    challenge = verification_answer(params, token)
    if challenge is None:
        return error(403, "verification_failed", "hub.mode must be subscribe and hub.verify_token must match")
    return Answer(200, challenge, "text/plain")


def receive(svc: Services, account_id: str, raw: bytes, signature: str | None) -> Answer:
    """`POST`: a signed webhook of Meta's for this account (401 and nothing stored when the signature fails)."""
    account = _account(svc, account_id)  # first: a made-up id must not cost a budget row (a write) per request
    if account is None:
        return error(404, "account_not_found", f"no Cloud API account {account_id}")
    wait = svc.contacts.take_budget(account_id, "meta-webhook", svc.settings.meta_webhook_per_minute)
    if wait:
        return error(429, "rate_limited", "too many webhook requests for this account", retry_after=wait)
    app_secret = cloud.secret(account, "app_secret")
    if not app_secret:
        return error(401, "app_secret_not_set", "set cloud.app_secret on the account: unsigned webhooks are refused")
    if not verify_signature(app_secret, raw, signature):
        logger.warning("meta webhook refused: bad signature", extra={"account_id": account_id})
        return error(401, "invalid_signature", "X-Hub-Signature-256 does not match the body and the app secret")
    try:
        payload = parse_webhook(raw)
    except DomainError as exc:
        return error(400, exc.code, exc.message)
    mine = str(cloud.credentials(account).get("phone_number_id") or "")
    received = statuses = 0
    for message in inbound_messages(payload):
        if message.phone_number_id == mine:
            received += _message(svc, account, message)
    for update in status_updates(payload):
        if update.phone_number_id == mine:
            statuses += _status(svc, account, update)
    return Answer(200, json.dumps({"ok": True, "received": received, "statuses": statuses}))


def _message(svc: Services, account: AccountItem, message: InboundMessage) -> int:
    account_id = account.account_id
    content = dict(message.content)
    if message.type == "reaction":
        return _reaction(svc, account, message)
    context = content.get("context")
    if isinstance(context, dict) and context.get("wa_message_id"):
        target = svc.messages.find_ref(account_id, str(context["wa_message_id"]))
        if target is not None:
            content["context"] = {"message_id": target.message_id, "wa_message_id": context["wa_message_id"]}
    message_id = inbound_message_id(message.wa_message_id, message.timestamp)
    if svc.messages.find(account_id, message_id) is not None:
        return 0  # Meta delivered it before
    if message.media_to_fetch is not None:
        content["media"] = _fetch_media(svc, account, message, message_id)
    now = utcnow()
    item = MessageItem(
        account_id, message_id, tenant_id=account.tenant_id, direction=Direction.INBOUND.value,
        status=MessageStatus.RECEIVED.value, type=message.type, to=account.phone_number,
        from_number=message.from_number, content=json.dumps(content, separators=(",", ":")),
        wa_message_id=message.wa_message_id,
        status_history=[{"status": MessageStatus.RECEIVED.value, "at": now, "reason": None}],
        created_at=now, updated_at=now, expires_at=svc.messages.expiry(svc.settings.message_ttl_days))
    try:
        svc.messages.create(item)
    except DomainError:
        return 0  # a concurrent delivery of the same webhook stored it
    data: dict[str, Any] = {"message_id": message_id, "wa_message_id": message.wa_message_id,
                            "from": message.from_number, "from_lid": None, "profile_name": message.profile_name,
                            "timestamp": message.timestamp, **content}
    media = content.get("media")
    if isinstance(media, dict) and isinstance(media.get("key"), str):
        with contextlib.suppress(DomainError):
            data["media"] = {**media, "url": svc.media.presign_get(media["key"], EVENT_URL_SECONDS)}
    svc.events.publish(EventType.MESSAGE_RECEIVED, account_id, account.tenant_id, data,
                       event_id=event_id("received", message.wa_message_id))
    return 1


def _fetch_media(svc: Services, account: AccountItem, message: InboundMessage, message_id: str) -> dict[str, Any]:
    """The media into `inbound/{account}/{message}` (fetched from Graph with the account's token); on failure the
    message is still stored, its media marked missing."""
    media = message.media_to_fetch
    assert media is not None
    token = cloud.secret(account, "access_token")
    missing = {"error": "media_download_failed", "mime_type": media.mime_type}
    if not token:
        return missing
    client = cloud.graph(svc, token)
    try:
        info = client.media_info(media.id)
        data = client.download(str(info["url"]), MAX_BYTES.get(message.type, MAX_BYTES["document"]))
        key = inbound_key(account.account_id, message_id)
        metadata = {"account": account.account_id}
        if media.filename:
            metadata["filename"] = media.filename.encode("ascii", "backslashreplace").decode()[:240]
        stored = svc.media.put(key, data, media.mime_type, metadata)
    except (GraphError, DomainError, KeyError, TypeError) as exc:
        logger.warning("cloud media not fetched", extra={"account_id": account.account_id,
                                                         "message_id": message_id, "error": str(exc)[:200]})
        return missing
    found: dict[str, Any] = {"key": key, "mime_type": media.mime_type, "size_bytes": stored.size_bytes,
                             "sha256": stored.sha256}
    if media.filename:
        found["filename"] = media.filename
    if media.caption:
        found["caption"] = media.caption
    return found


def _reaction(svc: Services, account: AccountItem, message: InboundMessage) -> int:
    body = message.content.get("reaction") or {}
    target_wa_id = str(body.get("wa_message_id") or "")
    emoji = str(body.get("emoji") or "")
    target = svc.messages.find_ref(account.account_id, target_wa_id) if target_wa_id else None
    message_id = None
    if target is not None:
        message_id = target.message_id
        svc.messages.record_reaction(account.account_id, message_id, message.from_number, emoji, None)
    svc.events.publish(EventType.MESSAGE_REACTION, account.account_id, account.tenant_id, {
        "message_id": message_id, "wa_message_id": target_wa_id, "from": message.from_number, "from_lid": None,
        "emoji": emoji, "removed": emoji == "", "timestamp": message.timestamp},
        event_id=event_id("reaction", message.wa_message_id, target_wa_id, message.from_number, emoji))
    return 1


def _status(svc: Services, account: AccountItem, update: StatusUpdate) -> int:
    item = svc.messages.by_wa_id(update.wa_message_id)
    if item is None or item.account_id != account.account_id or item.direction != Direction.OUTBOUND.value:
        return 0
    if update.status is MessageStatus.FAILED:
        error = update.error
        code, text = (error.code, error.message) if error else ("send_failed", "Meta reported the message as failed")
        changed = svc.messages.fail(item, code, text,
                                    allowed_from=frozenset({*PENDING, MessageStatus.SENT, MessageStatus.DELIVERED}))
        if changed:
            publish_status(svc, item, MessageStatus.FAILED, error={"code": code, "message": text},
                           extra={"wa_message_id": update.wa_message_id})
        return int(changed)
    if not svc.messages.advance(item, update.status, None, reason=f"Meta: {update.status.value}"):
        return 0
    publish_status(svc, item, update.status, extra={"wa_message_id": update.wa_message_id})
    return 1
