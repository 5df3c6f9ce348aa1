"""`/audit`: the tenant's audit log (admins). Read only: no route changes or deletes an entry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BeforeValidator

from core.models.accounts import ACCOUNT_ID_PATTERN
from core.models.audit import ACTION_FILTER_PATTERN, AuditEntry
from core.models.common import Page
from core.models.validators import iso_datetime_text
from core.store.audit import AuditFilter
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS, Cursor
from functions.service import audit as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]


@router.get("/audit", summary="The tenant's audit log, newest first (admins)", tags=["audit"], responses=ERRORS)
def list_audit(
    account_id: Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN,
                                            description="Only entries about this account.")] = None,
    actor: Annotated[str | None, Query(min_length=1, max_length=200,
                                       description="Only this actor: a key id, a host id, or for refused "
                                                   "credentials a key prefix or `anonymous`.")] = None,
    action: Annotated[str | None, Query(pattern=ACTION_FILTER_PATTERN,
                                        description="Only this action (`account.start`), or a family of them "
                                                    "(`account.*`).")] = None,
    since: Annotated[datetime | None, BeforeValidator(iso_datetime_text), Query(
        description="Entries at or after this time (ISO 8601; UTC unless it says otherwise).")] = None,
    until: Annotated[datetime | None, BeforeValidator(iso_datetime_text), Query(
        description="Entries at or before this time (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 50,
    cursor: Cursor = None,
) -> Page[AuditEntry]:
    where = AuditFilter(account_id=account_id, actor=actor, action=action, since=since, until=until)
    items, next_cursor = service.list_entries(services(), principal_of(router), where, limit, cursor)
    return Page[AuditEntry](items=items, next_cursor=next_cursor)
