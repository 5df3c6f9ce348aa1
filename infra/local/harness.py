"""Clients and helpers for driving the local stack from tests and benchmarks: the API with a key, the
simulated phone, browser host processes, and waiting for a condition."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.local.host_process import HostProcess


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition", every: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy (returned); AssertionError with the last value on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@dataclass
class Api:
    """The local REST API with one API key (one HTTP session per thread)."""

    base_url: str
    key: str | None

    def __post_init__(self) -> None:
        self._local = threading.local()

    def request(self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None,
                data: bytes | str | None = None, params: dict[str, Any] | None = None) -> Any:
        import requests  # the dev/local extras have it; imported late so the module loads without it

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        all_headers = {"X-Api-Key": self.key} if self.key else {}
        all_headers.update(headers or {})
        return session.request(method, self.base_url + path, json=json, data=data, params=params,
                               headers=all_headers, timeout=30)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.request("POST", path, **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def with_key(self, key: str | None) -> Api:
        return Api(self.base_url, key)

    def register_producer(self, name: str = "producer", reply_queue_urls: list[str] | None = None) -> tuple[str, str]:
        """Register an SQS producer of this key's tenant (an admin key); returns (producer_id, secret)."""
        response = self.post("/producers", json={"name": name, "reply_queue_urls": reply_queue_urls or []})
        assert response.status_code == 201, response.text
        return str(response.json()["producer_id"]), str(response.json()["secret"])


def sign_ingress(body: str, producer_id: str, secret: str) -> dict[str, Any]:
    """The SQS MessageAttributes that sign an ingress message body (docs/api.md, "SQS producers")."""
    signature = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()
    return {"wagate-producer": {"DataType": "String", "StringValue": producer_id},
            "wagate-signature": {"DataType": "String", "StringValue": f"sha256={signature}"}}


class Phone:
    """The simulated WhatsApp network (wa_sim's control API): the business's phone and its contacts."""

    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(self.base + path, method=method,  # noqa: S310 - loopback simulator
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def post(self, path: str, body: dict[str, Any]) -> Any:
        status, data = self.call("POST", path, body)
        assert status < 300, (status, data)
        return data

    def received(self, contact: str) -> list[dict[str, Any]]:
        return list(self.call("GET", f"/sim/contacts/{contact}/messages")[1]["messages"])

    def account(self, number: str) -> dict[str, Any] | None:
        """A business number as WhatsApp sees it: linked devices, online, conflicts."""
        accounts = self.call("GET", "/sim/accounts")[1]["accounts"]
        return next((a for a in accounts if a["phone_number"] == number), None)

    def conflicts(self, number: str) -> int:
        """Times a second live connection replaced one of the number's devices (0 when hosts behave)."""
        return int((self.account(number) or {}).get("conflicts", 0))

    def devices(self, number: str) -> list[dict[str, Any]]:
        return list((self.account(number) or {}).get("devices") or [])


def account_status(api: Api, account_id: str) -> str:
    return str(api.get(f"/accounts/{account_id}").json()["connection_status"])


def start_and_get_qr(api: Api, account_id: str, timeout: float = 45) -> str:
    assert api.post(f"/accounts/{account_id}/start").status_code == 202
    qr = wait_until(lambda: (r := api.get(f"/accounts/{account_id}/qr", params={"format": "raw"})).status_code == 200
                    and r.json(), timeout, "a QR code")
    return str(qr["value"])


def scan(api: Api, phone: Phone, account_id: str, number: str, timeout: float = 60) -> None:
    """Scan the account's current QR with the phone; a code that rotated meanwhile is read again."""
    def attempt() -> bool:
        response = api.get(f"/accounts/{account_id}/qr", params={"format": "raw"})
        if response.status_code != 200:
            return False
        status, _ = phone.call("POST", "/sim/link", {"qr": response.json()["value"], "phone_number": number})
        return status < 300
    wait_until(attempt, timeout, "a QR code scanned", every=0.5)


def link_by_qr(api: Api, phone: Phone, account_id: str, number: str, timeout: float = 45) -> None:
    """Start the account, wait for its QR, scan it with the phone, wait for WORKING."""
    assert api.post(f"/accounts/{account_id}/start").status_code == 202
    scan(api, phone, account_id, number, timeout)
    wait_until(lambda: account_status(api, account_id) == "WORKING", 30, "WORKING")


def send_text(api: Api, account_id: str, to: str, body: str) -> str:
    response = api.post(f"/accounts/{account_id}/messages", json={"to": to, "type": "text", "text": {"body": body}})
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


class Fleet:
    """Browser host processes for one test or benchmark; `stop_all()` ends every one still running."""

    def __init__(self, host_env: dict[str, str], log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.host_env = host_env
        self.log_dir = log_dir
        self.extra_env = extra_env or {}
        self.hosts: list[HostProcess] = []

    def start(self, **extra: str) -> HostProcess:
        index = len(self.hosts)
        host = HostProcess(self.host_env, log_path=self.log_dir / f"host{index}.log",
                           extra_env={**self.extra_env, "HOST_ID": f"host-{index}-{uuid.uuid4().hex[:6]}", **extra})
        self.hosts.append(host.start())
        return host

    def replace(self, index: int) -> HostProcess:
        """SIGKILL host `index` and start a new process (a new host id, as a replaced container)."""
        old = self.hosts[index]
        old.kill()
        env = {**old.env, "HOST_ID": f"host-{index}-{uuid.uuid4().hex[:6]}"}
        self.hosts[index] = HostProcess(env, log_path=self.log_dir / f"host{index}-{uuid.uuid4().hex[:4]}.log").start()
        return self.hosts[index]

    def holder(self, account_id: str) -> list[HostProcess]:
        """The live hosts whose /health lists the account."""
        return [h for h in self.hosts if account_id in ((h.health() or {}).get("account_ids") or [])]

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(p.read_text()[-tail:] for p in sorted(self.log_dir.glob("host*.log")))

    def stop_all(self) -> None:
        for host in self.hosts:
            host.stop()
