"""Cloud API accounts: their credentials (encrypted, write-only), the token check that decides WORKING or FAILED,
and their lifecycle (no browser host ever opens one: the Graph API is their connection)."""

from __future__ import annotations

import time
from typing import Any

from core.cloud import GraphClient, GraphError
from core.errors import Conflict, InvalidRequest
from core.ids import id_floor
from core.models.accounts import (
    CLOUD_PROVIDERS,
    AccountAction,
    CloudCredentials,
    CloudCredentialsUpdate,
    CloudView,
    ConnectionStatus,
    DesiredState,
)
from core.models.common import utcnow
from core.models.messages import MessageStatus
from core.observability import logger
from core.store import secrets as secret_store
from core.store.accounts import AccountChange, plain
from core.store.tables import AccountItem
from functions.service.context import Services

SECRETS = ("access_token", "app_secret", "verify_token")
IDS = ("phone_number_id", "waba_id")


def is_cloud(item: AccountItem) -> bool:
    return (item.provider or "web") in CLOUD_PROVIDERS


def credentials(item: AccountItem) -> dict[str, Any]:
    """The stored `cloud` map (ids, display info, `*_ciphertext`); {} when none is stored."""
    value = plain(item.cloud) if getattr(item, "cloud", None) else {}
    return value if isinstance(value, dict) else {}


def secret(item: AccountItem, name: str) -> str | None:
    """A decrypted secret of the account (`access_token`, `app_secret`, `verify_token`), None when unset or
    unreadable (a damaged record is a missing credential, never a 500)."""
    ciphertext = credentials(item).get(f"{name}_ciphertext")
    if not ciphertext:
        return None
    try:
        return secret_store.decrypt(str(ciphertext))
    except ValueError:
        logger.warning("a stored cloud secret cannot be decrypted", extra={"account_id": item.account_id,
                                                                           "secret": name})
        return None


