"""The final report (text or JSON) and a dependency-free progress bar on stderr."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

LIST_LIMIT = 1000  # rows listed per problem kind in the JSON report; counts are always complete
TEXT_LIMIT = 20
# Outcomes that need an operator's attention: the command exits non-zero when any is present.
ATTENTION = ("conflict", "invalid", "failed", "duplicate", "missing", "mismatch", "kept_changed")


@dataclass
class Report:
    """Counts by outcome and by status mapping, plus the rows behind every problem."""

    mode: str
    migration_id: str
    source: str
    accounts_table: str
    outcomes: Counter[str] = field(default_factory=Counter)
    mappings: Counter[str] = field(default_factory=Counter)
    warnings: Counter[str] = field(default_factory=Counter)
    problems: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rows: int = 0
    resumed_rows: int = 0
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    elapsed: float = 0.0

    def problem(self, kind: str, **details: Any) -> None:
        """Record one problem row (the count is kept by `outcomes`; the list is capped)."""
        listed = self.problems.setdefault(kind, [])
        if len(listed) < LIST_LIMIT:
            listed.append(details)

    def restore(self, tallies: dict[str, dict[str, int]]) -> None:
        """Add the tallies of the rows an earlier run processed before the checkpoint."""
        self.outcomes.update(tallies.get("outcomes", {}))
        self.mappings.update(tallies.get("mappings", {}))
        self.warnings.update(tallies.get("warnings", {}))

    def tallies(self) -> dict[str, dict[str, int]]:
        return {"outcomes": dict(self.outcomes), "mappings": dict(self.mappings),
                "warnings": dict(self.warnings)}

    def finish(self) -> Report:
        self.elapsed = time.monotonic() - self.started
        return self

    @property
    def ok(self) -> bool:
        return not any(self.outcomes.get(kind) for kind in ATTENTION)

    def to_dict(self) -> dict[str, Any]:
        processed = self.rows - self.resumed_rows
        return {
            "mode": self.mode, "migration_id": self.migration_id, "source": self.source,
            "accounts_table": self.accounts_table, "ok": self.ok, "rows": self.rows,
            "resumed_after_rows": self.resumed_rows, "outcomes": dict(sorted(self.outcomes.items())),
            "status_mapping": dict(sorted(self.mappings.items())),
            "warnings": dict(sorted(self.warnings.items())),
            "problems": self.problems, "notes": self.notes, **self.extra,
            "elapsed_seconds": round(self.elapsed, 3),
            "rows_per_second": round(processed / self.elapsed, 1) if self.elapsed > 0 else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str)

    def to_text(self) -> str:
        data = self.to_dict()
        resumed = f" ({self.resumed_rows} before the checkpoint)" if self.resumed_rows else ""
        lines = [f"{self.mode}: {self.source} -> {self.accounts_table} (migration {self.migration_id})",
                 f"rows: {self.rows}{resumed}"]
        lines += [f"  note: {note}" for note in self.notes]
        for title, counts in (("outcomes", self.outcomes), ("status mapping", self.mappings),
                              ("warnings", self.warnings)):
            if counts:
                lines.append(f"{title}:")
                lines += [f"  {name:<40} {count:>9}" for name, count in sorted(counts.items())]
        for key, value in self.extra.items():
            if not isinstance(value, dict | list):
                lines.append(f"{key}: {value}")
        for kind, listed in self.problems.items():
            lines.append(f"{kind} ({self.outcomes.get(kind, len(listed))}):")
            lines += [f"  {json.dumps(e, ensure_ascii=False, default=str)}" for e in listed[:TEXT_LIMIT]]
            if len(listed) > TEXT_LIMIT:
                lines.append(f"  ... {len(listed) - TEXT_LIMIT} more listed with --json")
        lines.append(f"elapsed {data['elapsed_seconds']} s, {data['rows_per_second']} rows/s; "
                     + ("OK" if self.ok else "NEEDS ATTENTION"))
        return "\n".join(lines)


class Progress:
    """`[#####-----] 512/10000 5% 830 rows/s`: redrawn on a terminal, a line every 10 % otherwise."""

    def __init__(self, total: int | None, enabled: bool = True, stream: TextIO | None = None,
                 label: str = "") -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._step = -1
        self._tty = self.stream.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        if not self.enabled:
            return
        now = time.monotonic()
        if self._tty:
            if now - self._drawn >= 0.2:
                self._drawn = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        elif self.total:
            step = min(10, self.done * 10 // self.total)
            if step != self._step:
                self._step = step
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write(("\r" if self._tty else "") + self._line(time.monotonic()) + "\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-9)
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30) + "-" * (30 - int(share * 30))
            return f"{self.label}[{bar}] {self.done}/~{self.total} {share:4.0%} {rate:,.0f} rows/s"
        return f"{self.label}{self.done} rows {rate:,.0f} rows/s"
