"""The simulator's one error type."""

from __future__ import annotations


class SimError(Exception):
    """A control-API or protocol error with an HTTP status and a machine-readable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
