"""`python -m infra.wa_sim --host 127.0.0.1 --port 3100`: run the simulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .config import SimConfig
from .server import AsyncWaSim


def parse_args(argv: list[str] | None = None) -> SimConfig:
    """Command-line flags -> `SimConfig`."""
    d = SimConfig()
    p = argparse.ArgumentParser(prog="python -m infra.wa_sim", description=__doc__)
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--qr-interval", type=float, default=d.qr_interval, help="seconds between QR codes")
    p.add_argument("--qr-max-rotations", type=int, default=d.qr_max_rotations,
                   help="QR codes shown before the QR goes idle until refreshQR()")
    p.add_argument("--slow-latency", type=float, default=d.slow_latency,
                   help='seconds added each way while a number\'s network is "slow"')
    p.add_argument("--unregistered-prefix", default=d.unregistered_prefix,
                   help="numbers starting with these digits are not on WhatsApp")
    a = p.parse_args(argv)
    return SimConfig(host=a.host, port=a.port, qr_interval=a.qr_interval,
                     qr_max_rotations=a.qr_max_rotations, slow_latency=a.slow_latency,
                     unregistered_prefix=a.unregistered_prefix)


async def serve(config: SimConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    sim = AsyncWaSim(config)
    url = await sim.start()
    print(f"wa_sim listening on {url}  (page: {url}/  phone: {url}/phone)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
