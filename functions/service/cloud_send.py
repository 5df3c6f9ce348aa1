"""The cloud sender's rules: one queued message of a Cloud API account → Meta's send endpoint → its status.

The message row is the truth (as for WhatsApp Web): the cloud outbox queue only names it. A message is claimed
(queued → sending) before the POST, so a redelivered queue message never sends it twice; a send that dies between
the claim and Meta's answer is failed as `send_unconfirmed` later (it may or may not have gone out), never resent.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from core.cloud import GraphClient, GraphError, outcome, to_graph_body
from core.errors import DependencyFailure, DomainError
from core.models.accounts import ConnectionStatus
from core.models.common import epoch_of
from core.models.envelope import MEDIA_TYPES
from core.models.events import EventType
from core.models.media import MAX_BYTES
from core.models.messages import MessageStatus
from core.observability import logger
from core.store.accounts import AccountChange
from core.store.media import media_key
from core.store.tables import AccountItem, MessageItem
from functions.service import cloud_accounts as cloud
from functions.service.context import Services
from functions.service.messages import publish_status

#: A message claimed for sending longer ago than this, with no outcome recorded, was lost with its invocation.
UNCONFIRMED_AFTER_SECONDS = 120.0
#: How soon a message of an account that is not WORKING (token expired, stopped) is looked at again: a quarter
#: of its age, between 2 and 30 s, so a token fixed soon after it failed sends at once and a long wait is cheap.
WAIT_SECONDS = 30.0
MIN_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class Result:
    """`done`, or `retry` after `delay` seconds (the queue message comes back; its account's later ones wait)."""

    done: bool
    delay: float = 0.0
    note: str = ""


DONE = Result(True)


def seconds_since(stamp: str | None, now: float | None = None) -> float:
    """Seconds from an ISO-8601 UTC time stamp of ours to `now` (epoch seconds; default: now); 0 for a stamp that
    cannot be read."""
    moment = epoch_of(stamp)
    return 0.0 if moment is None else max(0.0, (time.time() if now is None else now) - moment)


def wait_for(item: MessageItem, now: float | None = None) -> float:
    """Seconds before a waiting message of an account that is not WORKING is looked at again."""
    return min(WAIT_SECONDS, max(MIN_WAIT_SECONDS, seconds_since(item.created_at, now) / 4))


def _fail(svc: Services, item: MessageItem, code: str, message: str, *, hint: str | None = None,
          allowed: frozenset[MessageStatus] = frozenset({MessageStatus.QUEUED, MessageStatus.SENDING})) -> Result:
    text = f"{message} ({hint})" if hint else message
    if svc.messages.fail(item, code, text, allowed_from=allowed):
        error: dict[str, Any] = {"code": code, "message": text}
        if hint:
            error["hint"] = hint
        publish_status(svc, item, MessageStatus.FAILED, error=error)
    return DONE


def send(svc: Services, account_id: str, message_id: str) -> Result:
    """Send one message of a cloud account (what the cloud outbox queue names); idempotent."""
    item = svc.messages.find(account_id, message_id)
    if item is None or item.status not in (MessageStatus.QUEUED.value, MessageStatus.SENDING.value):
        return DONE
    if item.status == MessageStatus.SENDING.value:
        waited = seconds_since(item.updated_at)
        if waited < UNCONFIRMED_AFTER_SECONDS:
            return Result(False, UNCONFIRMED_AFTER_SECONDS - waited + 1, "claimed by another attempt")
        return _fail(svc, item, "send_unconfirmed",
                     "the Cloud API call was interrupted before Meta answered: the message may or may not have "
                     "been sent, and is not sent again", allowed=frozenset({MessageStatus.SENDING}))
    account = svc.accounts.read(account_id)
    if account is None or account.deleted_at:
        return _fail(svc, item, "account_deleted", "the account was deleted before sending")
    if account.connection_status != ConnectionStatus.WORKING.value:
        age = seconds_since(item.created_at)
        timeout = svc.settings.not_connected_timeout
        if age >= timeout:
            return _fail(svc, item, "account_not_connected",
                         f"the Cloud API account was {account.connection_status} "
                         f"({account.status_reason or 'no reason'}) for {timeout:.0f}s",
                         allowed=frozenset({MessageStatus.QUEUED}))
        return Result(False, min(wait_for(item), timeout - age + 1), f"account {account.connection_status}")
    token = cloud.secret(account, "access_token")
    phone_number_id = cloud.credentials(account).get("phone_number_id")
    if not token or not phone_number_id:
        _fail_account(svc, account, "token_invalid: no usable access token is stored")
        return Result(False, wait_for(item), "no token")
    envelope = json.loads(item.content or "{}")
    client = cloud.graph(svc, token)
    if not svc.messages.transition(item, MessageStatus.SENDING, allowed_from={MessageStatus.QUEUED},
                                   extra=[type(item).attempts.add(1)], reason="POST to the Cloud API"):
        return DONE  # another attempt claimed it
    try:
        body = _body(svc, account, client, str(phone_number_id), envelope)
        wamid = client.send(str(phone_number_id), body)
    except _Unsendable as exc:
        return _fail(svc, item, exc.code, exc.message)
    except GraphError as exc:
        return _after_error(svc, account, item, exc)
    svc.messages.transition(item, MessageStatus.SENT, allowed_from={MessageStatus.SENDING},
                            reason="accepted by the Cloud API",
                            extra=[type(item).wa_message_id.set(wamid)] if envelope.get("type") != "read" else [])
    publish_status(svc, item, MessageStatus.SENT, extra={"wa_message_id": wamid})
    return DONE


def _after_error(svc: Services, account: AccountItem, item: MessageItem, exc: GraphError) -> Result:
    decided = outcome(exc)
    logger.info("cloud send refused", extra={"account_id": item.account_id, "message_id": item.message_id,
                                             "graph_code": exc.code, "action": decided.action})
    if decided.action == "fail_message":
        return _fail(svc, item, decided.code, decided.message, hint=decided.hint)
    # Not sent: back in the queue (retries are not attempts that fail a message; the age limits do).
    svc.messages.transition(item, MessageStatus.QUEUED, allowed_from={MessageStatus.SENDING},
                            reason=f"{decided.code}: {decided.message}"[:300])
    if decided.action == "fail_account":
        _fail_account(svc, account, f"{decided.code}: {decided.message}"[:500])
        return Result(False, wait_for(item), decided.code)
    return Result(False, decided.retry_after or 5.0, decided.code)


def _fail_account(svc: Services, account: AccountItem, reason: str) -> None:
    """The token no longer works: the account is FAILED with why; its messages wait for a new token and a start."""
    if account.connection_status == ConnectionStatus.FAILED.value:
        return
    svc.accounts.request(account, lambda current: AccountChange(status=ConnectionStatus.FAILED, reason=reason))
    svc.events.publish(EventType.ACCOUNT_STATUS, account.account_id, account.tenant_id,
                       {"status": ConnectionStatus.FAILED.value, "reason": reason})


class _Unsendable(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _body(svc: Services, account: AccountItem, client: GraphClient, phone_number_id: str,
          envelope: dict[str, Any]) -> dict[str, Any]:
    """Meta's request body: our message ids become WhatsApp ids, our media ids are uploaded to Graph first."""
    kind = envelope.get("type")
    refs = {envelope.get("message_id"), (envelope.get("context") or {}).get("message_id"),
            (envelope.get("reaction") or {}).get("message_id")} - {None}
    wamids: dict[str, str] = {}
    for ref in refs:
        target = svc.messages.find_ref(account.account_id, str(ref))
        if target is None or not target.wa_message_id:
            raise _Unsendable("message_not_found", f"message {ref} has no WhatsApp id to point at")
        wamids[str(ref)] = target.wa_message_id
    media_ids: dict[str, str] = {}
    if kind in MEDIA_TYPES:
        content = envelope.get(str(kind)) or {}
        if content.get("id") and not content.get("link"):
            media_ids[str(content["id"])] = _upload(svc, account, client, phone_number_id, str(kind), content)
    graph_envelope = envelope
    if kind == "read":  # our stored read receipt → Meta's (status, message_id)
        graph_envelope = {k: v for k, v in envelope.items() if k not in ("type", "to")}
        graph_envelope["status"] = "read"
    try:
        return to_graph_body(graph_envelope, media_ids, wamids)
    except (ValueError, KeyError, TypeError) as exc:
        raise _Unsendable("invalid_request", str(exc)) from exc


def _upload(svc: Services, account: AccountItem, client: GraphClient, phone_number_id: str, kind: str,
            content: dict[str, Any]) -> str:
    """Our stored media (POST /media or inline data) uploaded to the number's Graph media; its Graph id."""
    limit = MAX_BYTES.get(kind, MAX_BYTES["document"])
    try:
        data, content_type = svc.media.get(media_key(account.tenant_id, str(content["id"])), limit)
    except DependencyFailure as exc:  # the media store is unavailable: a later attempt may work
        raise GraphError(0, None, exc.message, 0) from exc
    except DomainError as exc:
        code = exc.code if exc.code.startswith("media_") else "media_not_found"
        raise _Unsendable(code, exc.message) from exc
    mime = str(content.get("mime_type") or content_type or "application/octet-stream")
    return client.upload_media(phone_number_id, data, mime, content.get("filename"))
