"""The embedded AWS emulator: moto's server on loopback (real AWS wire protocol).

Two ways to run it: in a thread of this process (`make run`: one process, starts in well under a
second), or in a process of its own behind a small TCP gate (the test suite: moto's request handling
then has its own interpreter lock instead of sharing one with the API, the simulator and the SQS
pollers, and the gate can refuse connections for a while to play an outage without losing state).
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from moto.server import ThreadedMotoServer


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MotoEmulator:
    """moto's server; `reset()` empties every service, `pause()`/`resume()` play an outage."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, own_process: bool = False) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.own_process = own_process
        self._server: ThreadedMotoServer | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._gate: TcpGate | None = None
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per AWS call otherwise

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        if not self.own_process:
            self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
            self._server.start()
            return self.url
        inner = free_port(self.host)
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter running moto
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(inner)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.host}:{inner}/moto-api/", timeout=1):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        self._gate = TcpGate(self.host, self.port, inner)
        self._gate.start()
        return self.url

    def pause(self) -> None:
        """Refuse every connection (open ones are cut) until `resume()`; the emulator keeps its state."""
        if self._gate is not None:
            self._gate.close()
        elif self._server is not None:
            self._server.stop()

    def resume(self) -> None:
        if self._gate is not None:
            self._gate.open()
        elif self._server is not None:
            self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
            self._server.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._gate is not None:
            self._gate.stop()
            self._gate = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass  # the URL is our own emulator's http address


class TcpGate:
    """Forwards a loopback port to another one; `close()` refuses new connections and cuts open ones."""

    def __init__(self, host: str, port: int, target: int) -> None:
        self.host, self.port, self.target = host, port, target
        self._listener: socket.socket | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False

    def start(self) -> None:
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="aws-gate", daemon=True).start()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            connections, self._connections = self._connections, set()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def stop(self) -> None:
        self._stopped = True
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopped:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.host, self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 60)
                if not readable:
                    continue
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except OSError:
            return
        finally:
            with self._lock:
                self._connections.discard(a)
                self._connections.discard(b)
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()
