"""Meta's WhatsApp Cloud API (Graph API): the client of the `cloud` provider, its error classification, and the
translation of our stored envelope into Meta's request body.

Sync and stdlib-only (http.client) so a Lambda function can use it without new dependencies; every call has a
bounded connect/read timeout. The Graph base URL is operator configuration (trusted); download URLs come from
Graph's media answers.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from core.models.envelope import MEDIA_TYPES

DEFAULT_TIMEOUT = 10.0
#: Types Meta's send endpoint accepts that our envelope carries (template: passed through as Meta's object).
CLOUD_TYPES = frozenset({"text", "location", "contacts", "reaction", "template", "interactive", *MEDIA_TYPES})
#: Media body fields Meta knows, per type; our stored extras (mime_type, sha256, size_bytes) stay behind.
_MEDIA_FIELDS: dict[str, tuple[str, ...]] = {
    "image": ("caption",), "video": ("caption",), "audio": ("voice",),
    "document": ("caption", "filename"), "sticker": (),
}
_WEB_ONLY = {
    "poll": "polls are a WhatsApp Web feature; the Cloud API cannot send them",
    "edit": "editing sent messages is a WhatsApp Web feature; the Cloud API cannot edit messages",
    "revoke": "deleting messages for everyone is a WhatsApp Web feature; the Cloud API cannot revoke messages",
}
OUTSIDE_WINDOW_HINT = "send a template message to re-open the 24-hour window"
# Backoff hints (seconds) when Meta gives no Retry-After: 131056 is per recipient (Meta: about one message
# every 6 s to the same user), 130429 is the number's throughput, 80007 the business account's hourly limit.
_RETRY_HINTS = {130429: 5.0, 131056: 6.0, 80007: 60.0, 4: 60.0}
_RATE_LIMITS = frozenset(_RETRY_HINTS)
_TRANSIENT = frozenset({1, 2, 131000, 131016})  # Meta: unknown/service errors, "something went wrong"
_PERMISSION = frozenset({10, *range(200, 300)})


class GraphError(Exception):
    """An error answer of the Graph API, or a transport failure (`code` 0, `http_status` 0)."""

    def __init__(self, code: int, subcode: int | None, message: str, http_status: int,
                 retry_after: float | None = None, details: str | None = None) -> None:
        super().__init__(f"Graph API error {code}: {message}")
        self.code = code
        self.subcode = subcode
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after
        self.details = details

    @property
    def transport(self) -> bool:
        """True when no answer came (timeout, connection refused or reset)."""
        return self.http_status == 0


class MediaTooLarge(GraphError):
    """A download passed its byte limit."""

    def __init__(self, limit: int, http_status: int) -> None:
        super().__init__(0, None, f"the media is larger than {limit} bytes", http_status)


@dataclass(frozen=True)
class Outcome:
    """What to do after a Graph error: `retry` (after `retry_after` seconds), fail the message with `code`, or
    fail the account (its token no longer works) with `code`."""

    action: Literal["retry", "fail_message", "fail_account"]
    code: str
    message: str
    retry_after: float | None = None
    hint: str | None = None


def outcome(error: GraphError) -> Outcome:
    """Classify a Graph error (Meta's codes: developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes)."""
    code, text = error.code, error.message
    if isinstance(error, MediaTooLarge):
        return Outcome("fail_message", "media_too_large", text)
    if error.transport:
        return Outcome("retry", "graph_unavailable", text, error.retry_after or 5.0)
    if code in _RATE_LIMITS:
        return Outcome("retry", "rate_limited", text, error.retry_after or _RETRY_HINTS[code])
    if code == 190:
        return Outcome("fail_account", "token_expired", text,
                       hint="generate a new access token and update the account")
    if code in _PERMISSION:
        return Outcome("fail_account", "token_invalid", text,
                       hint="the token lacks whatsapp_business_messaging permission for this number")
    if error.http_status >= 500 or code in _TRANSIENT:
        return Outcome("retry", "graph_unavailable", text, error.retry_after or 5.0)
    if code == 131026:
        return Outcome("fail_message", "invalid_recipient", text)
    if code == 131047:
        return Outcome("fail_message", "outside_window", text, hint=OUTSIDE_WINDOW_HINT)
    if code == 100:
        return Outcome("fail_message", "invalid_request", error.details or text)
    return Outcome("fail_message", "send_failed", text)


def cloud_supports(envelope: Mapping[str, Any]) -> str | None:
    """Why the Cloud API cannot send this envelope, or None when it can."""
    kind = envelope.get("type")
    if kind in _WEB_ONLY:
        return _WEB_ONLY[kind]
    if envelope.get("status") == "read" and "type" not in envelope:
        return None
    if kind not in CLOUD_TYPES:
        return f"message type {kind!r} is not supported by the Cloud API"
    if envelope.get("recipient_type") == "group" or "@" in str(envelope.get("to", "")):
        return "WhatsApp Web group ids (…@g.us) cannot be reached through the Cloud API"
    if kind in MEDIA_TYPES and "data" in (envelope.get(kind) or {}):
        return "inline media data must be stored (and uploaded to Graph) before a Cloud API send"
    return None


def to_graph_body(envelope: Mapping[str, Any], media_ids: Mapping[str, str] | None = None,
                  message_ids: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Meta's send request body for our stored envelope.

    `media_ids` maps our media ids (`med_…`) to Graph media ids (upload them first); `message_ids` maps our
    message ids (`msg_…`) to WhatsApp ids (`wamid.…`) for replies and reactions; ids not in them pass unchanged.
    Raises ValueError for what the Cloud API cannot send (see `cloud_supports`) or an unmapped media id.
    """
    problem = cloud_supports(envelope)
    if problem:
        raise ValueError(problem)
    wamid = dict(message_ids or {})
    if envelope.get("status") == "read" and "type" not in envelope:
        read: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read",
                                "message_id": wamid.get(envelope["message_id"], envelope["message_id"])}
        if envelope.get("typing_indicator"):  # "typing…" until the reply (at most 25 s)
            read["typing_indicator"] = dict(envelope["typing_indicator"])
        return read
    kind = str(envelope["type"])
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual",
                            "to": str(envelope["to"]).lstrip("+"), "type": kind}
    context = envelope.get("context")
    if context:
        body["context"] = {"message_id": wamid.get(context["message_id"], context["message_id"])}
    content = envelope[kind]
    if kind == "text":
        body["text"] = {"preview_url": bool(content.get("preview_url", False)), "body": content["body"]}
    elif kind in MEDIA_TYPES:
        body[kind] = _media(kind, content, media_ids or {})
    elif kind == "location":
        body["location"] = {k: content[k] for k in ("latitude", "longitude", "name", "address") if k in content}
    elif kind == "reaction":
        body["reaction"] = {"message_id": wamid.get(content["message_id"], content["message_id"]),
                            "emoji": content["emoji"]}
    else:  # contacts, template, interactive: our model is Meta's object (stored empty lists and nulls left out)
        body[kind] = _compact(content)
    reference = envelope.get("client_reference") or envelope.get("biz_opaque_callback_data")
    if reference:
        body["biz_opaque_callback_data"] = reference
    return body


def _compact(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _compact(v) for k, v in value.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _media(kind: str, content: Mapping[str, Any], media_ids: Mapping[str, str]) -> dict[str, Any]:
    if content.get("link"):
        media: dict[str, Any] = {"link": content["link"]}
    else:
        ours = content.get("id")
        if ours is None or ours not in media_ids:
            raise ValueError(f"media {ours!r} has not been uploaded to the Graph API")
        media = {"id": media_ids[ours]}
    for name in _MEDIA_FIELDS[kind]:
        value = content.get(name)
        if name == "voice":
            if value:
                media["voice"] = True
        elif value is not None:
            media[name] = value
    return media


class GraphClient:
    """The Graph API for one access token."""

    def __init__(self, base_url: str, version: str, token: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version
        self.token = token
        self.timeout = timeout

    def phone_number(self, phone_number_id: str) -> dict[str, Any]:
        """The phone number object (`verified_name`, `display_phone_number`, `id`, `quality_rating`): checks that
        the token may use the number."""
        return self._json("GET", self._url(phone_number_id))

    def send(self, phone_number_id: str, body: Mapping[str, Any]) -> str:
        """Send a Graph request body (see `to_graph_body`); returns the WhatsApp message id (`wamid.…`)."""
        payload = json.dumps(body, ensure_ascii=False).encode()
        answer = self._json("POST", self._url(phone_number_id, "messages"), payload,
                            {"Content-Type": "application/json"})
        if body.get("status") == "read":
            return str(body.get("message_id", ""))
        try:
            return str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise GraphError(0, None, f"unexpected send answer: {answer!r}"[:300], 200) from exc

    def upload_media(self, phone_number_id: str, data: bytes, mime_type: str, filename: str | None = None) -> str:
        """Upload bytes (multipart, as Meta documents); returns the Graph media id."""
        boundary = f"wagate-{uuid.uuid4().hex}"
        parts = [_form_field(boundary, "messaging_product", "whatsapp"), _form_field(boundary, "type", mime_type)]
        name = (filename or "file").replace('"', "").replace("\r", "").replace("\n", "")
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                     f"Content-Type: {mime_type}\r\n\r\n".encode() + data + b"\r\n")
        payload = b"".join(parts) + f"--{boundary}--\r\n".encode()
        answer = self._json("POST", self._url(phone_number_id, "media"), payload,
                            {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return str(answer["id"])

    def media_info(self, media_id: str) -> dict[str, Any]:
        """`{"url", "mime_type", "sha256", "file_size", "id", "messaging_product"}`; `url` is short-lived."""
        return self._json("GET", self._url(media_id))

    def download(self, url: str, max_bytes: int) -> bytes:
        """The bytes behind a `media_info` URL (sent with the token); MediaTooLarge past max_bytes."""
        status, headers, body = self._request("GET", url, None, {}, limit=max_bytes)
        if status >= 400:
            raise _error(status, headers, body)
        return body

    def _url(self, *parts: str) -> str:
        return "/".join([self.base_url, self.version, *(quote(p, safe="") for p in parts)])

    def _json(self, method: str, url: str, payload: bytes | None = None,
              headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        status, answer_headers, body = self._request(method, url, payload, dict(headers or {}), limit=4 << 20)
        if status >= 400:
            raise _error(status, answer_headers, body)
        try:
            answer = json.loads(body)
        except ValueError as exc:
            raise GraphError(0, None, "the Graph API answered something that is not JSON", status) from exc
        if not isinstance(answer, dict):
            raise GraphError(0, None, "the Graph API answered something that is not an object", status)
        return answer

    def _request(self, method: str, url: str, payload: bytes | None, headers: dict[str, str], *,
                 limit: int) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise GraphError(0, None, f"not an http(s) URL: {url[:200]}", 0)
        connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(parts.hostname, parts.port, timeout=self.timeout)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json", **headers}
        if not self.token.isascii() or not self.token.isprintable():
            raise GraphError(190, None, "the access token has characters an HTTP header cannot carry", 401)
        try:
            connection.request(method, target, body=payload, headers=headers)
            response = connection.getresponse()
            answer_headers = {k.lower(): v for k, v in response.getheaders()}
            declared = answer_headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise MediaTooLarge(limit, response.status)
            body = response.read(limit + 1)
            if len(body) > limit:
                raise MediaTooLarge(limit, response.status)
            return response.status, answer_headers, body
        except TimeoutError as exc:
            raise GraphError(0, None, f"timeout after {self.timeout} s: {exc}", 0) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise GraphError(0, None, f"connection error: {exc}", 0) from exc
        finally:
            connection.close()


def _form_field(boundary: str, name: str, value: str) -> bytes:
    return f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def _error(status: int, headers: Mapping[str, str], body: bytes) -> GraphError:
    retry_after: float | None = None
    try:
        retry_after = float(headers.get("retry-after", ""))
    except ValueError:
        retry_after = None
    try:
        error = json.loads(body)["error"]
        details = (error.get("error_data") or {}).get("details")
        return GraphError(int(error.get("code", 0)), error.get("error_subcode"), str(error.get("message", "")),
                          status, retry_after, details)
    except (ValueError, KeyError, TypeError, AttributeError):
        text = body[:200].decode(errors="replace")
        return GraphError(0, None, f"HTTP {status}: {text}", status, retry_after)
