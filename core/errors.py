"""Domain exceptions. The API maps each class to one HTTP status in one place (api/errors.py)."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service layer raises on purpose."""

    code = "error"

    def __init__(self, message: str, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class InvalidRequest(DomainError):
    code = "invalid_request"


class Unauthorized(DomainError):
    code = "unauthorized"


class Forbidden(DomainError):
    code = "forbidden"


class NotFound(DomainError):
    code = "not_found"


class Conflict(DomainError):
    code = "conflict"


class Unprocessable(DomainError):
    """Well-formed, but refused for what it leads to (e.g. a webhook URL that fails its handshake)."""

    code = "unprocessable"


class PreconditionFailed(DomainError):
    code = "precondition_failed"


class Gone(DomainError):
    code = "gone"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class RateLimited(DomainError):
    """Too many requests of a kind; retry after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, details: Any = None, code: str | None = None) -> None:
        super().__init__(message, details, code)
        self.retry_after = max(1, int(retry_after))


class DependencyFailure(DomainError):
    """An AWS dependency failed in a way the caller may retry."""

    code = "service_unavailable"


class LeaseLost(Exception):
    """A host write was refused: another host now holds the account (a newer lease token)."""

    def __init__(self, account_id: str) -> None:
        super().__init__(f"lease of account {account_id} was lost")
        self.account_id = account_id
