"""wa_sim: a WhatsApp Web simulator served on loopback (see docs/wa_sim.md)."""

from .config import SimConfig
from .server import AsyncWaSim, WaSimServer

__all__ = ["AsyncWaSim", "SimConfig", "WaSimServer"]
