"""Builds the repositories once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from functions.dal import tables
from functions.dal.accounts import AccountRepository
from functions.dal.api_keys import ApiKeyRepository
from functions.dal.messages import DeadLetters, IdempotencyRepository, MessageRepository, OutboundQueue
from functions.dal.snapshots import SnapshotObjects
from functions.shared.config import Settings, get_settings


@dataclass(frozen=True)
class Services:
    """Everything the service functions depend on, so tests can build it against any endpoint."""

    settings: Settings
    accounts: AccountRepository
    messages: MessageRepository
    api_keys: ApiKeyRepository
    idempotency: IdempotencyRepository
    outbound: OutboundQueue
    ingress_dlq: DeadLetters
    snapshots: SnapshotObjects


@lru_cache(maxsize=1)
def services() -> Services:
    """The process-wide services, bound to the settings read at start-up."""
    settings = get_settings()
    tables.bind(settings)
    return Services(
        settings=settings,
        accounts=AccountRepository(),
        messages=MessageRepository(),
        api_keys=ApiKeyRepository(),
        idempotency=IdempotencyRepository(),
        outbound=OutboundQueue(settings.outbound_queue_url),
        ingress_dlq=DeadLetters(settings.ingress_dlq_url),
        snapshots=SnapshotObjects(settings.media_bucket),
    )
