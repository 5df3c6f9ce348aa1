"""Pure mapping of one legacy `whatsapp_sessions` row to an accounts-table item (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from core.models.accounts import ACCOUNT_ID_PATTERN, ConnectionStatus, DesiredState
from core.models.legacy import STATUS_MAP  # shared with the /sessions API
from core.models.validators import normalise_phone
from infra.migration.codec import checksum

KNOWN_COLUMNS = frozenset({
    "session_id", "workspace_id", "phone_number", "status", "provider_type", "session_name",
    "session_data", "created_at", "updated_at", "deleted_at",
})
S = ConnectionStatus
# An unknown status is never guessed to be "connected": the number stays stopped until an operator
# starts it, and the original value is kept in metadata.legacy.status.
UNKNOWN_STATUS = (S.STOPPED, False)
PROVIDERS = {"webjs": "web", "web": "web", "whatsapp-web.js": "web", "wwebjs": "web",
             "meta": "cloud", "cloud": "cloud", "cloud_api": "cloud"}
EPOCH = "1970-01-01T00:00:00.000Z"
_ID = re.compile(ACCOUNT_ID_PATTERN)
_JID = re.compile(r"^(?P<number>[^@:]+)(?::\d+)?@(?:c\.us|s\.whatsapp\.net)$")
_FRACTION = re.compile(r"\.(\d{7,})")
MAX_NAME = 100  # AccountCreate.account_name's limit
MAX_KEY_BYTES = 2048  # DynamoDB's partition-key limit


class InvalidRow(ValueError):
    """A row that cannot become an account (reported, never written)."""


@dataclass(frozen=True)
class Sealed:
    """Legacy credentials still in plaintext, in the `legacy_secrets` field of a mapped item.

    The runner replaces it with its KMS envelope before writing (the codec cannot serialise a Sealed, so it never
    reaches DynamoDB in plaintext); checksums see only that credentials are there, never their bytes.
    """

    values: dict[str, Any] = field(repr=False)


@dataclass(frozen=True)
class MappedAccount:
    """An accounts-table item plus what the report needs to know about how it was built."""

    item: dict[str, Any]
    legacy_status: str
    warnings: tuple[str, ...] = ()
    checksum: str = field(default="")

    @property
    def account_id(self) -> str:
        return str(self.item["account_id"])

    @property
    def deleted(self) -> bool:
        return self.item.get("deleted_at") is not None

    @property
    def status_mapping(self) -> str:
        return f"{self.legacy_status} -> {self.item['connection_status']}"


def text(value: Any) -> str | None:
    """A column as text: `None`/"" are missing, integral numbers lose their ".0"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | Decimal | float):
        number = Decimal(str(value))
        return str(int(number)) if number == number.to_integral_value() else str(number)
    result = str(value)
    return result if result.strip() else None


