"""Cloud API compatibility: Meta's Graph API requests and answers over wagate's accounts, messages and media, so
code written for the Cloud API runs by changing its base URL — on a WhatsApp Web number as on a Cloud API one.

The object of a path is an account id, a cloud account's own `phone_number_id`, or a media id. Sends go through
the same validation, idempotency and provider rules as `POST /accounts/{id}/messages`; every refusal becomes
Meta's error object with Meta's code (`meta_error`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.message import Message as MimeHeaders
from typing import Any

from pydantic import TypeAdapter, ValidationError

from core import errors
from core.meta import business_scoped_user_id, parse_received_media_id
from core.models.common import Principal
from core.models.envelope import MarkRead, SendRequest
from core.models.graph import (
    VERSION_PATTERN,
    GraphContact,
    GraphMediaId,
    GraphMediaInfo,
    GraphMessageId,
    GraphPhoneNumber,
    GraphSent,
    GraphSuccess,
)
from core.models.media import MEDIA_ID_PATTERN
from core.store.tables import AccountItem
from functions.service import cloud_accounts as cloud
from functions.service import media
from functions.service.accounts import load
from functions.service.context import Services
from functions.service.messages import Accepted, enqueue

SEND_ADAPTER: TypeAdapter[Any] = TypeAdapter(SendRequest)
MEDIA_URL_TTL = 300  # Meta's media URLs work for 5 minutes
_VERSION = re.compile(VERSION_PATTERN)
_GRAPH_LIKE = re.compile(r"^v\d")  # `v21.0`, and the mistakes `v21`, `v1`, `v21.0.1`: Meta-shaped errors
_MEDIA_ID = re.compile(MEDIA_ID_PATTERN)
# wagate's refusals of what the account's provider cannot send: Meta's "Parameter value is not valid".
PROVIDER_REFUSALS = frozenset({"not_supported_by_cloud_api", "template_needs_cloud_api", "interactive_not_supported"})
_PHONE_IDS: dict[tuple[str, str], str] = {}  # (tenant, phone_number_id) → account id, checked on every use
_USER_IDS: dict[tuple[str, str], str] = {}  # (phone_number_id or account id, business-scoped user id) → phone
USER_ID_PAGES = 20  # how far back (pages of 100 messages) a business-scoped user id is looked for


class GraphFailure(Exception):
    """An answer in Meta's error shape: HTTP status, Meta's code and subcode, what went wrong in detail."""

    def __init__(self, status: int, code: int, message: str, *, subcode: int | None = None,
                 details: str | None = None, wagate_code: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.subcode = status, code, message, subcode
        self.details, self.wagate_code, self.retry_after = details, wagate_code, retry_after


def is_graph_path(version: str) -> bool:
    """Whether the first segment of an unknown path means the Graph API (else it is a plain unknown route)."""
    return bool(_GRAPH_LIKE.match(version))


def check_version(version: str) -> None:
    if not _VERSION.match(version):
        raise GraphFailure(400, 100, f"(#100) Unknown Graph API version {version[:40]!r}",
                           details="use a version of the form vNN.N, e.g. /v21.0/{phone_number_id}/messages",
                           wagate_code="unknown_version")


def unknown_object(object_id: str, method: str = "post") -> GraphFailure:
    return GraphFailure(
        400, 100, f"Unsupported {method.lower()} request. Object with ID '{object_id[:128]}' does not exist, cannot "
        "be loaded due to missing permissions, or does not support this operation", subcode=33,
        wagate_code="object_not_found")


def account_for(svc: Services, principal: Principal, object_id: str, method: str = "post") -> AccountItem:
    """The caller's account named by its id or, for a cloud account, by its own `phone_number_id`."""
    try:
        return load(svc, principal, object_id)
    except errors.NotFound:
        pass
    key = (principal.tenant_id, object_id)
    remembered = _PHONE_IDS.get(key)
    if remembered:
        try:
            item = load(svc, principal, remembered)
            if cloud.is_cloud(item) and cloud.credentials(item).get("phone_number_id") == object_id:
                return item
        except errors.NotFound:
            pass
        _PHONE_IDS.pop(key, None)
    found = _by_phone_number_id(svc, principal, object_id)
    if found is None:
        raise unknown_object(object_id, method)
    if len(_PHONE_IDS) > 10_000:
        _PHONE_IDS.clear()
    _PHONE_IDS[key] = found.account_id
    return found


def _by_phone_number_id(svc: Services, principal: Principal, phone_number_id: str) -> AccountItem | None:
    cursor: str | None = None
    while True:
        items, cursor = svc.accounts.list_for_tenant(principal.tenant_id, status=None, limit=100, cursor=cursor,
                                                     account_ids=principal.account_ids)
        for item in items:
            if cloud.is_cloud(item) and cloud.credentials(item).get("phone_number_id") == phone_number_id:
                return item
        if not cursor:
            return None


