"""wa_sim and the host against the installed @wppconnect/wa-js `.d.ts` files (no browser).

Fails when a `WPP.<ns>.<fn>` that wa_sim implements or the host calls is not in the package, takes or
is called with more parameters than the `.d.ts` declares, or when an event wa_sim emits or the host
listens to is not declared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "infra/wa-js/node_modules/@wppconnect/wa-js"
DIST = PACKAGE / "dist"
WPP_JS = ROOT / "infra/wa_sim/static/wpp.js"
SIM_STATIC = ROOT / "infra/wa_sim/static"
HOST = ROOT / "browser_host"
MAKE = "make infra/wa-js/node_modules/@wppconnect/wa-js/dist/wppconnect-wa.js"
OPEN, CLOSE = "([{<", ")]}>"


@dataclass(frozen=True)
class Signature:
    """One declared function: its parameters as written in the .d.ts."""

    params: tuple[str, ...]
    source: str

    @property
    def max(self) -> float:
        return float("inf") if any(p.startswith("...") for p in self.params) else len(self.params)

    def text(self) -> str:
        return f"({', '.join(self.params)}) in {self.source}"


def split_top(text: str) -> list[str]:
    """Split on commas outside brackets and strings (TypeScript types and JS expressions)."""
    parts: list[str] = []
    depth, start, quote, i = 0, 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "=" and text[i + 1:i + 2] == ">":
            i += 1  # an arrow, not a closing angle bracket
        elif ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def balanced(text: str, start: int) -> str:
    """The text inside the bracket opening at `start` (`text[start]` is `(`, `{` ...)."""
    depth, quote, i = 0, "", start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == "=" and text[i + 1:i + 2] == ">":
            i += 1
        elif ch in OPEN:
            depth += 1
        elif ch in CLOSE:
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        i += 1
    raise ValueError(f"unbalanced bracket at {start}")


def param_name(param: str) -> str:
    return split_top(param.split(":", 1)[0])[0].strip() if ":" in param else param.split("=", 1)[0].strip()


@cache
def package_version() -> str:
    if not (DIST / "wppconnect-wa.js").exists():
        pytest.fail(f"@wppconnect/wa-js is not installed under {PACKAGE.relative_to(ROOT)}: run `{MAKE}` "
                    "(CI installs it) so the .d.ts contract can be checked")
    return str(json.loads((PACKAGE / "package.json").read_text())["version"])


@cache
def declared() -> dict[str, dict[str, Signature | None]]:
    """namespace -> exported name -> signature (None: exported, but not a function, e.g. a class)."""
    package_version()
    out: dict[str, dict[str, Signature | None]] = {}
    for ns_dir in sorted(p for p in DIST.iterdir() if p.is_dir()):
        # WPP.whatsapp re-exports WhatsApp's models and classes from its subfolders.
        deep = ns_dir.glob("**/*.d.ts") if ns_dir.name == "whatsapp" else ns_dir.glob("functions/*.d.ts")
        files = sorted({*ns_dir.glob("*.d.ts"), *deep})
        names: dict[str, Signature | None] = {}
        by_file: dict[Path, dict[str, Signature | None]] = {}
        for path in files:
            text = path.read_text()
            own: dict[str, Signature | None] = {}
            for m in re.finditer(r"export declare function (\w+)\s*(?:<[^(]*>)?\(", text):
                params = tuple(param_name(p) for p in split_top(balanced(text, m.end() - 1)))
                sig = Signature(params, str(path.relative_to(PACKAGE)))
                old = own.get(m.group(1))
                own[m.group(1)] = sig if old is None or sig.max > old.max else old  # overloads: the widest
            for m in re.finditer(r"export declare (?:class|const|let|var|enum|namespace) (\w+)", text):
                own.setdefault(m.group(1), None)
            by_file[path] = own
            names.update(own)
        # Re-exports under another name: `export { queryWidExists as queryExists } from './queryWidExists'`.
        for _ in range(3):
            for path in files:
                for block, target in re.findall(r"export \{([^}]*)\} from '\./([\w/]+)'", path.read_text()):
                    source = by_file.get(path.parent / f"{target}.d.ts", names)
                    for item in split_top(block):
                        orig, _, alias = item.partition(" as ")
                        orig, alias = orig.strip(), (alias or orig).strip()
                        if orig in source and alias not in names:
                            names[alias] = source[orig]
                            by_file[path][alias] = source[orig]
        if names:
            out[ns_dir.name] = names
    return out


@cache
def declared_events() -> dict[str, str]:
    package_version()
    events: dict[str, str] = {}
    for path in sorted([*DIST.glob("*/eventTypes.d.ts"), *DIST.glob("*/events/eventTypes.d.ts")]):
        for name in re.findall(r"^\s*['\"]([a-z_]+\.[a-z_]+)['\"]\??\s*:", path.read_text(), re.M):
            events[name] = str(path.relative_to(PACKAGE))
    return events


def sim_functions() -> dict[tuple[str, str], tuple[int | None, str]]:
    """(namespace, name) -> (parameter count or None when not countable, where) from wpp.js."""
    text = WPP_JS.read_text()
    out: dict[tuple[str, str], tuple[int | None, str]] = {}
    blocks = [(m.group(1), balanced(text, m.end() - 1)) for m in re.finditer(r"\bconst (\w+) = \{", text)]
    blocks += [(m.group(1), balanced(text, m.end() - 1)) for m in re.finditer(r"^\s{4}(\w+): \{", text, re.M)]
    for ns, body in blocks:
        if ns not in declared():
            continue  # sim-internal objects (emitter API, WPP itself)
        for entry in split_top(body):
            line = f"{WPP_JS.relative_to(ROOT)} WPP.{ns}"
            arrow = re.match(r"(\w+):\s*(?:later\()?\(", entry)
            method = re.match(r"(?:async\s+)?(\w+)\s*\(", entry)
            if arrow:
                start = entry.index("(", arrow.end() - 1)
                out[(ns, arrow.group(1))] = (len(split_top(balanced(entry, start))), line)
            elif method:
                out[(ns, method.group(1))] = (len(split_top(balanced(entry, method.end() - 1))), line)
            elif m := re.match(r"(?:get\s+)?(\w+)\s*(?:[:(,]|$)", entry):
                out[(ns, m.group(1))] = (None, line)
    return out


def sim_events() -> dict[str, str]:
    events: dict[str, str] = {}
    for path in sorted(SIM_STATIC.glob("*.js")):
        for m in re.finditer(r"\bev\.emit(?:Async)?\(\s*'([\w.]+)'", path.read_text()):
            events.setdefault(m.group(1), str(path.relative_to(ROOT)))
    return events


def host_calls() -> list[tuple[str, str, int, str]]:
    """Every `WPP.<ns>.<fn>(...)` in browser_host/*.py: (ns, fn, argument count, where)."""
    calls = []
    for path in sorted(HOST.glob("*.py")):
        text = path.read_text()
        for m in re.finditer(r"WPP\.(\w+)\.(\w+)\(", text):
            line = text.count("\n", 0, m.start()) + 1
            args = len(split_top(balanced(text, m.end() - 1)))
            calls.append((m.group(1), m.group(2), args, f"{path.relative_to(ROOT)}:{line}"))
    return calls


def host_events() -> dict[str, str]:
    """Event names the host listens to: `WPP.on('…')` and the event-name strings of browser_host/*.py."""
    namespaces = "|".join(sorted({n.split(".")[0] for n in declared_events()} | {"conn", "chat", "loader"}))
    found: dict[str, str] = {}
    for path in sorted(HOST.glob("*.py")):
        text = path.read_text()
        for m in re.finditer(rf"""['"]((?:{namespaces})\.[a-z][a-z_]*)['"]""", text):
            found.setdefault(m.group(1), f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}")
    return found


def check_function(ns: str, fn: str, count: int | None, who: str, where: str) -> str | None:
    names = declared().get(ns)
    version = package_version()
    if names is None:
        return f"{who} uses WPP.{ns}.{fn} ({where}) but @wppconnect/wa-js {version} has no `{ns}` namespace"
    if fn not in names:
        return f"{who} uses WPP.{ns}.{fn} ({where}) but @wppconnect/wa-js {version} does not export `{fn}` from `{ns}`"
    sig = names[fn]
    if sig is not None and count is not None and count > sig.max:
        verb = "implements" if who == "wa_sim" else "calls"
        return (f"{who} {verb} WPP.{ns}.{fn} with {count} parameters ({where}) but @wppconnect/wa-js {version} "
                f"declares {len(sig.params)}: {sig.text()}")
    return None


def test_split_and_balance_helpers() -> None:
    assert split_top("a: (x: number, y) => void, b?: Array<Map<string, number>>, c = {x: 1, y: 2}") == [
        "a: (x: number, y) => void", "b?: Array<Map<string, number>>", "c = {x: 1, y: 2}"]
    assert balanced("f(a, g(b, c), 'x)')", 1) == "a, g(b, c), 'x)'"
    assert param_name("options?: SendMessageOptions") == "options?" and param_name("x = 1") == "x"


def test_package_declares_what_wa_sim_relies_on() -> None:
    sig = declared()["chat"]["sendFileMessage"]
    assert sig is not None and sig.params == ("chatId", "content", "options")
    assert declared()["contact"]["queryExists"] == declared()["contact"]["queryWidExists"]
    assert "chat.new_message" in declared_events() and "loader.ready" in declared_events()


def test_wa_sim_implements_only_declared_functions() -> None:
    functions = sim_functions()
    assert ("chat", "sendFileMessage") in functions and ("contact", "getPnLidEntry") in functions
    problems = [p for (ns, fn), (count, where) in sorted(functions.items())
                if (p := check_function(ns, fn, count, "wa_sim", where))]
    assert not problems, "wa_sim's WPP moved away from the package:\n" + "\n".join(problems)


def test_host_calls_only_declared_functions() -> None:
    problems = [p for ns, fn, count, where in host_calls()
                if (p := check_function(ns, fn, count, "browser_host", where))]
    assert not problems, "browser_host calls WPP functions the package does not declare:\n" + "\n".join(problems)


def test_events_are_declared() -> None:
    events = declared_events()
    version = package_version()
    emitted = sim_events()
    assert "chat.new_reaction" in emitted
    problems = [f"wa_sim emits `{name}` ({where}) but @wppconnect/wa-js {version} declares no such event"
                for name, where in sorted(emitted.items()) if name not in events]
    problems += [f"browser_host listens to `{name}` ({where}) but @wppconnect/wa-js {version} declares no such event"
                 for name, where in sorted(host_events().items()) if name not in events]
    assert not problems, "\n".join(problems)
