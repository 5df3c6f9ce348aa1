"""The browser host: one Chromium, one context per account it holds a lease on, reconciled from DynamoDB."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from browser_host.chromium import launch_args
from browser_host.config import HostConfig
from browser_host.health import HealthServer, readiness
from browser_host.runner import AccountRunner, HostParts, iso_in
from browser_host.state import Backoff
from browser_host.store import HostStore, s3_and_kms
from core.errors import LeaseLost
from core.models.accounts import AccountAction
from core.models.accounts import ConnectionStatus as S
from core.store.accounts import DELETED, LOGOUT, RUNNING, STOPPED, AccountChange, pacing_of, plain
from core.store.leases import HostInfo, now_ms
from core.store.tables import AccountItem

log = logging.getLogger("browser_host")
PAIRING_TTL_SECONDS = 180  # how long WhatsApp accepts a pairing code


def _snapshot_parts(config: HostConfig) -> tuple[Any, Any]:
    """(SnapshotStore, module) when snapshots are configured, else (None, None)."""
    settings = config.settings
    if not settings.media_bucket or not settings.snapshot_key_id:
        return None, None
    from browser_host import snapshot
    from browser_host.crypto import SnapshotStore

    s3, kms = s3_and_kms()
    return SnapshotStore(s3, kms, settings.media_bucket, settings.snapshot_key_id), snapshot


class BrowserHost:
    """Claims accounts (leases), runs a page per account, answers nudges, hands accounts over on exit."""

    def __init__(self, config: HostConfig) -> None:
        self.config = config
        snapshots, snapshot_api = _snapshot_parts(config)
        self.store = HostStore(config.settings, config.host_id, snapshots)
        self.parts = HostParts(config, self.store, snapshot_api, self._forget_runner)
        self.metrics = self.parts.metrics
        self.runners: dict[str, AccountRunner] = {}
        self._starting: set[str] = set()
        self.browser: Browser | None = None
        self._playwright: Playwright | None = None
        self._opening = asyncio.Semaphore(config.open_concurrency)
        # Chromium's temp folders go here, so a killed browser's leftovers can be removed safely.
        self._tmp = Path(tempfile.mkdtemp(prefix="wagate-host-"))
        self._stop = asyncio.Event()
        self._poke = asyncio.Event()
        self._nudged: set[str] = set()
        self._claims: set[asyncio.Task[None]] = set()
        self._health = HealthServer(config.health_host, config.health_port, self.health, self.prometheus,
                                    metrics_bind=config.metrics_bind)
        self._browser_restarts = 0
        self._live_hosts = 1
        self._registered_at: float | None = None  # monotonic time of the last heartbeat the store accepted

    # --- browser --------------------------------------------------------------------------------------------

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
        log.error("the browser disconnected; relaunching and reopening every account")
        asyncio.get_running_loop().create_task(self._relaunch())

    async def _relaunch(self) -> None:
        # Pages are gone but the leases are still ours: hand them back, then reopen what we can hold.
        for runner in list(self.runners.values()):
            self.runners.pop(runner.account_id, None)
            with contextlib.suppress(Exception):
                await runner.stop(reason="browser restarted", save=False, final_status=S.STARTING)
        _clean(self._tmp)
        await asyncio.sleep(Backoff(1.0, 30.0).delay(self._browser_restarts))
        self._browser_restarts += 1
        await self._launch()
        self._poke.set()

    # --- reconcile ------------------------------------------------------------------------------------------

    def _forget_runner(self, account_id: str) -> None:
        self.runners.pop(account_id, None)

    async def reconcile(self) -> None:
        """Drive the accounts this host holds; claim free ones up to its share; clean up after dead hosts."""
        store, ttl = self.store, self.config.lease_ttl
        await store.register(os.getpid(), self.config.max_accounts, len(self.runners), ttl)
        self._registered_at = time.monotonic()
        hosts = await store.hosts()
        now = now_ms()
        live = {h.host_id for h in hosts if h.alive(now)} | {self.config.host_id}
        self._live_hosts = len(live)
        accounts = {a.account_id: a for a in await store.accounts_needing_a_host()}
        nudged, self._nudged = self._nudged, set()
        for account_id, runner in list(self.runners.items()):
            if account_id in self._starting:
                continue  # its claim task drives it once the page is open
            # The index is eventually consistent: an account someone just asked about is read for sure.
            account = None if account_id in nudged else accounts.get(account_id)
            account = account or await store.read_account(account_id)
            try:
                await self._drive(runner, account)
            except LeaseLost:
                runner.abandon("a write was refused")
        if self._stop.is_set():
            return
        share = min(self.config.max_accounts, math.ceil(len(accounts) / max(1, len(live))))
        room = share - len(self.runners) - len(self._starting)
        # Free: nobody holds it, its holder is gone, or it names this host but no runner here drives it (a
        # lease this host lost and may take back). `claim` itself decides: it refuses a live lease.
        mine = self.config.host_id
        free = [a for a in accounts.values() if a.account_id not in self.runners
                and a.account_id not in self._starting
                and (not a.host_id or a.host_id not in live or a.host_id == mine)]
        # Deletions and logouts first: they are what a user waits for.
        free.sort(key=lambda a: a.desired_state == RUNNING)
        claims = free[:max(0, room)]
        for account in claims:
            # In the background: opening pages (HOST_OPEN_CONCURRENCY at a time) must not hold up the loop.
            self._starting.add(account.account_id)
            task = asyncio.create_task(self._claim(account), name=f"claim-{account.account_id}")
            self._claims.add(task)
            task.add_done_callback(self._claims.discard)
        if not claims and not self._starting and self.config.rebalance and len(self.runners) > share:
            await self._hand_over(len(self.runners) - share)
        for host in hosts:
            if not host.alive(now - int(3 * ttl * 1000)) and host.host_id != self.config.host_id:
                await self._forget_host(host)

    async def _forget_host(self, host: HostInfo) -> None:
        with contextlib.suppress(Exception):
            await self.store.forget_host(host)
            log.info("removed dead host %s and its inbox", host.host_id)

    async def _claim(self, account: AccountItem, reason: str = "a host took the account") -> None:
        account_id = account.account_id
        self._starting.add(account_id)
        try:
            if self.browser is None or not self.browser.is_connected():
                return  # the browser is being relaunched: the next reconcile claims it
            async with self._opening:
                lease = await self.store.claim(account_id, self.config.lease_ttl)
                if lease is None:
                    return  # another host got there first
                fresh = await self.store.attach(lease)
                if fresh is None:
                    await self.store.release(lease)
                    return
                log.info("account %s: lease %d taken", account_id, lease.token)
                self.metrics["leases_taken"] = self.metrics.get("leases_taken", 0) + 1
                runner = AccountRunner(self.parts, lease, fresh, self.browser)
                self.runners[account_id] = runner
                try:
                    await runner.start(reason)
                except Exception as exc:
                    log.exception("account %s failed to start", account_id)
                    await runner.recover(f"start failed: {str(exc).splitlines()[0][:200]}")
        except Exception:  # AWS unreachable while claiming: the next reconcile tries again
            log.exception("account %s: claiming failed", account_id)
            return
        finally:
            self._starting.discard(account_id)
        if account_id in self.runners:
            try:
                await self._drive(self.runners[account_id], fresh, just_started=True)
            except LeaseLost:
                self.runners[account_id].abandon("a write was refused")

    async def _drive(self, runner: AccountRunner, account: AccountItem | None, just_started: bool = False) -> None:
        """Make one held account match what is asked of it."""
        if runner.lost:
            return
        if account is None:  # removed for good by someone else: nothing to write about
            self.runners.pop(runner.account_id, None)
            await runner.stop(reason="account removed", save=False, final_status=None)
            return
        runner.outbox.repace(pacing_of(account))
        desired = account.desired_state
        if account.deleted_at or desired == DELETED:
            await self._delete(runner, account)
        elif desired == LOGOUT:
            await self._logout_stopped(runner, account)
        elif desired == STOPPED:
            self.runners.pop(runner.account_id, None)
            # A runner that gave up keeps its FAILED status (and reason) visible instead of turning STOPPED.
            await runner.stop(reason="stop requested", final_status=None if runner.failed else S.STOPPED)
        elif account.pending_action and (just_started or account.action_requested_at != runner.handled_action_at):
            await self._act(runner, account, just_started)
        elif runner.failed and account.connection_status != S.FAILED.value:
            # Gave up earlier; a new `start` (the API moved it out of FAILED) means try again.
            await self._restart(runner, "start requested")
        else:
            await self._pairing(runner, account)

    async def _act(self, runner: AccountRunner, account: AccountItem, just_started: bool) -> None:
        runner.handled_action_at = account.action_requested_at
        if account.pending_action == AccountAction.LOGOUT.value:
            await runner.logout()
        elif account.pending_action == AccountAction.RESTART.value and not just_started:
            await self.store.clear_pending_action(runner.lease, account.action_requested_at)
            await self._restart(runner, "restart requested")
            return
        await self.store.clear_pending_action(runner.lease, account.action_requested_at)

    async def _restart(self, runner: AccountRunner, reason: str) -> None:
        """Close and reopen the page under the same lease (no QR: the context keeps its storage)."""
        self.runners.pop(runner.account_id, None)
        await runner.stop(reason=reason, final_status=None)
        fresh = await self.store.read_account(runner.account_id)
        if fresh is not None and fresh.desired_state == RUNNING:
            await self._claim(fresh, reason)

    async def _logout_stopped(self, runner: AccountRunner, account: AccountItem) -> None:
        """A logout asked while no host held the account: log the device out, then leave it stopped."""
        await runner.logout()
        await self.store.clear_pending_action(runner.lease, account.action_requested_at,
                                              then=AccountChange(desired_state=STOPPED))
        self.runners.pop(runner.account_id, None)
        await runner.stop(reason="logged out", save=False, final_status=S.STOPPED)

    async def _delete(self, runner: AccountRunner, account: AccountItem) -> None:
        """Finish a deletion: nothing more goes out, the device is logged out, then the item is removed."""
        runner.deleted_pending = True
        await runner.outbox.stop(self.config.send_timeout + 5)
        await runner.outbox.fail_all("account_deleted", "the account was deleted before sending")
        await runner.logout("account deleted")
        lease = runner.lease
        self.runners.pop(runner.account_id, None)
        await runner.stop(reason="account deleted", save=False, final_status=None)
        with contextlib.suppress(LeaseLost):
            await self.store.purge(lease)
        log.info("account %s deleted: device logged out, item removed", account.account_id)

    async def _pairing(self, runner: AccountRunner, account: AccountItem) -> None:
        """Answer a pairing-code request once the page shows the login screen."""
        pairing = plain(account.pairing) if account.pairing is not None else None
        if not pairing or pairing.get("code") or pairing.get("requested_at") == runner.handled_pairing_at:
            return
        if runner.status is not S.SCAN_QR_CODE:
            return  # still starting: the next reconcile asks
        runner.handled_pairing_at = pairing.get("requested_at")
        try:
            code = await runner.request_pairing_code(str(pairing["phone_number"]))
        except Exception as exc:  # noqa: BLE001 - any page error: report and let the next request retry
            log.warning("account %s: pairing code failed: %s", account.account_id, str(exc).splitlines()[0][:200])
            return
        await self.store.set_pairing_code(runner.lease, pairing.get("requested_at"), code,
                                          iso_in(PAIRING_TTL_SECONDS))

    async def _hand_over(self, count: int) -> None:
        """Another host joined: give it linked accounts (snapshot, release) a few at a time. Accounts showing a
        QR stay: someone may be scanning it."""
        movable = [r for r in self.runners.values() if r.status is S.WORKING and not r.failed]
        for runner in movable[-min(count, self.config.open_concurrency):]:
            log.info("account %s: handed over to balance the fleet", runner.account_id)
            self.runners.pop(runner.account_id, None)
            await runner.stop(reason="handed over to another host", final_status=S.STARTING, hand_over=True)

    # --- nudges ---------------------------------------------------------------------------------------------

    async def _listen(self, control: bool) -> None:
        """Nudges: a message for an account we hold wakes its outbox; anything else reconciles now."""
        while not self._stop.is_set():
            try:
                nudges = await self.store.receive_nudges(self.config.inbox_wait_seconds, control=control)
            except Exception as exc:  # noqa: BLE001 - queue unreachable: the reconcile loop still runs
                log.warning("receiving nudges failed: %s", type(exc).__name__)
                await asyncio.sleep(2)
                continue
            for nudge in nudges:
                runner = self.runners.get(nudge["account_id"])
                if runner is not None and nudge.get("reason") == "message":
                    runner.outbox.wake()
                elif runner is not None and nudge.get("reason") == "contact_check":
                    runner.check_contacts()
                else:
                    self._nudged.add(nudge["account_id"])
                    self._poke.set()

    # --- run ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until `shutdown()`; then hand every account over and stop in order."""
        self._playwright = await async_playwright().start()
        await self._launch()
        await self.store.open_inbox()
        await self._health.start()
        listeners = [asyncio.create_task(self._listen(control), name=f"nudges-{control}") for control in (False, True)]
        log.info("browser host %s ready (pid %d)", self.config.host_id, os.getpid())
        try:
            while not self._stop.is_set():
                try:
                    await self.reconcile()
                except Exception:
                    log.exception("reconcile failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), self.config.reconcile_interval)
                self._poke.clear()
        finally:
            await self._shutdown(listeners)

    async def _shutdown(self, listeners: list[asyncio.Task[None]]) -> None:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        # Pages still opening finish first (bounded by the page timeout), so their leases are released too.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._claims, return_exceptions=True),
                                   self.config.page_ready_timeout)
        runners = list(self.runners.values())
        self.runners.clear()
        # In-flight sends finish, linked accounts are snapshotted, leases released: another host (or this one
        # restarted) takes over at once, without a new QR.
        await asyncio.gather(*(r.stop(reason="host shut down; waiting for another host", final_status=S.STARTING,
                                      hand_over=True) for r in runners), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.store.register(os.getpid(), self.config.max_accounts, 0, 0)
            await self.store.close_inbox()
        if self.browser is not None:
            with contextlib.suppress(PlaywrightError):
                await self.browser.close()
        await self._health.stop()
        if self._playwright is not None:
            await self._playwright.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def shutdown(self) -> None:
        self._stop.set()
        self._poke.set()

    # --- health ---------------------------------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Ready (200) once its browser runs and its heartbeat is current: it reached its stores and holds its
        registration, so the accounts it claims are served."""
        browser = self.browser
        waiting = readiness(browser is not None and browser.is_connected(), self._registered_at,
                            self.config.lease_ttl, time.monotonic())
        return not waiting, {
            "status": "ok" if not waiting else "degraded", "ready": not waiting, "waiting_for": waiting,
            "host_id": self.config.host_id, "pid": os.getpid(),
            "account_ids": sorted(self.runners), "accounts": self.status_counts(),
            "capacity": self.config.max_accounts, "live_hosts": self._live_hosts,
        }

    def prometheus(self) -> tuple[dict[str, int], dict[str, float]]:
        return self.status_counts(), dict(self.metrics)

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(r.status.value for r in self.runners.values()))


def _clean(folder: Path) -> None:
    """A killed Chromium leaves its `org.chromium.Chromium.*` folders behind."""
    for child in folder.glob("org.chromium.Chromium.*"):
        shutil.rmtree(child, ignore_errors=True)
