"""Accounts: create, read, update, delete, lifecycle requests, QR and status transitions."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import segno
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from core import proxies
from core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from core.ids import new_id
from core.models.accounts import (
    Account,
    AccountAction,
    AccountActionAccepted,
    AccountCreate,
    AccountOptions,
    AccountUpdate,
    ConnectionStatus,
    DesiredState,
    PairingCode,
    PairingCodeRequest,
    QrCode,
    StatusChange,
    WebhookSettings,
    WebhookView,
)
from core.models.common import Principal, Role, utcnow
from core.models.proxies import ProxySettings
from core.net import OutboundPolicy, UnresolvedHost, UnsafeUrl, check_url
from core.store import secrets as secret_store
from core.store.accounts import LOGOUT, AccountChange, plain
from core.store.tables import AccountItem
from functions.service import cloud_accounts as cloud
from functions.service.context import Services

STATUS_HISTORY_LIMIT = 20
#: Where accounts migrated before legacy credentials were sealed keep them (`metadata.legacy`): never shown.
LEGACY_CREDENTIALS = frozenset({"session_data", "columns"})


def require_role(principal: Principal, *roles: Role) -> None:
    """Forbidden unless the caller's role is one of `roles`."""
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise Forbidden(f"this needs one of the roles: {allowed}", code="forbidden_role")


WRITERS = (Role.ADMIN, Role.OPERATOR)
#: Who may read what links a phone to an account (QR, pairing code): a viewer would link its own phone.
LINKERS = WRITERS


def shown_metadata(item: AccountItem) -> dict[str, Any]:
    """The account's metadata without legacy credentials (whatsapp-web.js tokens, unknown legacy columns) that
    accounts migrated before they were sealed still hold; they stay in the table, no answer carries them."""
    metadata: dict[str, Any] = plain(item.metadata) or {}
    legacy = metadata.get("legacy")
    if isinstance(legacy, dict) and LEGACY_CREDENTIALS & legacy.keys():
        metadata["legacy"] = {k: v for k, v in legacy.items() if k not in LEGACY_CREDENTIALS}
    return metadata


def to_view(item: AccountItem) -> Account:
    """The API representation of a stored account (webhook secret never included); a stored value it does
    not know (an internal desired state, a damaged history entry) never turns a read into a 500."""
    webhook = plain(item.webhook)
    history = []
    for entry in item.status_history or []:
        with contextlib.suppress(ValidationError, TypeError, ValueError):
            history.append(StatusChange.model_validate(plain(entry)))
    actions = {a.value for a in AccountAction}
    options = plain(item.options) if getattr(item, "options", None) else {}
    shown_options = AccountOptions()
    with contextlib.suppress(ValidationError, TypeError, ValueError):
        shown_options = AccountOptions.model_validate(options)
    return Account(
        account_id=item.account_id, account_name=item.account_name, phone_number=item.phone_number,
        provider="cloud" if cloud.is_cloud(item) else (item.provider or "web"), cloud=cloud.view(item),
        options=shown_options, proxy=proxies.view(plain(item.proxy)) if getattr(item, "proxy", None) else None,
        connection_status=ConnectionStatus(item.connection_status) if item.connection_status in
        ConnectionStatus.__members__ else ConnectionStatus.FAILED,
        status_reason=item.status_reason,
        desired_state=DesiredState.RUNNING if item.desired_state == DesiredState.RUNNING.value
        else DesiredState.STOPPED,
        pending_action=AccountAction(item.pending_action) if item.pending_action in actions else None,
        metadata=shown_metadata(item),
        webhook=WebhookView(url=webhook["url"], events=webhook.get("events", []),
                            has_secret=bool(webhook.get("secret_ciphertext") or webhook.get("secret")))
        if webhook else None,
        status_history=history,
        host_id=item.host_id or None, created_at=item.created_at, updated_at=item.updated_at, version=item.version,
    )


