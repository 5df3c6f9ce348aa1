"""Where Chromium is and which switches the browser host launches it with."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

DEFAULT_CHROMIUM_PATH = "/usr/bin/chromium"
ENV_CHROMIUM_PATH = "WAGATE_CHROMIUM_PATH"

#: Playwright 1.65's own `--disable-features` list (chromiumSwitches.ts). Chromium honours only the
#: last `--disable-features`, so ours must repeat it; tests/wa_sim checks it against the driver.
PLAYWRIGHT_DISABLED_FEATURES: tuple[str, ...] = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
    "msForceBrowserSignIn",
    "msEdgeUpdateLaunchServicesPreferredVersion",
)

#: "noui": no hidden omnibox popup page and no spare renderer per context (~40 % less memory).
NOUI_DISABLED_FEATURES: tuple[str, ...] = (
    "WebUIOmniboxPopup",
    "WebUIOmniboxAimPopup",
    "WebUIOmniboxFullPopup",
    "SpareRendererForSitePerProcess",
)

#: Keep Chromium quiet on a host that only reaches the sites it is told to.
QUIET_SWITCHES: tuple[str, ...] = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def chromium_path(env: Mapping[str, str] | None = None) -> str:
    """The Chromium binary: `$WAGATE_CHROMIUM_PATH`, else /usr/bin/chromium, else `chromium` on PATH."""
    environ = os.environ if env is None else env
    override = environ.get(ENV_CHROMIUM_PATH)
    if override:
        return override
    if Path(DEFAULT_CHROMIUM_PATH).exists():
        return DEFAULT_CHROMIUM_PATH
    return shutil.which("chromium") or shutil.which("chromium-browser") or DEFAULT_CHROMIUM_PATH


#: Resolved once at import; call `chromium_path()` to re-read the environment.
CHROMIUM_PATH: str = chromium_path()


def disabled_features(noui: bool = True) -> list[str]:
    """Playwright's disabled features, plus the "noui" ones when `noui`."""
    return [*PLAYWRIGHT_DISABLED_FEATURES, *(NOUI_DISABLED_FEATURES if noui else ())]


def launch_args(noui: bool = True, is_root: bool | None = None, extra: Sequence[str] = ()) -> list[str]:
    """Switches for `chromium.launch(args=...)`: sandbox off as root, quiet, and "noui" features."""
    root = os.geteuid() == 0 if is_root is None else is_root
    args = ["--no-sandbox"] if root else []
    args += QUIET_SWITCHES
    args.append("--disable-features=" + ",".join(disabled_features(noui)))
    args += extra
    return args
