"""Typed settings, read once from the environment the template (or the local runtime) sets."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field

#: The AWS SDKs' service-specific endpoint variables: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_SQS…
SERVICE_ENDPOINT_PREFIX = "AWS_ENDPOINT_URL_"


class Settings(BaseModel):
    """Everything the functions need to know about their environment."""

    region: str = "us-east-1"
    endpoint_url: str | None = None
    # A service's own endpoint when it differs, by client name (`dynamodb`, `s3`, `sqs`…): AWS_ENDPOINT_URL_<SERVICE>,
    # the AWS SDKs' service-specific setting. LocalStack without Docker serves SQS, S3 and KMS but not DynamoDB,
    # which then stays on moto (AWS_ENDPOINT_URL_DYNAMODB).
    service_endpoint_urls: dict[str, str] = Field(default_factory=dict)
    # "aws" talks to AWS (or any endpoint_url); "localstack" builds clients through localstack-client.
    target: str = "aws"
    accounts_table: str = "wagate-accounts"
    messages_table: str = "wagate-messages"
    api_keys_table: str = "wagate-api-keys"
    idempotency_table: str = "wagate-idempotency"
    leases_table: str = "wagate-leases"
    webhooks_table: str = "wagate-webhooks"
    webhook_deliveries_table: str = "wagate-webhook-deliveries"
    producers_table: str = "wagate-producers"
    contacts_table: str = "wagate-contacts"
    # Real time (WebSocket API): tickets, connections and subscriptions; each tenant's recent events (replay).
    realtime_table: str = "wagate-realtime"
    recent_events_table: str = "wagate-recent-events"
    # The audit log (core/store/audit.py): entries expire after this many days (the table's TTL).
    audit_table: str = "wagate-audit"
    audit_retention_days: int = Field(default=365, ge=1)
    # The API's rate limits: a token bucket per key (per_second/burst by role; a key may carry its own).
    rate_limits_table: str = "wagate-rate-limits"
    api_rate_limits: str = Field(default="viewer=5/20,operator=20/60,admin=20/60",
                                 pattern=r"^\s*(viewer|operator|admin)=\d+(\.\d+)?/\d+\s*"
                                         r"(,\s*(viewer|operator|admin)=\d+(\.\d+)?/\d+\s*)*$")
    realtime_url: str = Field(default="", description="wss:// URL of the WebSocket API stage")
    realtime_management_url: str = Field(default="", description="https:// URL of its @connections API")
    realtime_ticket_seconds: int = Field(default=60, ge=5, le=600)
    realtime_replay_seconds: int = Field(default=600, ge=0, le=3600)
    realtime_post_timeout_seconds: float = Field(default=2.0, gt=0, le=10)
    realtime_concurrency: int = Field(default=32, ge=1, le=256, description="posts in flight per invocation")
    # Nudges for accounts no host holds yet; hosts' own inboxes are named host_queue_prefix + host id.
    control_queue_url: str = ""
    host_queue_prefix: str = "wagate-host-"
    events_queue_url: str = ""
    # Events go to this SNS topic when set (its subscriptions: the events queue for webhooks, the real-time
    # queue for the WebSocket fan-out); without it straight to events_queue_url.
    events_topic_arn: str = ""
    ingress_dlq_url: str = ""
    events_dlq_url: str = ""
    # Webhook deliveries: retries wait on this queue (DelaySeconds), never in the function.
    webhook_retry_queue_url: str = ""
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    webhook_max_attempts: int = Field(default=8, ge=1, le=50)
    webhook_retry_base_seconds: float = Field(default=2.0, gt=0)
    webhook_retry_cap_seconds: int = Field(default=900, ge=1, le=900, description="SQS DelaySeconds maximum")
    webhook_concurrency: int = Field(default=32, ge=1, le=256, description="deliveries in flight per invocation")
    webhook_delivery_ttl_days: int = Field(default=7, ge=1)
    media_bucket: str = ""
    snapshot_key_id: str = ""
    bootstrap_tenant: str = "default"
    # Access tokens (`POST /auth/token`): HS256 JWTs; the signing key is kept KMS-encrypted in the api-keys table.
    jwt_ttl_seconds: int = Field(default=900, ge=60, le=12 * 3600)
    jwt_issuer: str = "wagate"
    jwt_audience: str = "wagate-api"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    message_ttl_days: int = Field(default=90, ge=1)
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    # SQS producers: how long a function trusts a producer (and its decrypted secret) it has looked up.
    producer_cache_seconds: float = Field(default=60.0, ge=0)
    legacy_api_enabled: bool = True
    legacy_sunset: str = "2027-06-30"
    # Outbound requests (webhooks, media downloads) refuse private, loopback and metadata addresses; these
    # comma-separated names, IPs and CIDRs are allowed anyway, over http too (core/net.py). Empty when deployed;
    # the local runtime lists loopback for its test receivers.
    outbound_allow_hosts: str = ""
    # `GET /accounts/{id}/contacts/{phone}/exists`: bulk number checks get WhatsApp accounts banned, so each
    # account may ask WhatsApp this often; answers are cached this long.
    contact_checks_per_minute: int = Field(default=10, ge=1)
    contact_cache_hours: int = Field(default=24, ge=1)
    # A queued message of an account that no host drives fails after this long (account_not_connected).
    not_connected_timeout: float = Field(default=120.0, gt=0)
    # An account FAILED (and still meant to run) for this long stops retrying: the sweeper sets it stopped.
    failed_give_up_hours: float = Field(default=24.0, gt=0)
    # How long a caller waits on DynamoDB/SQS before answering 503: below API Gateway's 29 s.
    # (connect + read) x attempts = 24 s < 29 s. DynamoDB and SQS answer in milliseconds when healthy.
    aws_connect_timeout: float = Field(default=2.0, gt=0)
    aws_read_timeout: float = Field(default=6.0, gt=0)
    aws_max_attempts: int = Field(default=3, ge=1, description="attempts in all, the first one included")
    # Meta's Graph API (provider `cloud`); v27.0 is the newest version (2026-11-04), v21.0 ends 2027-01-21.
    graph_api_base_url: str = "https://graph.facebook.com"
    graph_api_version: str = Field(default="v27.0", pattern=r"^v\d+\.\d+$")
    graph_timeout_seconds: float = Field(default=10.0, gt=0, le=25)
    # Cloud accounts' messages: FIFO queue (one group per account keeps their order) the cloud sender drains.
    cloud_outbox_queue_url: str = ""
    cloud_outbox_dlq_url: str = ""
    # Meta's webhooks to /webhooks/meta/{account_id} (public): requests per account and minute before 429.
    meta_webhook_per_minute: int = Field(default=600, ge=1)
    # `GET /health/details` (and `wagate doctor`): the queues it also reads, when an account counts as stuck in
    # a state, and the backlog of a queue that is worth a warning.
    ingress_queue_url: str = ""
    realtime_queue_url: str = ""
    health_stuck_seconds: int = Field(default=900, ge=60)
    health_queue_backlog: int = Field(default=1000, ge=1)

    @property
    def outbound_allow_set(self) -> frozenset[str]:
        """`outbound_allow_hosts` as a set of entries."""
        return frozenset(e.strip() for e in self.outbound_allow_hosts.split(",") if e.strip())

    @property
    def api_rate_by_role(self) -> dict[str, tuple[float, int]]:
        """`api_rate_limits` as role → (requests per second, burst)."""
        rates: dict[str, tuple[float, int]] = {}
        for entry in self.api_rate_limits.split(","):
            role, _, rate = entry.strip().partition("=")
            per_second, _, burst = rate.partition("/")
            rates[role] = (max(float(per_second), 0.001), max(int(burst), 1))
        return rates

    def endpoint_for(self, service: str) -> str | None:
        """The endpoint `service`'s clients use: its own setting when it has one (`AWS_ENDPOINT_URL_<SERVICE>`,
        as the AWS SDKs read it: `AWS_ENDPOINT_URL_S3`, `…_SQS`, `…_KMS`…), else `endpoint_url`."""
        return self.service_endpoint_urls.get(service.lower()) or self.endpoint_url

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Build settings from environment variables (names are the upper-cased field names)."""
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {}
        aliases = {"region": ("AWS_REGION", "AWS_DEFAULT_REGION"), "endpoint_url": ("AWS_ENDPOINT_URL",),
                   "target": ("WAGATE_TARGET",)}
        for name in cls.model_fields:
            for key in aliases.get(name, (name.upper(),)):
                if env.get(key):
                    values[name] = env[key]
                    break
        values["service_endpoint_urls"] = {key.removeprefix(SERVICE_ENDPOINT_PREFIX).lower(): value
                                           for key, value in env.items()
                                           if key.startswith(SERVICE_ENDPOINT_PREFIX) and value}
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once."""
    return Settings.from_env()


def reset_settings() -> None:
    """Forget cached settings (the local runtime and tests call this after changing the environment)."""
    get_settings.cache_clear()
