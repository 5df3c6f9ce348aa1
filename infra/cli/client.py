"""The public API as the `wagate` CLI calls it: where (URL and key from flags, the environment or a config file),
and one request function that turns failures into two exceptions."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT = 30.0


class CliError(Exception):
    """A failure to report in one line; `exit_code` is what the command exits with."""

    exit_code = 1


class Unreachable(CliError):
    """No answer from the API (or no URL/key to call it with)."""

    exit_code = 3


class ApiError(CliError):
    """The API answered with an error body."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.details = status, code, details


def config_path(env: Mapping[str, str]) -> Path:
    """`$WAGATE_CONFIG`, else `$XDG_CONFIG_HOME/wagate/config.json` (`~/.config/wagate/config.json`)."""
    if env.get("WAGATE_CONFIG"):
        return Path(env["WAGATE_CONFIG"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "wagate" / "config.json"


@dataclass(frozen=True)
class Target:
    url: str
    api_key: str

    @classmethod
    def resolve(cls, url: str | None = None, api_key: str | None = None,
                env: Mapping[str, str] | None = None) -> Target:
        """Flags first, then `WAGATE_URL` / `WAGATE_API_KEY`, then the config file's `url` / `api_key`."""
        env = os.environ if env is None else env
        path = config_path(env)
        stored: dict[str, Any] = {}
        if path.is_file():
            try:
                stored = dict(json.loads(path.read_text()))
            except (ValueError, TypeError) as exc:
                raise CliError(f"{path} is not a JSON object: {exc}") from None
        url = url or env.get("WAGATE_URL") or stored.get("url")
        api_key = api_key or env.get("WAGATE_API_KEY") or stored.get("api_key")
        if not url or not api_key:
            raise Unreachable(f"no API to call: set WAGATE_URL and WAGATE_API_KEY, or write {{\"url\", \"api_key\"}} "
                              f"into {path}")
        return cls(str(url).rstrip("/"), str(api_key))


class Client:
    """JSON over HTTP with the key in `X-Api-Key`."""

    def __init__(self, target: Target, timeout: float = TIMEOUT) -> None:
        self.target, self.timeout = target, timeout

    def call(self, method: str, path: str, body: Any = None, params: Mapping[str, Any] | None = None,
             ok_missing: bool = False) -> Any:
        """The decoded answer (None for an empty one). ApiError for 4xx/5xx; Unreachable when nothing answers.
        `ok_missing`: a 404/409 answers None instead of raising (polling for something not there yet)."""
        query = urllib.parse.urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = f"{self.target.url}{path}" + (f"?{query}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-Api-Key": self.target.api_key, "Accept": "application/json", "User-Agent": "wagate-cli"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if not url.startswith(("http://", "https://")):
            raise Unreachable(f"the API URL must be http:// or https://, not {self.target.url!r}")
        request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
        except urllib.error.HTTPError as exc:
            if ok_missing and exc.code in (404, 409):
                return None
            raise _api_error(exc) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach {self.target.url}: {reason}") from None
        return json.loads(raw) if raw else None

    def pages(self, path: str, params: Mapping[str, Any] | None = None, limit: int = 100) -> Iterator[Any]:
        """Items of a paged list, following `next_cursor`, at most `limit` of them."""
        cursor: str | None = None
        seen = 0
        while True:
            page = self.call("GET", path, params={**(params or {}), "limit": min(100, limit - seen),
                                                  "cursor": cursor})
            for item in page.get("items", []):
                yield item
                seen += 1
                if seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return


def _api_error(exc: urllib.error.HTTPError) -> ApiError:
    try:
        body = json.loads(exc.read() or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return ApiError(exc.code, str(body.get("code") or "http_error"), str(body.get("message") or exc.reason),
                    body.get("details"))
