"""Shared fixtures: the local stack on free loopback ports, API clients, fresh tenants."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from infra.local.harness import Api

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["ROOT", "Api", "create_account", "make_key", "new_ticket"]

# Never let a test reach a real AWS account by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # Every test is exactly one of unit (tests/unit), integration (AWS emulator) or e2e (Chromium), so
        # `make test-unit`, `test-integration` and `test-e2e` together run all of them.
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        if parts[0] in {"integration", "migration"}:
            item.add_marker(pytest.mark.integration)
        elif parts[0] in {"e2e", "wa_sim", "snapshot"}:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def runtime() -> Iterator[Any]:
    """The local control plane (moto + template resources + API + SQS mappings) for the whole run."""
    from infra.local.emulator import free_port
    from infra.local.runtime import GENEROUS_API_RATES, LocalRuntime, RuntimeConfig

    # With AWS_ENDPOINT_URL exported (LocalStack, or an AWS account), the suite runs against it: resources
    # are created under a stack name of their own. Without it, the embedded moto server is started.
    # WAGATE_TARGET=localstack with AWS_ENDPOINT_URL_DYNAMODB: clients through localstack-client, DynamoDB
    # apart (`make test-localstack`, infra/local/localstack.py).
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    rt = LocalRuntime(RuntimeConfig(endpoint_url=endpoint, aws_port=free_port(), api_port=free_port(),
                                    target=os.environ.get("WAGATE_TARGET") or "aws",
                                    dynamodb_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None,
                                    ws_port=free_port(), with_sim=True,
                                    sim_port=0, sim_qr_interval=4.0, emulator_process=True,
                                    extra_env={"API_RATE_LIMITS": GENEROUS_API_RATES},
                                    stack_name=f"wagate-test-{uuid.uuid4().hex[:6]}" if endpoint else "wagate")).start()
    yield rt
    rt.stop()


@pytest.fixture(scope="session")
def ws_url(runtime: Any) -> str:
    """The local WebSocket API (`ws://127.0.0.1:<port>`); connect to `new_ticket(api)["url"]`."""
    return str(runtime.ws_url)


@pytest.fixture(scope="session")
def bootstrap_key(runtime: Any) -> str:
    from functions.service.api_keys import ensure_bootstrap_key
    from functions.service.context import services

    key, _ = ensure_bootstrap_key(services(), None)
    return key


@pytest.fixture(scope="session")
def root_api(runtime: Any, bootstrap_key: str) -> Api:
    """The bootstrap tenant's admin."""
    return Api(runtime.api_url, bootstrap_key)


@pytest.fixture
def tenant_admin(root_api: Api) -> Api:
    """Admin of a brand-new tenant, so each test starts from an empty tenant."""
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    response = root_api.post("/api-keys", json={"name": "admin", "role": "admin", "tenant": tenant})
    assert response.status_code == 201, response.text
    return root_api.with_key(response.json()["api_key"])


def make_key(admin: Api, role: str, account_ids: list[str] | None = None) -> Api:
    body: dict[str, Any] = {"name": f"{role}-key", "role": role}
    if account_ids is not None:
        body["account_ids"] = account_ids
    response = admin.post("/api-keys", json=body)
    assert response.status_code == 201, response.text
    return admin.with_key(response.json()["api_key"])


def create_account(api: Api, name: str = "Support", **extra: Any) -> dict[str, Any]:
    response = api.post("/accounts", json={"account_name": name, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


def new_ticket(api: Api) -> dict[str, Any]:
    """`POST /realtime/tickets` with the key of `api`: {"ticket", "url" (ws URL with ?ticket=), "expires_at"}."""
    response = api.post("/realtime/tickets")
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A webhook receiver on loopback (the test stack allow-lists loopback targets); stopped after the test."""
    from infra.local.receiver import Receiver

    server = Receiver()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def fake_graph(runtime: Any) -> Iterator[Any]:
    """A fake of Meta's Graph API on loopback; the local stack's functions call it (GRAPH_API_BASE_URL)."""
    from infra.local.fake_graph import FakeGraph
    from infra.local.runtime import reset_process_caches

    fake = FakeGraph()
    fake.start()
    previous = os.environ.get("GRAPH_API_BASE_URL")
    os.environ["GRAPH_API_BASE_URL"] = fake.base_url
    reset_process_caches()
    yield fake
    if previous is None:
        os.environ.pop("GRAPH_API_BASE_URL", None)
    else:
        os.environ["GRAPH_API_BASE_URL"] = previous
    reset_process_caches()
    fake.stop()
