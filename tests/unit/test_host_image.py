"""The browser host image, checked without a Docker engine: its pip install uses the lock, the lock is the test
venv, the entrypoint imports, and the settings the image and the task definition pass are the host's.
tests/e2e/test_host_image.py runs the health check script against a real host."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from browser_host.config import HostConfig
from infra import lock
from infra.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "infra" / "browser_host" / "Dockerfile").read_text()
HOST_PACKAGES = ["playwright", "greenlet", "pydantic", "pydantic-core", "boto3", "botocore", "pynamodb", "aiohttp",
                 "aws-lambda-powertools", "cryptography", "pyjwt", "segno"]


def docker_env() -> dict[str, str]:
    """The runtime stage's ENV lines as a dict."""
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV ((?:.*\\\n)*.*)$", DOCKERFILE.split("\nFROM python:3.12-slim-bookworm\n")[-1],
                            flags=re.MULTILINE):
        for key, value in re.findall(r'([A-Z_]+)=("[^"]*"|\S+)', block):
            env[key] = value.strip('"')
    return env


def test_the_image_installs_the_host_from_the_lock() -> None:
    # Given the Dockerfile's Python stage, Then the lock is copied in and constrains the only pip install
    assert re.search(r"^COPY pyproject\.toml requirements\.lock \./$", DOCKERFILE, flags=re.MULTILINE)
    installs = re.findall(r"pip install .*", DOCKERFILE)
    assert installs == ['pip install -c requirements.lock ".[host]"']
    # And the build context admits it
    assert "!requirements.lock" in (ROOT / ".dockerignore").read_text().splitlines()
    # And the Makefile's venv (the one the tests run in) is installed from the same lock
    assert "pip install --quiet -c requirements.lock -e '.[dev]'" in (ROOT / "Makefile").read_text()


def test_the_lock_is_the_test_venv() -> None:
    # Given the lock and what this venv has installed for the host extra (markers for Python 3.11 and 3.12)
    pins = lock.read_lock()
    host = lock.closure(lock.project_requirements(["host"]))
    # Then the host's packages are pinned to exactly the versions the tests run with
    assert not host.missing
    for name in HOST_PACKAGES:
        assert canonicalize_name(name) in host.versions, name
    assert {n: pins.get(n) for n in host.versions} == host.versions
    # And the whole lock (every extra) agrees with the venv: `python -m infra.lock --check`
    everything = lock.closure(lock.project_requirements(["dev"]))
    assert lock.differences(pins, everything.versions) == [], "run `.venv/bin/python -m infra.lock` or make install"


def test_lock_rendering_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "requirements.lock"
    path.write_text(lock.render({"playwright": "1.55.0", "pydantic-core": "2.33.2"}))
    assert lock.read_lock(path) == {"playwright": "1.55.0", "pydantic-core": "2.33.2"}
    assert lock.differences({"a": "1"}, {"a": "2", "b": "3"}) == ["a: lock 1, venv 2", "b: lock -, venv 3"]


def test_the_entrypoint_module_imports() -> None:
    # The image's CMD is `python -m browser_host`: its module imports with the locked packages
    result = subprocess.run([sys.executable, "-c", "import browser_host.__main__"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr


def test_the_image_has_emoji_and_cjk_fonts() -> None:
    for package in ("fonts-noto-color-emoji", "fonts-noto-cjk", "fonts-liberation"):
        assert re.search(rf"apt-get install[^\n]*(\\\n[^\n]*)*\b{package}\b", DOCKERFILE), package


def test_the_image_serves_metrics_to_the_task_network_and_health_on_loopback() -> None:
    # Given the image's environment, When the host reads it
    config = HostConfig.from_env(docker_env())
    # Then /health stays on loopback, where the HEALTHCHECK probes it, and /metrics is served on every address
    assert config.health_host == "127.0.0.1" and config.health_port == 8080
    assert config.metrics_bind == ("0.0.0.0", 9464)
    assert re.search(r"^EXPOSE 9464$", DOCKERFILE, flags=re.MULTILINE)
    assert 'CMD ["python", "/opt/wagate/healthcheck.py"]' in DOCKERFILE
    # And locally (no setting) there is no second listener: several hosts on one machine, none reachable
    assert HostConfig.from_env({}).metrics_bind is None


def test_the_task_definition_passes_the_stack_log_level_and_the_metrics_port() -> None:
    template = load_template()
    container = template["Resources"]["BrowserHostTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert env["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert template["Globals"]["Function"]["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert env["HOST_METRICS_BIND"] == "0.0.0.0"
    assert [m["ContainerPort"] for m in container["PortMappings"]] == [int(env["HOST_METRICS_PORT"])]
    assert container["HealthCheck"]["Command"] == ["CMD", "python", "/opt/wagate/healthcheck.py"]


@pytest.mark.parametrize(("value", "expected"), [("debug", "DEBUG"), (" Warning ", "WARNING"), ("ERROR", "ERROR")])
def test_the_host_reads_the_stack_log_level(value: str, expected: str) -> None:
    assert HostConfig.from_env({"POWERTOOLS_LOG_LEVEL": value}).log_level == expected
    assert HostConfig.from_env({}).log_level == "INFO"


def test_an_unknown_log_level_stops_the_host_at_start() -> None:
    with pytest.raises(ValueError, match="log_level"):
        HostConfig.from_env({"POWERTOOLS_LOG_LEVEL": "verbose"})
