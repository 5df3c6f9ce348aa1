"""Browser host settings: a typed model read once from the environment at start-up."""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from browser_host.chromium import chromium_path
from core.config import Settings


class HostConfig(BaseModel):
    """Everything the host needs; AWS names come from the same Settings the functions use."""

    host_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    wa_url: str = "https://web.whatsapp.com"
    # Path of @wppconnect/wa-js's dist/wppconnect-wa.js; None when the page provides WPP (wa_sim).
    wajs_path: str | None = None
    chromium_path: str = Field(default_factory=chromium_path)
    headless: bool = True
    max_accounts: int = Field(default=50, ge=1)
    open_concurrency: int = Field(default=4, ge=1)
    reconcile_interval: float = Field(default=2.0, gt=0)
    heartbeat_interval: float = Field(default=15.0, gt=0)
    heartbeat_timeout: float = Field(default=10.0, gt=0)
    page_ready_timeout: float = Field(default=60.0, gt=0)
    max_recoveries: int = Field(default=5, ge=1)
    recovery_backoff: float = Field(default=1.0, gt=0)
    recovery_backoff_max: float = Field(default=60.0, gt=0)
    # Long poll of the host's inbox and of the control queue (nudges; AWS allows up to 20 s).
    inbox_wait_seconds: int = Field(default=10, ge=0, le=20)
    # Hand-overs of one message to WhatsApp Web before it fails send_failed (waiting for an ack is free).
    outbound_max_attempts: int = Field(default=5, ge=1)
    # Each account's outbox is re-read this often even without a nudge (a lost nudge costs at most this).
    sweep_interval: float = Field(default=15.0, gt=0)
    # Account leases: a dead host's accounts are taken over after this long; renewed every third of it.
    lease_ttl: float = Field(default=30.0, ge=3)
    # Rebalance when another host joins: hand accounts over until each host holds about its share.
    rebalance: bool = True
    not_connected_timeout: float = Field(default=120.0, gt=0)
    send_timeout: float = Field(default=30.0, gt=0)
    snapshot_interval: float = Field(default=300.0, gt=0)
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8080, ge=0)
    # /health stays on health_host (loopback: the container's health check); when metrics_host is set, /metrics
    # alone is served on metrics_host:metrics_port too (the image: 0.0.0.0:9464, for a scraper in the task's
    # network). It holds counts by status and counters, never an account id, phone number or host id.
    metrics_host: str | None = None
    metrics_port: int = Field(default=9464, ge=0)
    # The stack's LogLevel parameter, which the template gives the functions and the host task alike.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    settings: Settings = Field(default_factory=Settings)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> HostConfig:
        """`HOST_*` and `WAGATE_*` variables, plus the functions' table/queue settings."""
        environ = dict(os.environ if env is None else env)
        names = {
            "host_id": "HOST_ID", "wa_url": "WAGATE_WA_URL", "wajs_path": "WAGATE_WAJS_PATH",
            "chromium_path": "WAGATE_CHROMIUM_PATH", "headless": "HOST_HEADLESS",
            "max_accounts": "HOST_MAX_ACCOUNTS", "open_concurrency": "HOST_OPEN_CONCURRENCY",
            "reconcile_interval": "HOST_RECONCILE_INTERVAL", "heartbeat_interval": "HOST_HEARTBEAT_INTERVAL",
            "heartbeat_timeout": "HOST_HEARTBEAT_TIMEOUT", "page_ready_timeout": "HOST_PAGE_READY_TIMEOUT",
            "max_recoveries": "HOST_MAX_RECOVERIES", "recovery_backoff": "HOST_RECOVERY_BACKOFF",
            "recovery_backoff_max": "HOST_RECOVERY_BACKOFF_MAX", "inbox_wait_seconds": "HOST_INBOX_WAIT_SECONDS",
            "outbound_max_attempts": "HOST_OUTBOUND_MAX_ATTEMPTS", "sweep_interval": "HOST_SWEEP_INTERVAL",
            "lease_ttl": "HOST_LEASE_TTL", "rebalance": "HOST_REBALANCE",
            "not_connected_timeout": "HOST_NOT_CONNECTED_TIMEOUT", "send_timeout": "HOST_SEND_TIMEOUT",
            "snapshot_interval": "HOST_SNAPSHOT_INTERVAL", "health_host": "HOST_HEALTH_HOST",
            "health_port": "HOST_HEALTH_PORT", "metrics_host": "HOST_METRICS_BIND", "metrics_port": "HOST_METRICS_PORT",
            "log_level": "POWERTOOLS_LOG_LEVEL",
        }
        values: dict[str, object] = {k: environ[v] for k, v in names.items() if environ.get(v)}
        values["settings"] = Settings.from_env(environ)
        return cls.model_validate(values)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def metrics_bind(self) -> tuple[str, int] | None:
        """Where /metrics is served on its own, or None (then only beside /health)."""
        return None if self.metrics_host is None else (self.metrics_host, self.metrics_port)
