"""Typed settings of one simulator instance, read once at start."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Settings of one wa_sim instance (several may run in one process)."""

    host: str = "127.0.0.1"
    port: int = 3100
    #: Seconds between two QR refs, like WhatsApp Web's ~20 s rotation.
    qr_interval: float = 20.0
    #: Refs issued before the QR goes idle ("click to reload") until refreshQR().
    qr_max_rotations: int = 5
    #: Latency added in each direction while an account's network is "slow".
    slow_latency: float = 1.5
    #: Numbers whose digits start with this prefix are "not on WhatsApp".
    unregistered_prefix: str = "999"
    #: Companion devices a number may link at once (WhatsApp allows 4).
    max_devices: int = 4
    #: Seconds a pairing code stays valid (WhatsApp: about 3 minutes).
    pairing_code_ttl: float = 180.0