def view(item: AccountItem) -> CloudView | None:
    if not is_cloud(item):
        return None
    stored = credentials(item)
    return CloudView(
        phone_number_id=_text(stored.get("phone_number_id")), waba_id=_text(stored.get("waba_id")),
        display_phone_number=_text(stored.get("display_phone_number")),
        verified_name=_text(stored.get("verified_name")),
        has_access_token=bool(stored.get("access_token_ciphertext")),
        has_app_secret=bool(stored.get("app_secret_ciphertext")),
        has_verify_token=bool(stored.get("verify_token_ciphertext")),
        webhook_path=f"/webhooks/meta/{item.account_id}",
    )


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def stored_map(given: CloudCredentials | CloudCredentialsUpdate,
               current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `cloud` map to store: ids as given, secrets encrypted; fields not given keep their stored value.
    A new phone number id forgets what was learned about the old one."""
    stored = dict(current or {})
    fields = given.model_fields_set if isinstance(given, CloudCredentialsUpdate) else set(type(given).model_fields)
    for name in IDS:
        if name in fields:
            value = getattr(given, name)
            if name == "phone_number_id" and value != stored.get(name):
                stored.pop("display_phone_number", None)
                stored.pop("verified_name", None)
            if value is None:
                stored.pop(name, None)
            else:
                stored[name] = value
    for name in SECRETS:
        if name in fields:
            value = getattr(given, name)
            if value is None:
                stored.pop(f"{name}_ciphertext", None)
            else:
                stored[f"{name}_ciphertext"] = secret_store.encrypt(value)
    if not stored.get("phone_number_id"):
        raise InvalidRequest("a cloud account needs cloud.phone_number_id", code="cloud_credentials_missing")
    if not stored.get("access_token_ciphertext"):
        raise InvalidRequest("a cloud account needs cloud.access_token", code="cloud_credentials_missing")
    return stored


def graph(svc: Services, token: str) -> GraphClient:
    settings = svc.settings
    return GraphClient(settings.graph_api_base_url, settings.graph_api_version, token,
                       timeout=settings.graph_timeout_seconds)


def check(svc: Services, stored: dict[str, Any], token: str | None) -> tuple[ConnectionStatus, str, dict[str, Any]]:
    """Ask the Graph API for the phone number with the token: (WORKING, "token valid", stored + display info) when
    it answers; (FAILED, reason) otherwise — `token_invalid`, `token_expired`, `phone_number_not_found` or
    `graph_unavailable`."""
    if not token:
        return ConnectionStatus.FAILED, "token_invalid: no access token is stored", stored
    try:
        info = graph(svc, token).phone_number(str(stored["phone_number_id"]))
    except GraphError as exc:
        return ConnectionStatus.FAILED, f"{failure_code(exc)}: {exc.message}"[:500], stored
    updated = dict(stored)
    for name in ("display_phone_number", "verified_name", "quality_rating"):
        if info.get(name):
            updated[name] = str(info[name])
    updated["checked_at"] = utcnow()
    return ConnectionStatus.WORKING, "Cloud API token checked", updated


def failure_code(exc: GraphError) -> str:
    """Why a phone-number check failed, in the account's words."""
    if exc.transport or exc.http_status >= 500:
        return "graph_unavailable"
    if exc.code == 190:
        return "token_expired" if exc.subcode in (463, 464) else "token_invalid"
    if exc.code == 100 or exc.http_status == 404:
        return "phone_number_not_found"
    return "token_invalid"


def digits(display: str | None) -> str | None:
    """`+1 555-010-0000` → `+15550100000` (the account's phone number from Meta's display form)."""
    if not display:
        return None
    number = "".join(ch for ch in display if ch.isascii() and ch.isdigit())
    return f"+{number}" if 8 <= len(number) <= 15 else None


def start_change(svc: Services, item: AccountItem) -> AccountChange:
    """Start (or restart) a cloud account: check its token now and record the outcome."""
    stored = credentials(item)
    if not stored.get("phone_number_id"):
        return AccountChange(desired_state=DesiredState.RUNNING.value, status=ConnectionStatus.FAILED,
                             reason="cloud_credentials_missing: PATCH cloud.phone_number_id and cloud.access_token")
    status, reason, updated = check(svc, stored, secret(item, "access_token"))
    change = AccountChange(desired_state=DesiredState.RUNNING.value, cloud=updated, pending_action=None,
                           action_requested_at=utcnow(), status=status, reason=reason)
    if not item.phone_number and status is ConnectionStatus.WORKING:
        phone = digits(updated.get("display_phone_number"))
        if phone:
            change.phone_number = phone
    return change


def request_action(svc: Services, item: AccountItem, action: AccountAction) -> tuple[AccountItem, str]:
    """start/restart: token check now; stop: STOPPED (messages wait, then fail like a disconnected web account).
    Logout has no meaning for the Cloud API. Returns the stored item and the desired state."""
    if action is AccountAction.LOGOUT:
        raise Conflict("a Cloud API number is not linked to a device: there is nothing to log out; stop it or "
                       "delete it instead", code="not_a_web_account")
    if action is AccountAction.STOP:
        def stop(current: AccountItem) -> AccountChange:
            return AccountChange(desired_state=DesiredState.STOPPED.value, pending_action=None,
                                 action_requested_at=utcnow(), status=ConnectionStatus.STOPPED,
                                 reason="stop requested")
        return svc.accounts.request(item, stop), DesiredState.STOPPED.value
    change = start_change(svc, item)
    stored = svc.accounts.request(item, lambda current: change)
    if stored.connection_status == ConnectionStatus.WORKING.value:
        renudge(svc, stored)
    return stored, DesiredState.RUNNING.value


def renudge(svc: Services, item: AccountItem) -> int:
    """Put an account's waiting messages back on the cloud outbox (after a start, a new token, the sweeper)."""
    since = id_floor("msg", int((time.time() - svc.settings.not_connected_timeout - 60) * 1000))
    count = 0
    for message in svc.messages.pending(item.account_id, since, limit=500):
        if message.status == MessageStatus.QUEUED.value and svc.cloud_outbox.send(
                item.account_id, message.message_id, again=True):
            count += 1
    return count


def require_web(item: AccountItem, what: str) -> None:
    if is_cloud(item):
        raise Conflict(f"{what} is for WhatsApp Web accounts; this is a Cloud API number (provider cloud)",
                       code="not_a_web_account")
