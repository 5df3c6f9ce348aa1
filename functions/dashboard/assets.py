"""The dashboard's static files, read once: hand-written ES modules and CSS, served under content-hashed names.

There is no build step. At cold start every file under `static/` is read, one version hash is taken over all of
them, and relative module imports (`from "./api.js"`) are rewritten to the hashed names, so a browser may cache
every asset for a year and still never mixes two versions of the page.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                 ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8"}
_IMPORT = re.compile(r"""(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(["'])\./([\w.-]+)\2""")
_PLACEHOLDER = re.compile(r"\{\{asset:([\w.-]+)\}\}")


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes and content type."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class Bundle:
    """Every asset by served name (hashed and plain), and the page with its asset links filled in."""

    version: str
    hashed: dict[str, Asset]
    plain: dict[str, Asset]
    page: bytes

    def hashed_name(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        return f"{stem}.{self.version}.{ext}" if dot else name


@lru_cache(maxsize=1)
def bundle() -> Bundle:
    """The static files of this deployment (read once per container)."""
    files = {p.name: p.read_bytes() for p in sorted(STATIC_DIR.iterdir())
             if p.is_file() and p.suffix in CONTENT_TYPES}
    digest = hashlib.sha256()
    for name, data in files.items():
        digest.update(name.encode() + b"\0" + data + b"\0")
    version = digest.hexdigest()[:12]
    shell = Bundle(version, {}, {}, b"")

    def rewrite(text: str) -> str:
        return _IMPORT.sub(lambda m: f"{m.group(1)}{m.group(2)}./{shell.hashed_name(m.group(3))}{m.group(2)}", text)

    hashed: dict[str, Asset] = {}
    plain: dict[str, Asset] = {}
    for name, data in files.items():
        suffix = Path(name).suffix
        if suffix == ".html":
            continue
        body = rewrite(data.decode()).encode() if suffix == ".js" else data
        hashed[shell.hashed_name(name)] = plain[name] = Asset(body, CONTENT_TYPES[suffix])
    page = _PLACEHOLDER.sub(lambda m: f"assets/{shell.hashed_name(m.group(1))}", files["index.html"].decode())
    return Bundle(version, hashed, plain, page.encode())
