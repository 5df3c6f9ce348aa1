"""Meta's WhatsApp Cloud API shapes for tests and local runs: error answers, and the `whatsapp_business_account`
webhook payloads for inbound messages and statuses (as Meta's webhook reference shows them)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

ERROR_DOCS = "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"

#: code -> (title, details, default HTTP status), after Meta's Cloud API error-code table.
ERRORS: dict[int, tuple[str, str, int]] = {
    100: ("Invalid parameter", "The request included one or more unsupported or misspelled parameters.", 400),
    190: ("Access token has expired", "Error validating access token: Session has expired.", 401),
    200: ("Permission denied", "Permission is either not granted or has been removed.", 403),
    80007: ("Rate limit issues", "The WhatsApp Business Account has reached its rate limit.", 400),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached.", 400),
    131000: ("Something went wrong", "Message failed to send due to an unknown error.", 500),
    131016: ("Service unavailable", "A service is temporarily unavailable.", 503),
    131026: ("Message Undeliverable", "Unable to deliver message. The recipient may not be on WhatsApp, or has "
             "not accepted the latest Terms of Service.", 400),
    131047: ("Re-engagement message", "Message failed to send because more than 24 hours have passed since the "
             "customer last replied to this number.", 400),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Too many messages sent from the sender phone number to the same recipient phone number in a short "
             "period of time.", 400),
}


def fbtrace_id() -> str:
    return secrets.token_urlsafe(8)


def error_body(code: int, *, subcode: int | None = None, message: str | None = None) -> dict[str, Any]:
    """Meta's error answer: `{"error": {"message", "type", "code", "error_data", "error_subcode"?, "fbtrace_id"}}`."""
    title, details, _ = ERRORS.get(code, ("Unknown error", "An unknown error occurred.", 400))
    if code == 190:
        error: dict[str, Any] = {"message": message or details, "type": "OAuthException", "code": 190}
    else:
        error = {"message": message or f"(#{code}) {title}", "type": "OAuthException", "code": code,
                 "error_data": {"messaging_product": "whatsapp", "details": details}}
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = fbtrace_id()
    return {"error": error}


def status_error(code: int) -> dict[str, Any]:
    """An entry of a failed status's `errors` list."""
    title, details, _ = ERRORS.get(code, ("Unknown error", "An unknown error occurred.", 400))
    return {"code": code, "title": title, "message": title, "error_data": {"details": details}, "href": ERROR_DOCS}


def signature(app_secret: str, raw_body: bytes) -> str:
    """`X-Hub-Signature-256` of a webhook body."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def _envelope(phone_number_id: str, display_phone_number: str, value: dict[str, Any],
              waba_id: str) -> dict[str, Any]:
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": display_phone_number, "phone_number_id": phone_number_id},
             **value}
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"value": value, "field": "messages"}]}]}


def _inbound(phone_number_id: str, display_phone_number: str, sender: str, name: str, message: dict[str, Any],
             message_id: str | None, timestamp: int | None, context: dict[str, str] | None,
             waba_id: str) -> dict[str, Any]:
    message = {"from": sender, "id": message_id or new_wamid(), "timestamp": str(timestamp or int(time.time())),
               **message}
    if context:
        message = {"context": context, **message}
    return _envelope(phone_number_id, display_phone_number,
                     {"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [message]}, waba_id)


def inbound_text(phone_number_id: str, display_phone_number: str, sender: str, body: str, *, name: str = "Contact",
                 message_id: str | None = None, timestamp: int | None = None,
                 context: dict[str, str] | None = None, waba_id: str = "102290129340398") -> dict[str, Any]:
    """A contact's text message (`context`: `{"from", "id"}` of the quoted message)."""
    return _inbound(phone_number_id, display_phone_number, sender, name, {"type": "text", "text": {"body": body}},
                    message_id, timestamp, context, waba_id)


def inbound_image(phone_number_id: str, display_phone_number: str, sender: str, media_id: str, *,
                  mime_type: str = "image/jpeg", sha256: str = "", caption: str | None = None,
                  name: str = "Contact", message_id: str | None = None, timestamp: int | None = None,
                  waba_id: str = "102290129340398") -> dict[str, Any]:
    """A contact's image: Graph media `id` (fetch its URL with GET /{media_id}), `mime_type`, `sha256`."""
    image: dict[str, Any] = {"mime_type": mime_type, "sha256": sha256, "id": media_id}
    if caption is not None:
        image = {"caption": caption, **image}
    return _inbound(phone_number_id, display_phone_number, sender, name, {"type": "image", "image": image},
                    message_id, timestamp, None, waba_id)


def message_status(phone_number_id: str, display_phone_number: str, message_id: str, recipient_id: str,
                   status: str, *, timestamp: int | None = None, error_code: int | None = None,
                   biz_opaque_callback_data: str | None = None, waba_id: str = "102290129340398") -> dict[str, Any]:
    """A status of a message the business sent: sent, delivered, read, or failed (`error_code`)."""
    entry: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(timestamp or int(time.time())),
                             "recipient_id": recipient_id}
    if status in ("sent", "delivered"):
        entry["conversation"] = {"id": secrets.token_hex(16), "origin": {"type": "service"}}
        if status == "sent":
            entry["conversation"]["expiration_timestamp"] = str(int(time.time()) + 86400)
        entry["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "service"}
    if biz_opaque_callback_data is not None:
        entry["biz_opaque_callback_data"] = biz_opaque_callback_data
    if status == "failed":
        entry["errors"] = [status_error(error_code or 131000)]
    return _envelope(phone_number_id, display_phone_number, {"statuses": [entry]}, waba_id)


def new_wamid() -> str:
    """A WhatsApp message id of Meta's form (`wamid.` + base64)."""
    return "wamid." + base64.b64encode(b"HBgL" + secrets.token_bytes(24)).decode()
