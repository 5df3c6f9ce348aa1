"""The AWS client factory: one endpoint setting decides between moto, LocalStack and AWS."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from core.config import get_settings


@cache
def client(service: str, long_poll: int = 0) -> Any:
    """A cached boto3 client for `service` pointed at the configured endpoint.

    `long_poll`: the longest SQS `WaitTimeSeconds` it will be used with (its read timeout allows for it).
    """
    settings = get_settings()
    if settings.target == "localstack":
        import localstack_client.session as ls_session  # only needed when targeting LocalStack

        return ls_session.Session(region_name=settings.region).client(service)
    # Retries x timeouts stay below API Gateway's 29 s, so a failing dependency becomes a 503 we answer
    # ourselves instead of a function timeout that skips our cleanup.
    config = Config(retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
                    connect_timeout=settings.aws_connect_timeout,
                    read_timeout=settings.aws_read_timeout + long_poll, max_pool_connections=64)
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service, region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
    )


def reset_clients() -> None:
    """Drop cached clients (after the settings change)."""
    client.cache_clear()
