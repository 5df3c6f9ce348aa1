"""The audit log as the API reads it: admins of a tenant page through its entries."""

from __future__ import annotations

from core.errors import Forbidden
from core.models.audit import AuditEntry
from core.models.common import Principal, Role
from core.store.audit import AuditFilter, AuditRepository
from functions.service.context import Services


def list_entries(svc: Services, principal: Principal, where: AuditFilter, limit: int,
                 cursor: str | None) -> tuple[list[AuditEntry], str | None]:
    """`GET /audit`: the caller's tenant's entries, newest first; unscoped admin keys only."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("only admin keys read the audit log", code="forbidden_role")
    if principal.account_ids:
        raise Forbidden("account-scoped keys cannot read the audit log", code="forbidden_scope")
    return AuditRepository(svc.settings.audit_retention_days).query(principal.tenant_id, where, limit, cursor)