def send(
    svc: Services, principal: Principal, object_id: str, body: bytes, *, idempotency_key: str | None,
    correlation_id: str | None,
) -> tuple[GraphSent | GraphSuccess, Accepted]:
    """`POST /{version}/{object_id}/messages`: Meta's send (or read receipt) body → the outbox, answered as Meta
    answers: the contact as given and as WhatsApp knows it, and our message id."""
    account = account_for(svc, principal, object_id)
    raw = _json_object(body)
    user_id = raw.pop("recipient", None)
    if user_id is not None and raw.get("to") is None:
        raw["to"] = phone_of_user_id(svc, account, str(user_id))
    try:
        message = SEND_ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise GraphFailure(400, 100, "(#100) Invalid parameter", details=_validation_details(exc),
                           wagate_code="validation_error") from None
    accepted = enqueue(svc, principal, account.account_id, message, idempotency_key=idempotency_key,
                       correlation_id=correlation_id)
    if isinstance(message, MarkRead):
        return GraphSuccess(), accepted
    contact = GraphContact(input=str(user_id), wa_id=message.to, user_id=str(user_id)) if user_id is not None \
        else GraphContact(input=str(raw["to"]), wa_id=message.to)
    return GraphSent(contacts=[contact], messages=[GraphMessageId(id=accepted.message.message_id)]), accepted


def phone_of_user_id(svc: Services, account: AccountItem, user_id: str) -> str:
    """The phone number behind a business-scoped user id of our Meta-format webhooks (`recipient`, which current
    Cloud API clients send instead of `to`): one of the account's recent contacts, whose ids are recomputed."""
    scope = str(cloud.credentials(account).get("phone_number_id") or account.account_id)
    key = (scope, user_id)
    if key in _USER_IDS:
        return _USER_IDS[key]
    cursor: str | None = None
    for _ in range(USER_ID_PAGES):
        items, cursor = svc.messages.list_page(account.account_id, direction=None, limit=100, cursor=cursor)
        for item in items:
            phone = item.from_number if item.direction == "inbound" else item.to
            if phone and business_scoped_user_id(scope, phone) == user_id:
                if len(_USER_IDS) > 10_000:
                    _USER_IDS.clear()
                _USER_IDS[key] = phone
                return phone
        if not cursor:
            break
    raise GraphFailure(400, 100, "(#100) Invalid parameter", wagate_code="unknown_recipient",
                       details=f"recipient {user_id[:64]!r} is not a contact of this number that wagate knows (user "
                               "ids come from its webhooks, for contacts of the last few thousand messages); use to")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"null")
    except ValueError:
        raise GraphFailure(400, 100, "(#100) Invalid parameter", details="the request body is not valid JSON",
                           wagate_code="invalid_json") from None
    if not isinstance(value, dict):
        raise GraphFailure(400, 100, "(#100) The parameter messaging_product is required.",
                           details="the request body must be a JSON object", wagate_code="validation_error")
    return value


def _validation_details(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:10]:
        loc = [str(p) for p in error.get("loc", ())]
        # The first element of a send's location is the union member (`text`, `read`), not a field.
        where = ".".join(loc[1:] if len(loc) > 1 else loc)
        parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg", "")))
    return "; ".join(parts)[:2000]


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def parse_form(body: bytes, content_type: str) -> dict[str, FormPart]:
    """The parts of a multipart/form-data body by name (the first of each name); InvalidRequest when it is not one."""
    boundary = _param("content-type", content_type, "boundary")
    if not content_type.lower().startswith("multipart/form-data") or not boundary:
        raise errors.InvalidRequest("the upload must be multipart/form-data with messaging_product, type and file",
                                    code="validation_error")
    parts: dict[str, FormPart] = {}
    for section in body.split(b"--" + boundary.encode("latin-1"))[1:]:
        if section.startswith(b"--"):
            break
        head, sep, data = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _param("content-disposition", disposition, "name")
        if name and name not in parts:
            filename = _param("content-disposition", disposition, "filename")
            parts[name] = FormPart(name, data.removesuffix(b"\r\n"), filename, headers.get("content-type"))
    return parts


def _param(header: str, value: str, name: str) -> str | None:
    holder = MimeHeaders()
    holder[header] = value
    found = holder.get_param(name, header=header)
    return str(found) if isinstance(found, str) and found else None


def upload(svc: Services, principal: Principal, object_id: str, body: bytes, content_type: str) -> GraphMediaId:
    """`POST /{version}/{object_id}/media`: Meta's multipart upload, stored as the tenant's media."""
    account_for(svc, principal, object_id)
    form = parse_form(body, content_type)
    product = form.get("messaging_product")
    if product is None or product.data.strip() != b"whatsapp":
        raise GraphFailure(400, 100, "(#100) The parameter messaging_product is required.",
                           details="messaging_product must be whatsapp", wagate_code="validation_error")
    file = form.get("file")
    if file is None or not file.data:
        raise GraphFailure(400, 100, "(#100) The parameter file is required.",
                           details="send the bytes as the form part `file`", wagate_code="validation_error")
    declared: str | None = form["type"].data.decode("utf-8", "replace").strip() if "type" in form \
        else file.content_type
    if not declared:
        raise GraphFailure(400, 100, "(#100) The parameter type is required.",
                           details="type is the MIME type of the file", wagate_code="validation_error")
    stored = media.store_bytes(svc, principal, file.data, declared, file.filename)
    return GraphMediaId(id=stored.id)


