"""`python -m browser_host`: run the browser host until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from browser_host.config import HostConfig
from browser_host.host import BrowserHost


async def _main() -> None:
    host = BrowserHost(HostConfig.from_env())
    loop = asyncio.get_running_loop()
    # Every AWS call runs in a worker thread; the default pool (CPUs + 4) would queue lease renewals behind
    # slow reads when many accounts are busy, and a renewal that waits too long loses the lease.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="aws"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.shutdown)
    await host.run()


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s [browser_host] %(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    asyncio.run(_main())


if __name__ == "__main__":
    main()
