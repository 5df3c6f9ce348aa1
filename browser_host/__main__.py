"""`python -m browser_host`: run the browser host until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from concurrent.futures import ThreadPoolExecutor

from browser_host.config import HostConfig
from browser_host.host import BrowserHost


async def _main(config: HostConfig) -> None:
    host = BrowserHost(config)
    loop = asyncio.get_running_loop()
    # Every AWS call runs in a worker thread; the default pool (CPUs + 4) would queue lease renewals behind
    # slow reads when many accounts are busy, and a renewal that waits too long loses the lease.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=64, thread_name_prefix="aws"))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, host.shutdown)
    await host.run()


def main() -> None:
    config = HostConfig.from_env()
    level = logging.getLevelName(config.log_level)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s [browser_host] %(levelname)s %(name)s: %(message)s")
    # botocore's and PynamoDB's DEBUG lines carry request bodies (message texts, phone numbers), the others'
    # are noise: these stay at WARNING whatever the stack's level.
    for library in ("botocore", "boto3", "pynamodb", "s3transfer", "urllib3"):
        logging.getLogger(library).setLevel(max(logging.WARNING, level))
    asyncio.run(_main(config))


if __name__ == "__main__":
    main()