def normalise_timestamp(value: Any) -> tuple[str | None, bool]:
    """ISO 8601 UTC with a Z, and whether that form lost precision (nanoseconds).

    Accepts ISO 8601 with or without offset (naive means UTC), SQL `YYYY-MM-DD HH:MM:SS`,
    RFC 2822 and epoch seconds/milliseconds. Raises ValueError when it is none of these.
    """
    if value is None or (isinstance(value, str) and (not value.strip() or value.startswith("0000-00-00"))):
        return None, False  # MySQL's zero date means "never" (e.g. not deleted)
    if isinstance(value, bool):
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, int | float | Decimal) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            number = Decimal(str(value).strip())
            seconds = number / 1000 if abs(number) >= Decimal(10) ** 11 else number  # 10^11 s: year 5138
            moment = datetime.fromtimestamp(float(seconds), UTC)
            lossy = seconds != seconds.quantize(Decimal("0.000001"))
        except (ArithmeticError, OSError, ValueError) as error:  # NaN, infinities, out of range
            raise ValueError(f"not a timestamp: {value!r}") from error
        return _format(moment), lossy
    raw = str(value).strip()
    lossy = False
    fraction = _FRACTION.search(raw)
    if fraction and fraction.group(1)[6:].strip("0"):
        lossy = True
    candidate = re.sub(r"\s*(UTC|GMT)$", "+00:00", raw)
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            moment = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError) as error:
            raise ValueError(f"not a timestamp: {raw!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # SQL exports drop the zone; the legacy store wrote UTC
    return _format(moment.astimezone(UTC)), lossy


def _format(moment: datetime) -> str:
    # Milliseconds like the rest of the product; microseconds only when the source has them.
    spec = "milliseconds" if moment.microsecond % 1000 == 0 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def normalise_phone_number(value: Any) -> str | None:
    """E.164 digits without `+`; accepts WhatsApp JIDs (`5511...@c.us`); None if unusable."""
    raw = text(value)
    if raw is None:
        return None
    raw = raw.strip()
    jid = _JID.match(raw)
    try:
        return normalise_phone(jid.group("number") if jid else raw)
    except ValueError:
        return None


def map_status(legacy: Any) -> tuple[ConnectionStatus, bool, bool]:
    """New status, whether it should run, and whether the legacy value was known."""
    key = (text(legacy) or "").strip().lower()
    if key in STATUS_MAP:
        status, running = STATUS_MAP[key]
        return status, running, True
    return UNKNOWN_STATUS[0], UNKNOWN_STATUS[1], False


def map_row(row: Mapping[str, Any], keep_columns: frozenset[str] = frozenset()) -> MappedAccount:
    """The account item for one legacy row; raises InvalidRow when the row cannot be keyed.

    `session_data` (whatsapp-web.js tokens: whoever holds them is logged in as the number) and unknown columns
    (which may be credentials too) are sealed: kept encrypted in `legacy_secrets`, named in
    `metadata.legacy.sealed`, returned by no API. Unknown columns named in `keep_columns` stay readable in
    `metadata.legacy.columns`.
    """
    account_id = text(row.get("session_id"))
    if account_id is None:
        raise InvalidRow("missing session_id")
    if len(account_id.encode()) > MAX_KEY_BYTES:
        raise InvalidRow("session_id longer than DynamoDB's 2048-byte key limit")
    tenant_id = text(row.get("workspace_id"))
    if tenant_id is None:
        raise InvalidRow("missing workspace_id (no tenant to own the account)")

    warnings: list[str] = []
    legacy: dict[str, Any] = {}
    if not _ID.match(account_id):
        warnings.append("account_id_outside_api_pattern")

    legacy_status = row.get("status")
    if "status" in row:
        legacy["status"] = legacy_status
    status, running, known = map_status(legacy_status)
    status_label = text(legacy_status) or "(none)"
    if not known:
        warnings.append("unknown_status")
        reason = f"unknown legacy status {status_label!r}, stopped until started"
    else:
        reason = f"migrated from legacy status {status_label}"

    provider_raw = text(row.get("provider_type"))
    provider = PROVIDERS.get((provider_raw or "webjs").strip().lower(), provider_raw or "web")
    if provider_raw is not None and provider_raw not in ("webjs", "meta"):
        legacy["provider_type"] = row.get("provider_type")
    if provider != "web":
        running = False  # browser hosts serve only "web" numbers: a running non-web one would flap
    if provider == "cloud":
        # A Cloud API number: the legacy row has no usable credentials, so nothing can drive it yet.
        status = ConnectionStatus.STOPPED
        reason = (f"migrated from legacy status {status_label}; a Cloud API number: PATCH its cloud credentials "
                  "(phone_number_id, access_token, app_secret, verify_token), then start it")

    phone = normalise_phone_number(row.get("phone_number"))
    raw_phone = row.get("phone_number")
    if text(raw_phone) is not None and text(raw_phone) != phone:
        legacy["phone_number"] = raw_phone  # formatting or an unusable value: keep what was there
        if phone is None:
            warnings.append("unusable_phone_number")

    name_raw = text(row.get("session_name"))
    name = (name_raw or "").strip()[:MAX_NAME].strip()
    if not name:
        name = (f"WhatsApp +{phone}" if phone else f"WhatsApp {account_id}")[:MAX_NAME]
    if name_raw is not None and name_raw != name:
        legacy["session_name"] = row.get("session_name")

    times: dict[str, str | None] = {}
    for column in ("created_at", "updated_at", "deleted_at"):
        try:
            times[column], lossy = normalise_timestamp(row.get(column))
        except ValueError:
            times[column], lossy = None, True
            warnings.append(f"unparseable_{column}")
            if column == "deleted_at":
                times[column] = EPOCH  # something is there: a row marked deleted stays deleted
        if lossy:
            legacy.setdefault("timestamps", {})[column] = row.get(column)
    created_at = times["created_at"] or times["updated_at"] or times["deleted_at"] or EPOCH
    if times["created_at"] is None:
        warnings.append("missing_created_at")
    updated_at = times["updated_at"] or created_at
    deleted_at = times["deleted_at"]
    if deleted_at is not None:
        running = False

    sealed: dict[str, Any] = {}
    session_data = row.get("session_data")
    if session_data is not None and session_data != "":
        sealed["session_data"] = session_data  # kept as the source had it: JSON text stays text
    unknown = {str(k): v for k, v in row.items() if k not in KNOWN_COLUMNS}
    if kept := {k: v for k, v in unknown.items() if k in keep_columns}:
        legacy["columns"] = kept
    if hidden := {k: v for k, v in unknown.items() if k not in keep_columns}:
        sealed["columns"] = hidden
    if sealed:
        legacy["sealed"] = sorted([*(["session_data"] if "session_data" in sealed else []), *hidden])
        warnings.append("sealed_legacy_credentials")

    item: dict[str, Any] = {
        "account_id": account_id,
        "tenant_id": tenant_id,
        "account_name": name,
        "phone_number": phone,
        "provider": provider,
        "connection_status": status.value,
        "tenant_status": f"{tenant_id}#{status.value}",
        "status_reason": reason,
        "desired_state": (DesiredState.RUNNING if running else DesiredState.STOPPED).value,
        "metadata": {"legacy": legacy},
        "status_history": [{"at": updated_at, "from": None, "to": status.value,
                            "reason": f"migrated from legacy status {status_label}"}],
        "created_at": created_at,
        "updated_at": updated_at,
        "deleted_at": deleted_at,
        "legacy_secrets": Sealed(sealed) if sealed else None,
        "version": 1,
    }
    return MappedAccount(item=item, legacy_status=status_label if known else f"{status_label} (unknown)",
                         warnings=tuple(warnings), checksum=checksum(item))
