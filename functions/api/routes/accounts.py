"""`/accounts`: WhatsApp accounts and their lifecycle."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.accounts import (
    ACCOUNT_ID_PATTERN,
    Account,
    AccountAction,
    AccountActionAccepted,
    AccountCreate,
    AccountUpdate,
    ConnectionStatus,
    PairingCode,
    PairingCodeRequest,
    QrCode,
)
from core.models.common import ErrorBody, Page
from core.observability import logger, metrics
from functions.api.context import principal_of
from functions.service import accounts as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
AccountId = Annotated[str, Path(pattern=ACCOUNT_ID_PATTERN, description="The account id.")]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page.")]
#: An ETag as GET gives it (`"3"`), weak or unquoted too; anything else is 400 invalid_if_match.
IF_MATCH_PATTERN = r'^[ \t]*(W/)?"?[0-9]{1,18}"?[ \t]*$'
ERRORS: dict[int, Any] = {
    code: {"description": desc, "content": {"application/json": {"model": ErrorBody}}}
    for code, desc in ((400, "Bad request"), (401, "No or bad API key"), (403, "Role or scope forbids it"),
                       (404, "Not found"), (422, "Validation error"))
}


def _json(status: int, model: Any, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=model, headers=headers)


def _etag(account: Account) -> dict[str, str]:
    return {"ETag": f'"{account.version}"'}


@router.post("/accounts", summary="Create a WhatsApp account", tags=["accounts"],
             responses={201: {"description": "Created", "content": {"application/json": {"model": Account}}}, **ERRORS})
def create_account(body: AccountCreate) -> Response[Account]:
    account = service.create_account(services(), principal_of(router), body)
    logger.info("account created", extra={"account_id": account.account_id})
    metrics.add_metric(name="AccountsCreated", unit="Count", value=1)
    return _json(201, account, {**_etag(account), "Location": f"/accounts/{account.account_id}"})


@router.get("/accounts", summary="List accounts", tags=["accounts"], responses=ERRORS)
def list_accounts(
    status: Annotated[ConnectionStatus | None, Query(description="Only accounts in this status.")] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[Account]:
    items, next_cursor = service.list_accounts(services(), principal_of(router), status=status, limit=limit,
                                               cursor=cursor)
    return Page[Account](items=items, next_cursor=next_cursor)


@router.get("/accounts/<account_id>", summary="Get an account", tags=["accounts"], responses=ERRORS)
def get_account(account_id: AccountId) -> Response[Account]:
    account = service.get_account(services(), principal_of(router), account_id)
    return _json(200, account, _etag(account))


@router.patch("/accounts/<account_id>", summary="Update an account (optimistic locking)", tags=["accounts"],
              responses={412: {"description": "Version conflict"}, **ERRORS})
def update_account(
    account_id: AccountId,
    body: AccountUpdate,
    if_match: Annotated[str | None, Header(alias="If-Match", description="ETag from a GET.",
                                           json_schema_extra={"pattern": IF_MATCH_PATTERN})] = None,
) -> Response[Account]:
    account = service.update_account(services(), principal_of(router), account_id, body, if_match)
    return _json(200, account, _etag(account))


@router.delete("/accounts/<account_id>", summary="Delete an account", tags=["accounts"],
               responses={204: {"description": "Deleted"}, **ERRORS})
def delete_account(account_id: AccountId) -> Response[None]:
    service.delete_account(services(), principal_of(router), account_id)
    logger.info("account deleted", extra={"account_id": account_id})
    return Response(status_code=204, body=None)


def _action(account_id: str, action: AccountAction) -> Response[AccountActionAccepted]:
    accepted = service.request_action(services(), principal_of(router), account_id, action)
    logger.info("account action requested", extra={"account_id": account_id, "action": action.value})
    return _json(202, accepted)


@router.post("/accounts/<account_id>/start", summary="Start the account's WhatsApp Web session",
             tags=["lifecycle"], responses=ERRORS, status_code=202)
def start_account(account_id: AccountId) -> Response[AccountActionAccepted]:
    return _action(account_id, AccountAction.START)


@router.post("/accounts/<account_id>/stop", summary="Stop it (stays linked)", tags=["lifecycle"], responses=ERRORS,
             status_code=202)
def stop_account(account_id: AccountId) -> Response[AccountActionAccepted]:
    return _action(account_id, AccountAction.STOP)


@router.post("/accounts/<account_id>/restart", summary="Restart it", tags=["lifecycle"], responses=ERRORS,
             status_code=202)
def restart_account(account_id: AccountId) -> Response[AccountActionAccepted]:
    return _action(account_id, AccountAction.RESTART)


@router.post("/accounts/<account_id>/logout", summary="Unlink the device (a new QR is needed)",
             tags=["lifecycle"], responses={409: {"description": "A Cloud API number has no device"}, **ERRORS},
             status_code=202)
def logout_account(account_id: AccountId) -> Response[AccountActionAccepted]:
    return _action(account_id, AccountAction.LOGOUT)


@router.get("/accounts/<account_id>/qr", summary="Current QR code (PNG, or JSON with ?format=raw)",
            tags=["lifecycle"], responses={200: {"description": "PNG image or JSON",
                                                 "content": {"image/png": {}, "application/json": {"model": QrCode}}},
                                           409: {"description": "No QR yet"}, **ERRORS})
def get_qr(  # type: ignore[no-untyped-def]  # unannotated: powertools would JSON-encode the PNG
    account_id: AccountId,
    format: Annotated[str, Query(pattern="^(png|raw)$", description="`raw` for JSON.")] = "png",
):
    return qr_response(service.get_qr(services(), principal_of(router), account_id), format)


def qr_response(qr: QrCode, fmt: str) -> Response[Any]:
    """The QR as JSON (`raw`) or PNG; never cached, it rotates."""
    if fmt == "raw":
        return _json(200, qr, {"Cache-Control": "no-store"})
    return Response(status_code=200, content_type="image/png", body=service.render_qr_png(qr.value),
                    headers={"Cache-Control": "no-store"}, compress=False)


@router.post("/accounts/<account_id>/pairing-code", summary="Link by pairing code instead of a QR",
             tags=["lifecycle"], responses={202: {"description": "Requested; poll GET for the code",
                                                  "content": {"application/json": {"model": PairingCode}}},
                                            409: {"description": "Already linked"}, **ERRORS})
def request_pairing_code(account_id: AccountId, body: PairingCodeRequest) -> Response[PairingCode]:
    pairing = service.request_pairing_code(services(), principal_of(router), account_id, body)
    logger.info("pairing code requested", extra={"account_id": account_id})
    return _json(202, pairing)


@router.get("/accounts/<account_id>/pairing-code", summary="The pairing code to type on the phone",
            tags=["lifecycle"], responses={409: {"description": "None requested"}, **ERRORS})
def get_pairing_code(account_id: AccountId) -> Response[PairingCode]:
    return _json(200, service.get_pairing_code(services(), principal_of(router), account_id),
                 {"Cache-Control": "no-store"})
