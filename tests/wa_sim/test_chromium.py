"""browser_host.chromium: binary discovery and launch switches."""

from __future__ import annotations

import re
from pathlib import Path

import playwright

from browser_host import chromium


def _driver_disabled_features() -> list[str]:
    """Playwright's own disabled-features list, read from the installed driver."""
    lib = Path(playwright.__file__).parent / "driver" / "package" / "lib"
    for js in sorted(lib.rglob("*.js")):
        text = js.read_text(errors="ignore")
        m = re.search(r"disabledFeatures = \[(.*?)\]\.filter", text, re.S)
        if m and "chromiumSwitches" in text:
            return re.findall(r'^\s*"([^"]+)"', m.group(1), re.M)
    raise AssertionError("disabledFeatures not found in the Playwright driver")


def test_disabled_features_repeat_playwrights_list() -> None:
    assert list(chromium.PLAYWRIGHT_DISABLED_FEATURES) == _driver_disabled_features()


def test_launch_args() -> None:
    args = chromium.launch_args(is_root=True)
    assert args[0] == "--no-sandbox"
    for switch in ("--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--no-first-run", "--disable-quic"):
        assert switch in args
    [features] = [a for a in args if a.startswith("--disable-features=")]
    names = features.split("=", 1)[1].split(",")
    assert names[-4:] == ["WebUIOmniboxPopup", "WebUIOmniboxAimPopup", "WebUIOmniboxFullPopup",
                          "SpareRendererForSitePerProcess"]
    assert "--no-sandbox" not in chromium.launch_args(is_root=False)
    assert "WebUIOmniboxPopup" not in chromium.launch_args(noui=False, is_root=False)[-1]


def test_chromium_path_override() -> None:
    assert chromium.chromium_path({"WAGATE_CHROMIUM_PATH": "/opt/c/chrome"}) == "/opt/c/chrome"
    if Path(chromium.DEFAULT_CHROMIUM_PATH).exists():
        assert chromium.chromium_path({}) == chromium.DEFAULT_CHROMIUM_PATH
