"""The AWS client factory: one endpoint setting decides between moto, LocalStack and AWS."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from core.config import get_settings


@cache
def client(service: str, long_poll: int = 0) -> Any:
    """A cached boto3 client for `service` pointed at the configured endpoint.

    `long_poll`: the longest SQS `WaitTimeSeconds` it will be used with (its read timeout allows for it).
    """
    settings = get_settings()
    # Retries x timeouts stay below API Gateway's 29 s, so a failing dependency becomes a 503 we answer
    # ourselves instead of a function timeout that skips our cleanup.
    config = Config(retries={"total_max_attempts": settings.aws_max_attempts, "mode": "standard"},
                    connect_timeout=settings.aws_connect_timeout,
                    read_timeout=settings.aws_read_timeout + long_poll, max_pool_connections=64)
    endpoint = settings.endpoint_for(service)
    if settings.target == "localstack" and endpoint == settings.endpoint_url:
        # LocalStack mode: localstack-client knows LocalStack's endpoint and credentials. A service with an
        # endpoint of its own (DynamoDB on moto beside a LocalStack without Docker) is a plain client.
        import localstack_client.session as ls_session  # only needed when targeting LocalStack

        host = urlsplit(endpoint).netloc if endpoint else None
        return ls_session.Session(region_name=settings.region, localstack_host=host).client(service, config=config)
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service, region_name=settings.region, endpoint_url=endpoint, config=config
    )


def reset_clients() -> None:
    """Drop cached clients (after the settings change)."""
    client.cache_clear()