def describe(svc: Services, principal: Principal, object_id: str) -> GraphMediaInfo | GraphPhoneNumber:
    """`GET /{version}/{object_id}`: a media object (with a short-lived URL of its bytes), or a phone number."""
    if _MEDIA_ID.match(object_id):
        try:
            info, url = media.download_url(svc, principal, object_id, MEDIA_URL_TTL)
        except errors.NotFound:
            raise unknown_object(object_id, "get") from None
        return GraphMediaInfo(url=url, mime_type=info.mime_type or "application/octet-stream", sha256=info.sha256,
                              file_size=info.size_bytes or 0, id=object_id)
    received = parse_received_media_id(object_id)
    if received is not None:
        return _received_media(svc, principal, object_id, *received)
    return phone_number(account_for(svc, principal, object_id, "get"), object_id)


def _received_media(svc: Services, principal: Principal, object_id: str, message_id: str,
                    account_id: str) -> GraphMediaInfo:
    """Media a contact sent (the id Meta-format webhooks give it): a short-lived URL of the stored bytes."""
    try:
        load(svc, principal, account_id)
    except errors.NotFound:
        raise unknown_object(object_id, "get") from None
    item = svc.messages.find(account_id, message_id)
    stored: Any = {}
    if item is not None and item.content:
        try:
            stored = json.loads(item.content).get("media") or {}
        except (ValueError, AttributeError):
            stored = {}
    if not isinstance(stored, dict) or not isinstance(stored.get("key"), str):
        raise unknown_object(object_id, "get")  # no media, or its download failed
    return GraphMediaInfo(url=svc.media.presign_get(stored["key"], MEDIA_URL_TTL),
                          mime_type=str(stored.get("mime_type") or "application/octet-stream"),
                          sha256=stored.get("sha256"), file_size=int(stored.get("size_bytes") or 0), id=object_id)


def phone_number(item: AccountItem, object_id: str) -> GraphPhoneNumber:
    """Meta's phone number object of an account (what Meta knows for a cloud account; the account's own
    number and name for a WhatsApp Web one)."""
    stored = cloud.credentials(item) if cloud.is_cloud(item) else {}
    display = stored.get("display_phone_number") or (f"+{item.phone_number.lstrip('+')}" if item.phone_number
                                                     else None)
    return GraphPhoneNumber(id=object_id, display_phone_number=display,
                            verified_name=stored.get("verified_name") or item.account_name,
                            quality_rating=str(stored.get("quality_rating") or "UNKNOWN"))


def delete(svc: Services, principal: Principal, object_id: str) -> GraphSuccess:
    """`DELETE /{version}/{media_id}`."""
    if not _MEDIA_ID.match(object_id):
        raise unknown_object(object_id, "delete")
    try:
        media.delete_media(svc, principal, object_id)
    except errors.NotFound:
        raise unknown_object(object_id, "delete") from None
    return GraphSuccess()


# Meta's code for each kind of refusal (https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
_BY_ERROR: tuple[tuple[type[errors.DomainError], int, int, str], ...] = (
    (errors.Unauthorized, 401, 190, "Invalid OAuth access token - Cannot parse access token"),
    (errors.Forbidden, 403, 10, "(#10) Application does not have permission for this action"),
    (errors.RateLimited, 429, 130429, "(#130429) Rate limit hit"),
    (errors.Conflict, 409, 100, "(#100) Invalid parameter"),
    (errors.PayloadTooLarge, 413, 100, "(#100) Invalid parameter"),
    (errors.DependencyFailure, 503, 2, "(#2) Service temporarily unavailable"),
    (errors.Gone, 410, 100, "(#100) Invalid parameter"),
    (errors.PreconditionFailed, 412, 100, "(#100) Invalid parameter"),
)


def meta_error(exc: errors.DomainError) -> GraphFailure:
    """A domain error in Meta's terms: validation 100, auth 190, forbidden 10, rate limit 130429, what the
    account's provider cannot send 131009; our message in `details`, our code in `wagate_code`."""
    if isinstance(exc, errors.InvalidRequest) and exc.code in PROVIDER_REFUSALS:
        return GraphFailure(400, 131009, "(#131009) Parameter value is not valid", details=exc.message,
                            wagate_code=exc.code)
    retry_after = exc.retry_after if isinstance(exc, errors.RateLimited) else None
    for cls, status, code, message in _BY_ERROR:
        if isinstance(exc, cls):
            return GraphFailure(status, code, message, details=exc.message, wagate_code=exc.code,
                                retry_after=retry_after if retry_after else 5 if status == 503 else None)
    return GraphFailure(400, 100, "(#100) Invalid parameter", details=exc.message, wagate_code=exc.code)
