"""In-memory model of the simulated WhatsApp network: accounts, devices, contacts, codes."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol

from .config import SimConfig
from .content import ChatMessage, Frame, normalize_phone
from .errors import SimError
from .messaging import Messaging

__all__ = ["ChatMessage", "Frame", "Network", "SimError", "normalize_phone"]
# The characters WhatsApp uses in 8-character pairing codes (no 0, O, I, U).
PAIRING_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTVWXYZ"


class PageLink(Protocol):
    """What the network needs from one connected page (a WebSocket session)."""

    page_id: str
    phone: str | None
    device_id: int | None
    ref: str | None
    full_code: str | None
    old_refs: set[str]

    def send(self, frame: Frame) -> None: ...

    def drop(self, code: int, reason: str) -> None: ...

    def linked(self, phone: str, device_id: int) -> None: ...

    async def probe(self, timeout: float) -> bool: ...

    def replace(self) -> None: ...


@dataclass
class Device:
    """One linked companion device of an account."""

    device_id: int
    secret: bytes
    linked_at: float
    #: Durable frames (fid -> frame) the device has not confirmed yet: WhatsApp's offline queue.
    pending: dict[int, Frame] = field(default_factory=dict)
    #: Times a login of this device replaced another live connection of it ("conflict").
    conflicts: int = 0


@dataclass
class Account:
    """A WhatsApp number with its linked devices."""

    phone: str
    push_name: str
    devices: dict[int, Device] = field(default_factory=dict)
    next_device_id: int = 1
    network: str = "up"
    latency: float = 0.0


@dataclass
class PairingRequest:
    """An 8-character code a page asked for, waiting to be typed on the phone."""

    page_id: str
    phone: str
    expires: float


class Network(Messaging):
    """All server-side state of one simulator; one instance per server, no globals."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.accounts: dict[str, Account] = {}
        self.messages: dict[str, list[ChatMessage]] = {}
        self.pages: dict[str, PageLink] = {}
        self.pairing: dict[str, PairingRequest] = {}
        self.lids: dict[str, str] = {}
        self.presence: dict[tuple[str, str], Frame] = {}
        self._fid = 0

    # -- registry -----------------------------------------------------------------------------
    def is_registered(self, phone: str) -> bool:
        """Whether a number is "on WhatsApp" (the documented prefix rule)."""
        return not phone.startswith(self.config.unregistered_prefix)

    def has_devices(self, phone: str) -> bool:
        """Whether a number has a linked device (somewhere to deliver to)."""
        account = self.accounts.get(phone)
        return account is not None and bool(account.devices)

    def online_pages(self, phone: str, device_id: int | None = None) -> list[PageLink]:
        """Pages logged in as `phone` (optionally only one device)."""
        return [
            p for p in self.pages.values()
            if p.phone == phone and (device_id is None or p.device_id == device_id)
        ]

    def reset(self) -> None:
        """Forget everything; connected pages are dropped and will reconnect."""
        for page in list(self.pages.values()):
            page.drop(4001, "reset")
        self.accounts.clear()
        self.messages.clear()
        self.pairing.clear()
        self.presence.clear()

    # -- linking ------------------------------------------------------------------------------
    def new_pairing_code(self, page_id: str, phone: str) -> str:
        """Issue a fresh pairing code for a page that wants to link `phone`."""
        now = time.monotonic()
        for code, req in list(self.pairing.items()):
            if req.page_id == page_id or req.expires < now:
                del self.pairing[code]
        code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
        self.pairing[code] = PairingRequest(page_id, phone, now + self.config.pairing_code_ttl)
        return code

    def link_by_qr(self, code: str, phone: str, push_name: str | None = None) -> Frame:
        """The phone scanned `code` (a fullCode or its ref): link the page showing it."""
        ref = code.strip().split(",", 1)[0]
        for page in self.pages.values():
            if page.ref == ref:
                if "," in code and page.full_code and code.strip() != page.full_code:
                    raise SimError(400, "qr_mismatch", "QR code does not match the one on the page")
                return self._link(page, phone, push_name)
            if ref in page.old_refs:
                raise SimError(410, "qr_expired", "this QR code has expired, scan the current one")
        raise SimError(404, "qr_not_found", "no page is showing this QR code")

    def link_by_pairing_code(self, code: str, phone: str, push_name: str | None = None) -> Frame:
        """The phone typed a pairing code: link the page that asked for it."""
        clean = re.sub(r"[\s-]", "", code).upper()
        req = self.pairing.get(clean)
        if req is None or req.expires < time.monotonic():
            raise SimError(404, "pairing_code_not_found", "unknown or expired pairing code")
        if req.phone != phone:
            raise SimError(409, "pairing_phone_mismatch", "the code was requested for another number")
        page = self.pages.get(req.page_id)
        if page is None:
            raise SimError(410, "page_gone", "the page that asked for this code is gone")
        del self.pairing[clean]
        return self._link(page, phone, push_name)

    def _link(self, page: PageLink, phone: str, push_name: str | None) -> Frame:
        if page.phone is not None:
            raise SimError(409, "already_linked", "this page is already linked")
        account = self.accounts.get(phone)
        if account is None:
            account = self.accounts[phone] = Account(phone, push_name or f"Business {phone}")
        elif push_name:
            account.push_name = push_name
        if len(account.devices) >= self.config.max_devices:
            raise SimError(409, "too_many_devices", f"{phone} already has {len(account.devices)} devices")
        device = Device(account.next_device_id, secrets.token_bytes(32), time.time())
        account.next_device_id += 1
        account.devices[device.device_id] = device
        for code, req in list(self.pairing.items()):
            if req.page_id == page.page_id:
                del self.pairing[code]
        page.linked(phone, device.device_id)
        page.send({
            "type": "paired", "wid": f"{phone}@c.us", "device_id": device.device_id,
            "secret": device.secret.hex(), "push_name": account.push_name,
        })
        return {"phone_number": phone, "wid": f"{phone}@c.us", "device_id": device.device_id,
                "page_id": page.page_id}

    def unlink(self, phone: str, device_id: int | None = None, reason: str = "device_removed") -> int:
        """Revoke one or all devices of a number; online pages are logged out."""
        account = self.accounts.get(phone)
        if account is None:
            return 0
        ids = [d for d in account.devices if device_id is None or d == device_id]
        for did in ids:
            del account.devices[did]
            for page in self.online_pages(phone, did):
                page.send({"type": "logout", "reason": reason})
                page.phone = page.device_id = None
        return len(ids)

    def record_conflict(self, phone: str, device_id: int) -> None:
        """A login of a device replaced a live connection of the same device."""
        device = self.device(phone, device_id)
        if device is not None:
            device.conflicts += 1

    def device(self, phone: str, device_id: int) -> Device | None:
        """A linked device, if the number still has it."""
        account = self.accounts.get(phone)
        return account.devices.get(device_id) if account else None

    # -- messaging ----------------------------------------------------------------------------
    def push(self, phone: str, frame: Frame) -> int:
        """Queue a durable frame for every device of `phone`; returns online receivers."""
        account = self.accounts.get(phone)
        if account is None:
            return 0
        self._fid += 1
        sent = 0
        for device in account.devices.values():
            durable = {**frame, "fid": self._fid}
            device.pending[self._fid] = durable
            for page in self.online_pages(phone, device.device_id):
                page.send(durable)
                sent += 1
        return sent

    def confirm(self, phone: str, device_id: int, fid: int) -> None:
        """A device confirmed a durable frame; an inbound message becomes "delivered"."""
        device = self.device(phone, device_id)
        frame = device.pending.pop(fid, None) if device else None
        if frame and frame.get("type") == "message":
            msg = self.find_message(frame["msg"]["from"], frame["msg"]["id"])
            if msg and msg.status == "sent":
                msg.status = "delivered"

    def set_network(self, phone: str, state: str, latency: float | None) -> Frame:
        """Change an account's connectivity; "down" drops its pages until "up"."""
        account = self.accounts.get(phone)
        if account is None:
            raise SimError(404, "account_not_found", f"{phone} is not linked in the simulator")
        account.network = state
        account.latency = (latency if latency is not None else self.config.slow_latency) \
            if state == "slow" else 0.0
        if state == "down":
            for page in self.online_pages(phone):
                page.drop(4000, "network down")
        return {"phone_number": phone, "state": state, "latency": account.latency}

    def latency_for(self, phone: str | None) -> float:
        """Extra one-way latency for frames of `phone`."""
        account = self.accounts.get(phone) if phone else None
        return account.latency if account else 0.0

    def accounts_json(self) -> list[Frame]:
        """Control-API view of accounts and their devices."""
        out = []
        for acc in self.accounts.values():
            devices = [{"device_id": d.device_id, "linked_at": d.linked_at,
                        "online": bool(self.online_pages(acc.phone, d.device_id)),
                        "pending_frames": len(d.pending), "conflicts": d.conflicts}
                       for d in acc.devices.values()]
            out.append({"phone_number": acc.phone, "wid": f"{acc.phone}@c.us", "push_name": acc.push_name,
                        "linked": bool(acc.devices), "online": any(d["online"] for d in devices),
                        "network": acc.network, "conflicts": sum(d["conflicts"] for d in devices),
                        "devices": devices})
        return out

    def pending_pages_json(self) -> list[Frame]:
        """Pages waiting to be linked, with the code they show (for the phone page)."""
        codes = {req.page_id: (code, req.phone) for code, req in self.pairing.items()}
        return [{"page_id": p.page_id, "ref": p.ref, "full_code": p.full_code,
                 "pairing_code": codes.get(p.page_id, (None, None))[0],
                 "pairing_phone_number": codes.get(p.page_id, (None, None))[1]}
                for p in self.pages.values() if p.phone is None and (p.ref or p.page_id in codes)]
