"""The AWS client factory: one endpoint setting decides between moto, LocalStack and AWS."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from functions.shared.config import get_settings

_CONFIG = Config(retries={"max_attempts": 5, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)


@cache
def client(service: str) -> Any:
    """A cached boto3 client for `service` pointed at the configured endpoint."""
    settings = get_settings()
    if settings.target == "localstack":
        import localstack_client.session as ls_session  # only needed when targeting LocalStack

        return ls_session.Session(region_name=settings.region).client(service)
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service, region_name=settings.region, endpoint_url=settings.endpoint_url, config=_CONFIG
    )


def reset_clients() -> None:
    """Drop cached clients (after the settings change)."""
    client.cache_clear()
