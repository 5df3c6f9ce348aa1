"""The browser host: one Chromium, one context per account, reconciled from DynamoDB."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from browser_host.account import AccountRunner, HostServices, _iso_in
from browser_host.chromium import launch_args
from browser_host.config import HostConfig
from browser_host.health import HealthServer
from browser_host.outbound import OutboundConsumer
from browser_host.state import Backoff
from browser_host.store import HostStore
from functions.dal.tables import AccountItem
from functions.models.accounts import AccountAction, ConnectionStatus, DesiredState
from functions.service.accounts import PAIRING_TTL_SECONDS, plain
from functions.shared.aws import client

log = logging.getLogger("browser_host")


def _snapshot_parts(config: HostConfig) -> tuple[Any, Any]:
    """(SnapshotStore, module) when snapshots are configured, else (None, None)."""
    settings = config.settings
    if not settings.media_bucket or not settings.snapshot_key_id:
        return None, None
    try:
        from browser_host import snapshot
    except ImportError:
        log.warning("browser_host.snapshot is unavailable: accounts will need a new QR after a restart")
        return None, None
    store = snapshot.SnapshotStore(client("s3"), client("kms"), settings.media_bucket, settings.snapshot_key_id)
    return store, snapshot


class BrowserHost:
    """Owns the browser, the account runners, the outbound consumers and the health endpoint."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        snapshots, snapshot_api = _snapshot_parts(config)
        self.services = HostServices(config, HostStore(config.settings), snapshots, snapshot_api)
        self.runners: dict[str, AccountRunner] = {}
        self.metrics: dict[str, float] = {}
        self.browser: Browser | None = None
        self._playwright: Playwright | None = None
        self._opening = asyncio.Semaphore(config.open_concurrency)
        # Chromium's temp folders go here, so a killed browser's leftovers can be removed safely.
        self._tmp = Path(tempfile.mkdtemp(prefix="wagate-host-"))
        self._stop = asyncio.Event()
        self._consumers = [OutboundConsumer(self.services, self.runners.get, self.metrics)]
        self._health = HealthServer(self)
        self._browser_restarts = 0

    # --- browser ----------------------------------------------------------------------------------------

    async def _launch(self) -> Browser:
        assert self._playwright is not None
        browser = await self._playwright.chromium.launch(
            executable_path=self.config.chromium_path, headless=self.config.headless, args=launch_args(),
            env={**os.environ, "TMPDIR": str(self._tmp)})
        browser.on("disconnected", lambda _: self._on_browser_gone())
        self.browser = browser
        return browser

    def _on_browser_gone(self) -> None:
        if self._stop.is_set():
            return
        log.error("the browser disconnected; relaunching and restoring every account")
        asyncio.get_running_loop().create_task(self._relaunch())

    async def _relaunch(self) -> None:
        runners = list(self.runners.values())
        for runner in runners:
            self.runners.pop(runner.account_id, None)
            with contextlib.suppress(Exception):
                await runner.stop(save=False, final_status=None)
        _clean(self._tmp)
        delay = Backoff(1.0, 30.0).delay(self._browser_restarts)
        self._browser_restarts += 1
        await asyncio.sleep(delay)
        await self._launch()  # the reconcile loop reopens the accounts from their snapshots

    # --- reconcile --------------------------------------------------------------------------------------

    def runner(self, account_id: str) -> AccountRunner | None:
        return self.runners.get(account_id)

    async def reconcile(self) -> None:
        """Make the pages on this host match the desired state in DynamoDB."""
        store = self.services.store
        wanted = {a.account_id: a for a in await self.services.run(store.running_accounts)}
        for account_id, runner in list(self.runners.items()):
            account = wanted.get(account_id) or await self.services.run(store.get_account, account_id)
            if account is None or account.desired_state != DesiredState.RUNNING.value:
                await self._stop_runner(account_id, account)
            elif account.pending_action and account.action_requested_at != runner.handled_action_at:
                await self._act(runner, account)
            elif runner.failed and account.connection_status != ConnectionStatus.FAILED.value:
                # Gave up earlier; a new `start` (the API moved it out of FAILED) means try again.
                self.runners.pop(account_id, None)
                await runner.stop(reason="start requested", final_status=None)
                await self._start_runner(account, "start requested")
            else:
                await self._pairing(runner, account)
        to_start: list[AccountItem] = []
        for account_id, account in wanted.items():
            if account_id in self.runners:
                continue
            if len(self.runners) + len(to_start) >= self.config.max_accounts:
                log.warning("at capacity (%d accounts); %s waits", self.config.max_accounts, account_id)
                break
            if account.connection_status == ConnectionStatus.FAILED.value and account.pending_action is None \
                    and account.host_id == self.config.host_id:
                continue  # gave up here; a new start/restart request clears it
            to_start.append(account)
        # Opened in parallel, HOST_OPEN_CONCURRENCY at a time (the semaphore in _start_runner).
        await asyncio.gather(*(self._start_runner(account) for account in to_start))

    async def _start_runner(self, account: AccountItem, reason: str = "starting the browser page") -> None:
        if self.browser is None or not self.browser.is_connected():
            return
        async with self._opening:
            runner = AccountRunner(self.services, account, self.browser)
            self.runners[account.account_id] = runner
            try:
                await runner.start(reason)
            except Exception as exc:
                log.exception("account %s failed to start", account.account_id)
                await runner.recover(f"start failed: {str(exc).splitlines()[0][:200]}")
        if account.pending_action:
            await self.services.run(self.services.store.clear_pending_action, account.account_id,
                                    account.action_requested_at)

    async def _stop_runner(self, account_id: str, account: AccountItem | None) -> None:
        runner = self.runners.pop(account_id)
        if account is not None and account.pending_action == AccountAction.LOGOUT.value:
            await runner.logout()
            await self.services.run(self.services.store.clear_pending_action, account_id,
                                    account.action_requested_at)
        # A runner that gave up keeps its FAILED status (and reason) visible instead of turning STOPPED.
        await runner.stop(reason="stop requested" if account else "account deleted",
                          final_status=ConnectionStatus.STOPPED if account and not runner.failed else None)
        if account is None and self.services.snapshots:
            await self.services.run(self.services.snapshots.delete, account_id)

    async def _pairing(self, runner: AccountRunner, account: AccountItem) -> None:
        """Answer a pairing-code request once the page shows the login screen."""
        pairing = plain(account.pairing) if account.pairing is not None else None
        if not pairing or pairing.get("code") or pairing.get("requested_at") == runner.handled_pairing_at:
            return
        if runner.status is not ConnectionStatus.SCAN_QR_CODE:
            return  # still starting: the next reconcile asks
        runner.handled_pairing_at = pairing.get("requested_at")
        try:
            code = await runner.request_pairing_code(str(pairing["phone_number"]))
        except Exception as exc:  # noqa: BLE001 - any page error: report and let the next request retry
            log.warning("account %s: pairing code failed: %s", account.account_id, str(exc).splitlines()[0][:200])
            return
        requested_at = pairing.get("requested_at")
        expires_at = _iso_in(PAIRING_TTL_SECONDS)

        def build(item: AccountItem) -> list[Any] | None:
            current = plain(item.pairing) if item.pairing is not None else {}
            if current.get("requested_at") != requested_at:
                return None  # superseded by a newer request
            return [AccountItem.pairing.set({**current, "code": code, "expires_at": expires_at})]

        await self.services.run(self.services.store.update_account, account.account_id, build)

    async def _act(self, runner: AccountRunner, account: AccountItem) -> None:
        runner.handled_action_at = account.action_requested_at
        if account.pending_action == AccountAction.LOGOUT.value:
            await runner.logout()
        elif account.pending_action == AccountAction.RESTART.value:
            self.runners.pop(account.account_id, None)
            await runner.stop(reason="restart requested", final_status=None)
            fresh = await self.services.run(self.services.store.get_account, account.account_id)
            if fresh is not None:
                await self._start_runner(fresh, "restart requested")
                return
        await self.services.run(self.services.store.clear_pending_action, account.account_id,
                                account.action_requested_at)

    # --- run --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `shutdown()`; then stop in order: consumers, accounts, browser, Playwright."""
        self._playwright = await async_playwright().start()
        await self._launch()
        await self._health.start()
        consumers = [asyncio.create_task(c.run(), name="outbound") for c in self._consumers]
        log.info("browser host %s ready", self.config.host_id)
        try:
            while not self._stop.is_set():
                try:
                    await self.reconcile()
                except Exception:
                    log.exception("reconcile failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.config.reconcile_interval)
        finally:
            for consumer in self._consumers:
                consumer.stop()
            for task in consumers:
                task.cancel()
            await asyncio.gather(*consumers, return_exceptions=True)
            await asyncio.gather(*(r.stop(reason="host shutting down", final_status=None)
                                   for r in self.runners.values()), return_exceptions=True)
            for account_id in list(self.runners):
                # Another host (or this one restarted) takes over from the snapshot.
                await self.services.run(self.services.store.set_status, account_id, ConnectionStatus.STARTING,
                                        "host shut down; waiting for a host", None, "")
            self.runners.clear()
            if self.browser is not None:
                with contextlib.suppress(PlaywrightError):
                    await self.browser.close()
            await self._health.stop()
            await self._playwright.stop()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def shutdown(self) -> None:
        self._stop.set()

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(r.status.value for r in self.runners.values()))


def _clean(folder: Path) -> None:
    """A killed Chromium leaves its `org.chromium.Chromium.*` folders behind."""
    for child in folder.glob("org.chromium.Chromium.*"):
        shutil.rmtree(child, ignore_errors=True)
