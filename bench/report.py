"""Writes one `## Section` of docs/benchmarks.md, leaving the other sections as they are."""

from __future__ import annotations

import platform
import re
import subprocess
import time
from datetime import datetime
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    try:
        cpus = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        cpus = "?"
    return f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {cpus} cores, Python {platform.python_version()}"


def write_section(title: str, body: str, keep: tuple[str, ...] = ()) -> None:
    """Replace (or append) the section headed `## {title}`; its `### ` subsections whose titles start with one of
    `keep` (written by another benchmark, e.g. bench.density's) are carried over at the end."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    old = pattern.search(text)
    kept = [m.group(0).strip() for m in re.finditer(r"^### .*?(?=^##+ |\Z)", old.group(0) if old else "", re.S | re.M)
            if m.group(0)[4:].startswith(keep)] if keep else []
    section = f"## {title}\n\n{body.strip()}\n" + "".join(f"\n{k}\n" for k in kept)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    BENCHMARKS.write_text(text.rstrip() + "\n")


def source_state() -> str:
    """The commit measured, and which product files had uncommitted changes (others may be editing them)."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                                  cwd=BENCHMARKS.parents[1]).stdout
        except OSError:
            return ""

    commit = git("rev-parse", "--short", "HEAD").strip() or "?"
    dirty = [line[3:] for line in git("status", "--porcelain").splitlines()
             if line[3:] and not line[3:].startswith(("bench/", "docs/benchmarks.md", "tests/"))]
    if not dirty:
        return f"commit {commit}"
    return f"commit {commit} with uncommitted changes to {', '.join(f'`{d}`' for d in dirty)}"


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def ts(iso: str) -> float:
    """Epoch seconds of an ISO-8601 timestamp as the API writes them (`...Z`)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
