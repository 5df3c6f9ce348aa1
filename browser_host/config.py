"""Browser host settings: a typed model read once from the environment at start-up."""

from __future__ import annotations

import os
import socket

from pydantic import BaseModel, Field

from browser_host.chromium import chromium_path
from functions.shared.config import Settings


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
    outbound_wait_seconds: int = Field(default=10, ge=0, le=20)
    outbound_max_attempts: int = Field(default=15, ge=1)
    # How long a received message stays invisible: after a host crash, its in-flight messages (and, FIFO,
    # the rest of their account's queue) come back after this long. Sends take seconds, so keep it short.
    outbound_visibility_timeout: int = Field(default=30, ge=5, le=43200)
    not_connected_timeout: float = Field(default=120.0, gt=0)
    send_timeout: float = Field(default=30.0, gt=0)
    snapshot_interval: float = Field(default=300.0, gt=0)
    health_host: str = "127.0.0.1"
    health_port: int = Field(default=8080, ge=0)
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
            "recovery_backoff_max": "HOST_RECOVERY_BACKOFF_MAX", "outbound_wait_seconds": "HOST_OUTBOUND_WAIT_SECONDS",
            "outbound_max_attempts": "HOST_OUTBOUND_MAX_ATTEMPTS",
            "outbound_visibility_timeout": "HOST_OUTBOUND_VISIBILITY_TIMEOUT",
            "not_connected_timeout": "HOST_NOT_CONNECTED_TIMEOUT", "send_timeout": "HOST_SEND_TIMEOUT",
            "snapshot_interval": "HOST_SNAPSHOT_INTERVAL", "health_host": "HOST_HEALTH_HOST",
            "health_port": "HOST_HEALTH_PORT",
        }
        values: dict[str, object] = {k: environ[v] for k, v in names.items() if environ.get(v)}
        values["settings"] = Settings.from_env(environ)
        return cls.model_validate(values)