def _check_webhook(svc: Services, webhook: WebhookSettings | None,
                   current: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The webhook map to store: the secret KMS-encrypted (`secret_ciphertext`), never in plaintext."""
    if webhook is None:
        return None
    try:
        check_url(webhook.url, OutboundPolicy.from_settings(svc.settings))
    except UnresolvedHost:
        pass  # every delivery checks again; a name without DNS records yet is no reason to refuse the setting
    except UnsafeUrl as exc:
        raise InvalidRequest(f"webhook url not allowed: {exc}", code="webhook_url_not_allowed") from None
    return webhook_map(webhook, current)


def webhook_map(webhook: WebhookSettings, current: dict[str, Any] | None) -> dict[str, Any]:
    """Deliveries are always signed: a new secret is encrypted; without one the stored secret is kept (and
    encrypted if it predates encryption); with neither the request is invalid (422)."""
    stored = webhook.model_dump(mode="json", exclude_none=True, exclude={"secret"})
    previous = current or {}
    if webhook.secret or previous.get("secret"):
        stored["secret_ciphertext"] = secret_store.encrypt(webhook.secret or str(previous["secret"]))
    elif previous.get("secret_ciphertext"):
        stored["secret_ciphertext"] = previous["secret_ciphertext"]
    else:
        raise RequestValidationError([{"loc": ("body", "webhook", "secret"), "type": "missing",
                                       "msg": "Field required: account webhooks need a signing secret (16-256 chars)"}])
    return stored


def _proxy_map(svc: Services, proxy: ProxySettings) -> dict[str, Any]:
    """The proxy to store (credentials encrypted for the hosts); 400 for a server the outbound rules refuse."""
    try:
        return proxies.stored_map(proxy, OutboundPolicy.from_settings(svc.settings))
    except UnsafeUrl as exc:
        raise InvalidRequest(f"proxy not allowed: {exc}", code="proxy_not_allowed") from None


def _no_proxy_for_cloud() -> InvalidRequest:
    return InvalidRequest("`proxy` is for WhatsApp Web accounts; a Cloud API number connects from AWS",
                          code="not_a_web_account")


def load(svc: Services, principal: Principal, account_id: str) -> AccountItem:
    """The caller's account; outside its tenant or key scope it does not exist."""
    if not principal.can_see(account_id):
        raise NotFound(f"account {account_id} not found", code="account_not_found")
    return svc.accounts.get(account_id, principal.tenant_id)


def create_account(svc: Services, principal: Principal, body: AccountCreate) -> Account:
    require_role(principal, *WRITERS)
    if principal.account_ids:
        raise Forbidden("account-scoped keys cannot create accounts", code="forbidden_scope")
    if body.proxy is not None and body.cloud is not None:
        raise _no_proxy_for_cloud()
    now = utcnow()
    status, reason, desired = ConnectionStatus.STOPPED, "created", DesiredState.STOPPED
    phone, stored_cloud = body.phone_number, None
    if body.cloud is not None:  # a Cloud API number: its token is checked now (WORKING or FAILED with why)
        stored_cloud = cloud.stored_map(body.cloud)
        status, reason, stored_cloud = cloud.check(svc, stored_cloud, body.cloud.access_token)
        desired = DesiredState.RUNNING
        phone = phone or cloud.digits(stored_cloud.get("display_phone_number"))
    item = AccountItem(
        new_id("acc"), tenant_id=principal.tenant_id, account_name=body.account_name,
        phone_number=phone, provider=body.provider, connection_status=status.value,
        tenant_status=f"{principal.tenant_id}#{status.value}", desired_state=desired.value,
        status_reason=None if reason == "created" else reason,
        metadata=body.metadata, webhook=_check_webhook(svc, body.webhook), cloud=stored_cloud,
        options=body.options.model_dump(mode="json") if body.options else None,
        proxy=_proxy_map(svc, body.proxy) if body.proxy else None,
        status_history=[{"at": now, "from": None, "to": status.value, "reason": reason}],
        created_at=now, updated_at=now,
    )
    svc.accounts.create(item)
    return to_view(item)


def list_accounts(
    svc: Services, principal: Principal, *, status: ConnectionStatus | None, limit: int, cursor: str | None
) -> tuple[list[Account], str | None]:
    items, next_cursor = svc.accounts.list_for_tenant(
        principal.tenant_id, status=status, limit=limit, cursor=cursor, account_ids=principal.account_ids
    )
    return [to_view(i) for i in items], next_cursor


def get_account(svc: Services, principal: Principal, account_id: str) -> Account:
    return to_view(load(svc, principal, account_id))


def update_account(
    svc: Services, principal: Principal, account_id: str, body: AccountUpdate, if_match: str | None
) -> Account:
    require_role(principal, *WRITERS)
    item = load(svc, principal, account_id)
    expected = body.version
    if if_match is not None:
        try:
            header_version = int(if_match.strip().removeprefix("W/").strip('"'))
        except ValueError:
            raise InvalidRequest("If-Match must be the account's ETag, e.g. \"3\"", code="invalid_if_match") from None
        if expected is not None and expected != header_version:
            raise InvalidRequest("If-Match and version disagree", code="invalid_if_match")
        expected = header_version
    given = body.model_fields_set - {"version"}
    change = AccountChange()
    if "account_name" in given and body.account_name is not None:
        change.account_name = body.account_name
    if "phone_number" in given:
        change.phone_number = body.phone_number or None
    if "metadata" in given:
        change.metadata = body.metadata or {}
    if "webhook" in given:
        change.webhook = _check_webhook(svc, body.webhook, plain(item.webhook) if item.webhook else None)
    if "options" in given:
        change.options = body.options.model_dump(mode="json") if body.options else None
    if "proxy" in given:
        if body.proxy is not None and cloud.is_cloud(item):
            raise _no_proxy_for_cloud()
        change.proxy = _proxy_map(svc, body.proxy) if body.proxy else None
    if "cloud" in given and body.cloud is not None:
        if not cloud.is_cloud(item):
            raise InvalidRequest("`cloud` credentials are only for provider cloud accounts", code="not_a_cloud_account")
        change.cloud = cloud.stored_map(body.cloud, cloud.credentials(item))
    if not change:
        raise InvalidRequest("nothing to update", code="empty_update")
    return to_view(svc.accounts.edit(item, change, expected))


def delete_account(svc: Services, principal: Principal, account_id: str) -> None:
    """Delete the account: gone for the API at once; a host logs its device out, fails what is still
    queued (account_deleted), forgets its snapshot and removes the item."""
    require_role(principal, Role.ADMIN)
    item = load(svc, principal, account_id)
    if cloud.is_cloud(item):  # no device to log out: gone now (the sweeper fails what is still queued)
        svc.accounts.remove(item.account_id)
        return
    svc.accounts.mark_deleted(item)
    svc.nudges.send(account_id, "delete", item.host_inbox)


def request_action(
    svc: Services, principal: Principal, account_id: str, action: AccountAction
) -> AccountActionAccepted:
    """Record what a browser host should do and nudge the owner (or any free host): it acts within seconds.

    A logout always reaches the device: the owner logs the page out; when no host holds the account,
    a host opens it from its snapshot only to log it out (desired state `logout`), then it is STOPPED.
    """
    require_role(principal, *WRITERS)
    item = load(svc, principal, account_id)
    if cloud.is_cloud(item):
        stored, desired_value = cloud.request_action(svc, item, action)
        return AccountActionAccepted(
            account_id=account_id, action=action,
            desired_state=DesiredState.RUNNING if desired_value == DesiredState.RUNNING.value else DesiredState.STOPPED,
            connection_status=ConnectionStatus(stored.connection_status))
    outcome: dict[str, Any] = {}

    def decide(current: AccountItem) -> AccountChange:
        status = ConnectionStatus(current.connection_status)
        running = current.desired_state == DesiredState.RUNNING.value
        if action in (AccountAction.START, AccountAction.RESTART):
            desired = DesiredState.RUNNING.value
        elif action is AccountAction.STOP:
            desired = DesiredState.STOPPED.value
        else:  # logout keeps a running account running (it shows a new QR); a stopped one needs a page once
            desired = DesiredState.RUNNING.value if running else LOGOUT
        change = AccountChange(
            desired_state=desired, action_requested_at=utcnow(),
            pending_action=action.value if action in (AccountAction.RESTART, AccountAction.LOGOUT) else None)
        new_status = status
        if desired == DesiredState.RUNNING.value and status in (ConnectionStatus.STOPPED, ConnectionStatus.FAILED):
            new_status = ConnectionStatus.STARTING
        elif desired == DesiredState.STOPPED.value and not current.host_id and status is not ConnectionStatus.STOPPED:
            new_status = ConnectionStatus.STOPPED  # no host holds it: nothing to wait for
        if new_status is not status:
            change.status, change.reason = new_status, f"{action.value} requested"
        outcome.update(desired=desired, status=new_status, inbox=current.host_inbox)
        return change

    svc.accounts.request(item, decide)
    svc.nudges.send(account_id, action.value, outcome["inbox"])
    shown = DesiredState.RUNNING if outcome["desired"] == DesiredState.RUNNING.value else DesiredState.STOPPED
    return AccountActionAccepted(account_id=account_id, action=action, desired_state=shown,
                                 connection_status=outcome["status"])


def get_qr(svc: Services, principal: Principal, account_id: str) -> QrCode:
    """The current QR auth code; 409 until the host has one to show. Not for viewers: whoever scans it links a phone."""
    require_role(principal, *LINKERS)
    item = load(svc, principal, account_id)
    cloud.require_web(item, "a QR code")
    qr = plain(item.qr) if item.qr else None
    if item.connection_status != ConnectionStatus.SCAN_QR_CODE.value or not qr or not qr.get("value"):
        raise Conflict(
            "no QR code is available: start the account and wait for status SCAN_QR_CODE",
            code="qr_not_available", details={"connection_status": item.connection_status},
        )
    return QrCode(value=qr["value"], expires_at=qr.get("expires_at"))


def request_pairing_code(
    svc: Services, principal: Principal, account_id: str, body: PairingCodeRequest
) -> PairingCode:
    """Ask the host for a pairing code (the alternative to scanning a QR); the account is started if needed."""
    require_role(principal, *WRITERS)
    item = load(svc, principal, account_id)
    cloud.require_web(item, "a pairing code")
    if item.connection_status == ConnectionStatus.WORKING.value:
        raise Conflict("the account is already linked", code="already_linked")
    assert body.phone_number is not None

    def decide(current: AccountItem) -> AccountChange:
        change = AccountChange(pairing={"phone_number": body.phone_number, "requested_at": utcnow(), "code": None},
                               desired_state=DesiredState.RUNNING.value)
        if ConnectionStatus(current.connection_status) in (ConnectionStatus.STOPPED, ConnectionStatus.FAILED):
            change.status, change.reason = ConnectionStatus.STARTING, "pairing code requested"
        return change

    stored = svc.accounts.request(item, decide)
    svc.nudges.send(account_id, "pairing", stored.host_inbox)
    return PairingCode(phone_number=body.phone_number, status="pending")


def get_pairing_code(svc: Services, principal: Principal, account_id: str) -> PairingCode:
    """The pairing code once the host has it (`status: ready`), else `pending`; 409 if none was asked for.
    Not for viewers (like the QR)."""
    require_role(principal, *LINKERS)
    item = load(svc, principal, account_id)
    pairing = plain(item.pairing) if item.pairing else None
    if not pairing:
        raise Conflict("no pairing code was requested: POST /accounts/{id}/pairing-code first",
                       code="pairing_not_requested", details={"connection_status": item.connection_status})
    code = pairing.get("code")
    return PairingCode(code=code, phone_number=pairing["phone_number"], status="ready" if code else "pending",
                       expires_at=pairing.get("expires_at"))


def render_qr_png(value: str, scale: int = 6) -> bytes:
    """The auth code as a PNG QR image."""
    buffer = io.BytesIO()
    segno.make(value, error="l").save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()
