"""What an account's browser context is made of: its proxy, its snapshot, wa-js and the event bridge."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext
from playwright.async_api import Error as PlaywrightError

from browser_host import bridge
from browser_host.config import HostConfig
from browser_host.crypto import SnapshotError
from browser_host.store import HostStore
from core.net import OutboundPolicy
from core.proxies import for_browser

log = logging.getLogger("browser_host.account")


async def open_context(browser: Browser, snapshot_api: Any, store: HostStore, cfg: HostConfig, account_id: str,
                       proxy_setting: dict[str, Any] | None,
                       on_binding: Callable[..., Any]) -> tuple[BrowserContext, str | None]:
    """A new context for the account, and why its stored snapshot was rejected (None: used, or none stored).

    The proxy's server is checked against the outbound rules again (DNS) and its credentials decrypted (KMS)
    right before use: ProxyRefused when it may not be used, ProxyUnavailable when its name does not resolve now.
    Playwright sends loopback through a context's proxy too (it adds `<-loopback>` to the bypass list); contexts
    without one are unchanged. A snapshot that fails its integrity check is never used (a QR instead); storage
    that cannot be read raises (the caller tries again: a QR then would drop a working link). A context that
    cannot be finished is closed, never returned half-made."""
    proxy = await asyncio.to_thread(for_browser, proxy_setting, OutboundPolicy.from_settings(
        cfg.settings)) if proxy_setting is not None else None
    options: dict[str, Any] = {"proxy": proxy} if proxy else {}
    rejected = None
    if snapshot_api is not None:
        try:
            state = await store.load_snapshot(account_id)
        except SnapshotError as exc:
            log.warning("account %s: snapshot rejected: %s", account_id, exc)
            rejected, state = f"snapshot_rejected: {exc}", None
        except Exception as exc:
            raise RuntimeError(f"snapshot_unavailable: the snapshot could not be read ({type(exc).__name__}); "
                               "trying again") from exc
        context = await snapshot_api.new_context_from_state(browser, state, **options)
    else:
        context = await browser.new_context(**options)
    try:
        if cfg.wajs_path:
            # WhatsApp's CSP blocks script tags: wa-js must come in as an init script, before the app.
            await context.add_init_script(path=Path(cfg.wajs_path))
        await context.add_init_script(bridge.EVENT_BRIDGE)
        await context.expose_binding(bridge.BINDING, on_binding)
    except BaseException:
        with contextlib.suppress(PlaywrightError):
            await context.close()
        raise
    return context, rejected
