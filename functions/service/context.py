"""Builds the repositories once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from core.config import Settings, get_settings
from core.store import tables
from core.store.accounts import AccountRepository
from core.store.api_keys import ApiKeyRepository, SigningKeyRepository
from core.store.contacts import ContactRepository
from core.store.leases import LeaseRepository
from core.store.media import MediaStore
from core.store.messages import IdempotencyRepository, MessageRepository
from core.store.producers import ProducerRepository
from core.store.queues import CloudOutbox, DeadLetters, EventBus, Nudges
from core.store.realtime import ConnectionPoster, RealtimeRepository, RecentEvents
from core.store.webhooks import DeliveryRepository, EventDeadLetters, RetryQueue, WebhookRepository


@dataclass(frozen=True)
class Services:
    """Everything the service functions depend on, so tests can build it against any endpoint."""

    settings: Settings
    accounts: AccountRepository
    messages: MessageRepository
    api_keys: ApiKeyRepository
    signing_keys: SigningKeyRepository
    idempotency: IdempotencyRepository
    leases: LeaseRepository
    producers: ProducerRepository
    contacts: ContactRepository
    nudges: Nudges
    cloud_outbox: CloudOutbox
    events: EventBus
    ingress_dlq: DeadLetters
    webhooks: WebhookRepository
    deliveries: DeliveryRepository
    webhook_retries: RetryQueue
    events_dlq: EventDeadLetters
    media: MediaStore
    realtime: RealtimeRepository
    recent_events: RecentEvents
    connections: ConnectionPoster


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
        signing_keys=SigningKeyRepository(),
        idempotency=IdempotencyRepository(),
        leases=LeaseRepository(),
        producers=ProducerRepository(),
        contacts=ContactRepository(),
        nudges=Nudges(settings.control_queue_url),
        cloud_outbox=CloudOutbox(settings.cloud_outbox_queue_url),
        events=EventBus.from_settings(settings),
        ingress_dlq=DeadLetters(settings.ingress_dlq_url),
        webhooks=WebhookRepository(),
        deliveries=DeliveryRepository(settings.webhook_delivery_ttl_days),
        webhook_retries=RetryQueue(settings.webhook_retry_queue_url),
        events_dlq=EventDeadLetters(settings.events_dlq_url),
        media=MediaStore(settings.media_bucket),
        realtime=RealtimeRepository(),
        recent_events=RecentEvents(settings.realtime_replay_seconds),
        connections=ConnectionPoster(settings.realtime_management_url, settings.region,
                                     settings.realtime_post_timeout_seconds),
    )
