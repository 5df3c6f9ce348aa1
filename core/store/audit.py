"""The audit log: entries are only ever added (`record`) and read back newest first (`query`); the table's TTL
removes them after the retention period. Nothing here updates or deletes an entry."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pynamodb.expressions.condition import Condition

from core.errors import InvalidRequest
from core.ids import ALPHABET, id_floor, new_id
from core.models.audit import AUDIT_ID_PATTERN, Actor, ActorType, AuditEntry, Target
from core.observability import logger
from core.store.conditions import decode_cursor, encode_cursor
from core.store.tables import AuditItem

# How many entries one page may read to fill itself when filters skip most of them: a page costs at most this
# much (a sparse filter over a long history answers a short page with a cursor rather than reading it all).
MAX_SCANNED = 2000
_PAGE_SIZE = 200
_AUDIT_ID = re.compile(AUDIT_ID_PATTERN)


@dataclass(frozen=True)
class AuditFilter:
    """What `GET /audit` narrows entries to (all optional)."""

    account_id: str | None = None
    actor: str | None = None
    action: str | None = None  # exact, or a prefix with `.*` (`account.*`)
    since: datetime | None = None
    until: datetime | None = None


def _millis(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _clip(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


class AuditRepository:
    """Adds entries and pages through a tenant's (or one of its accounts') entries, newest first."""

    def __init__(self, retention_days: int) -> None:
        self.retention_days = retention_days

    def record(self, tenant_id: str, action: str, actor: Actor, target: Target, *, result: str = "ok",
               account_id: str | None = None, reason: str | None = None, route: str | None = None,
               source_ip: str | None = None, user_agent: str | None = None,
               request_id: str | None = None) -> AuditEntry | None:
        """Store one entry. Never raises: an audit write must not break what it records (None when it failed)."""
        audit_id = new_id("aud")
        entry = AuditEntry(
            id=audit_id, tenant_id=tenant_id, at=_time_of(audit_id), actor=Actor(type=actor.type, id=actor.id[:200]),
            action=action[:100], target=Target(type=target.type[:50], id=_clip(target.id, 200)),
            account_id=_clip(account_id, 200), result=result[:50], reason=_clip(reason, 500),
            route=_clip(route, 300), source_ip=_clip(source_ip, 64), user_agent=_clip(user_agent, 300),
            request_id=_clip(request_id, 200))
        try:
            self.put(entry)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the caller's own work goes on
            logger.warning("audit entry not recorded", extra={"action": entry.action, "tenant_id": tenant_id,
                                                              "error": type(exc).__name__})
            return None
        return entry

    def put(self, entry: AuditEntry) -> None:
        """Add an entry (a new id: never overwrites one)."""
        AuditItem(
            entry.tenant_id, entry.id, at=entry.at, actor_type=entry.actor.type.value, actor_id=entry.actor.id,
            action=entry.action, target_type=entry.target.type, target_id=entry.target.id,
            account_id=entry.account_id,
            tenant_account=f"{entry.tenant_id}#{entry.account_id}" if entry.account_id else None,
            result=entry.result, reason=entry.reason, route=entry.route, source_ip=entry.source_ip,
            user_agent=entry.user_agent, request_id=entry.request_id,
            expires_at=int(time.time()) + self.retention_days * 86400,
        ).save(condition=AuditItem.audit_id.does_not_exist())

    def query(self, tenant_id: str, where: AuditFilter, limit: int,
              cursor: str | None = None) -> tuple[list[AuditEntry], str | None]:
        """One page of the tenant's entries matching `where`, newest first, and the cursor of the next page."""
        start_after = _cursor_id(cursor)
        hash_key, index = tenant_id, None
        if where.account_id:
            hash_key, index = f"{tenant_id}#{where.account_id}", AuditItem.account_index
        low = id_floor("aud", _millis(where.since)) if where.since else "aud_"
        high = id_floor("aud", _millis(where.until) + 1) if where.until else "aud_~"
        if start_after is not None:
            high = min(high, start_after)
        if low >= high:
            return [], None
        # Both bounds inclusive: `high` is the floor of the next millisecond, or the last entry already shown.
        query = index.query if index is not None else AuditItem.query
        results = query(hash_key, AuditItem.audit_id.between(low, high), filter_condition=_filter(where),
                        scan_index_forward=False, page_size=_PAGE_SIZE)
        found: list[AuditEntry] = []
        for page in results.page_iter:
            items = page.get("Items", [])
            for position, raw in enumerate(items):
                item = AuditItem.from_raw_data(raw)
                if item.tenant_id != tenant_id or item.audit_id == start_after:
                    continue
                found.append(_entry(item))
                if len(found) == limit:
                    more = position + 1 < len(items) or results.page_iter.last_evaluated_key is not None
                    return found, _next_cursor(item.audit_id) if more else None
            last = results.page_iter.last_evaluated_key
            if last is None:
                return found, None
            if results.page_iter.total_scanned_count >= MAX_SCANNED:
                return found, _next_cursor(str(last["audit_id"]["S"]))
        return found, None


def _filter(where: AuditFilter) -> Condition | None:
    condition: Condition | None = None
    parts: list[Condition] = []
    if where.actor:
        parts.append(AuditItem.actor_id == where.actor)
    if where.action:
        if where.action.endswith(".*"):
            parts.append(AuditItem.action.startswith(where.action[:-1]))
        else:
            parts.append(AuditItem.action == where.action)
    for part in parts:
        condition = part if condition is None else condition & part
    return condition


def _time_of(audit_id: str) -> str:
    """The time an id was made, as `at` (the same millisecond, so `since`/`until` cut ids and times alike)."""
    millis = 0
    for char in audit_id[4:14]:
        millis = millis * 32 + ALPHABET.index(char)
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _next_cursor(audit_id: str) -> str | None:
    return encode_cursor({"audit_id": {"S": audit_id}})


def _cursor_id(cursor: str | None) -> str | None:
    """The id a cursor continues after; only an id, so a forged cursor can move within the tenant, never out."""
    key = decode_cursor(cursor)
    if key is None:
        return None
    value = key.get("audit_id", {}).get("S") if set(key) == {"audit_id"} else None
    if not isinstance(value, str) or not _AUDIT_ID.match(value):
        raise InvalidRequest("cursor is not valid", code="invalid_cursor")
    return value


def _entry(item: AuditItem) -> AuditEntry:
    return AuditEntry(
        id=item.audit_id, tenant_id=item.tenant_id, at=item.at,
        actor=Actor(type=ActorType(item.actor_type), id=item.actor_id), action=item.action,
        target=Target(type=item.target_type, id=item.target_id), account_id=item.account_id, result=item.result,
        reason=item.reason, route=item.route, source_ip=item.source_ip, user_agent=item.user_agent,
        request_id=item.request_id)
