"""LocalStack on this machine without Docker (host mode), and the suite run against it.

LocalStack gets a virtual environment of its own (`.venv-localstack`, Python 3.13, pins in the Makefile) and runs
on a free loopback port with a temporary folder as its file system; `stop()` ends its whole process group and
removes the folder. It serves SQS, S3, KMS and SNS; its DynamoDB fetches a Java component at run time (no
network here), so DynamoDB stays on moto through `AWS_ENDPOINT_URL_DYNAMODB`.

`python -m infra.local.localstack [-- CMD ...]` starts LocalStack and a moto server for DynamoDB, runs CMD (by
default the integration subset of `make test-localstack`) with `WAGATE_TARGET=localstack`, `AWS_ENDPOINT_URL`
and `AWS_ENDPOINT_URL_DYNAMODB` exported, stops both and exits with CMD's status.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

from infra.local.emulator import MotoEmulator, free_port
from infra.local.host_process import ROOT

VENV = ROOT / ".venv-localstack"
#: What creates that environment (the Makefile's target), named in errors when it is missing.
INSTALL_COMMAND = "make .venv-localstack/.installed"
#: The services the template's resources need from LocalStack (DynamoDB is on moto).
SERVICES = "sqs,s3,kms,sns"


class LocalStackMissing(RuntimeError):
    """The LocalStack environment is not installed."""


def localstack_python(venv: Path = VENV) -> Path:
    """The interpreter of the LocalStack environment; LocalStackMissing (with the command to run) otherwise."""
    python = venv / "bin" / "python"
    if not (venv / ".installed").exists() or not python.exists():
        raise LocalStackMissing(f"LocalStack is not installed in {venv}: run `{INSTALL_COMMAND}`")
    return python


class LocalStackProcess:
    """`python -m localstack.runtime.main` in host mode on a free loopback port."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None,
                 venv: Path = VENV) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.python = localstack_python(venv)
        self.process: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> LocalStackProcess:
        self._root = Path(tempfile.mkdtemp(prefix="wagate-localstack-"))
        (self._root / "tmp").mkdir()
        address = f"{self.host}:{self.port}"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "LOCALSTACK_"))},
            "OVERRIDE_IN_DOCKER": "0", "DISABLE_EVENTS": "1", "GATEWAY_LISTEN": address,
            # Queue URLs name this address (not localhost.localstack.cloud, which needs its DNS) in moto's shape.
            "LOCALSTACK_HOST": address, "SQS_ENDPOINT_STRATEGY": "off",
            "SERVICES": SERVICES, "DNS_ADDRESS": "0", "SKIP_SSL_CERT_DOWNLOAD": "1",
            "FILESYSTEM_ROOT": str(self._root / "fs"), "TMPDIR": str(self._root / "tmp"),
        }
        self._log = self.log_path.open("ab") if self.log_path else None
        self.process = subprocess.Popen(  # noqa: S603 - LocalStack's own interpreter, our arguments
            [str(self.python), "-m", "localstack.runtime.main"], cwd=self._root, env=env,
            stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"LocalStack exited with {self.process.returncode} (log: {self.log_path})")
            if self.ready():
                return
            time.sleep(0.25)
        raise TimeoutError(f"LocalStack did not answer on {self.url} within {timeout:.0f} s")

    def ready(self) -> bool:
        """Its health endpoint answers and lists every service we need."""
        try:
            with urllib.request.urlopen(f"{self.url}/_localstack/health", timeout=2) as response:  # noqa: S310
                services = json.loads(response.read()).get("services", {})
        except (OSError, ValueError):
            return False
        return all(services.get(name) in {"available", "running"} for name in SERVICES.split(","))

    def stop(self, timeout: float = 3.0) -> None:
        """End its process group (it starts helpers of its own) and remove its folder. Its state is thrown away,
        so a LocalStack slow to shut down (it often takes 15 s) is killed after `timeout` seconds."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> LocalStackProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: What `make test-localstack` runs: the integration tests that exercise SQS, S3, KMS and SNS through the API,
#: the queue consumers and the host's stores. Left out: those that stop or reset the emulator (an outage played
#: by moto's gate, moto's reset API), those about the embedded stack itself or other emulated parts, the smoke
#: (tests/integration/test_localstack.py starts a LocalStack of its own) and one test that needs two events in one
#: SQS batch (LocalStack's ReceiveMessage may return them apart).
SUITE = ["tests/integration/test_ingress.py",
         "tests/integration/test_messages_api.py", "tests/integration/test_media.py",
         "tests/integration/test_webhooks.py", "tests/integration/test_accounts_api.py",
         "tests/integration/test_host_media.py", "tests/integration/test_linking_and_legacy_secrets.py"]


SUITE_DESELECTED = ("tests/integration/test_webhooks.py::"
                    "test_a_slow_receiver_does_not_delay_another_tenants_delivery")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    command = args or [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITE,
                       "--deselect", SUITE_DESELECTED]
    log_dir = Path(tempfile.mkdtemp(prefix="wagate-localstack-logs-"))
    dynamodb = MotoEmulator(own_process=True)
    try:
        with LocalStackProcess(log_path=log_dir / "localstack.log") as localstack:
            dynamodb.start()
            env = {**os.environ, "WAGATE_TARGET": "localstack", "AWS_ENDPOINT_URL": localstack.url,
                   "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.url}
            print(f"LocalStack (SQS, S3, KMS, SNS): {localstack.url}; DynamoDB on moto: {dynamodb.url}", flush=True)
            returncode = subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 - the caller's command
            if returncode:
                print((log_dir / "localstack.log").read_text()[-4000:], file=sys.stderr)
            return returncode
    finally:
        dynamodb.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LocalStackMissing as exc:
        sys.exit(str(exc))
