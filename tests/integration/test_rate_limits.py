"""Per-key rate limits: a token bucket per API key (shared with its access tokens and the Cloud API routes), 429
with `Retry-After` past it, and the `RateLimit-Policy` / `RateLimit` headers on every authenticated answer."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from core.config import Settings
from core.store.rate_limits import RateLimiter
from tests.conftest import Api
from tests.integration.test_graph_compat import graph, meta_error
from tests.integration.test_jwt import bearer, token_of


def limited_key(admin: Api, per_second: float, burst: int, role: str = "operator") -> Api:
    response = admin.post("/api-keys", json={"name": "limited", "role": role,
                                             "rate_limit": {"per_second": per_second, "burst": burst}})
    assert response.status_code == 201, response.text
    assert response.json()["rate_limit"] == {"per_second": per_second, "burst": burst}
    return admin.with_key(response.json()["api_key"])


def remaining(response: requests.Response) -> int:
    match = re.fullmatch(r'"per-key";r=(\d+);t=(\d+)', response.headers["RateLimit"])
    assert match, response.headers["RateLimit"]
    return int(match.group(1))


def test_a_key_past_its_burst_gets_429_with_retry_after_and_headers(tenant_admin: Api) -> None:
    api = limited_key(tenant_admin, per_second=0.2, burst=3)  # one token every 5 s: no refill during the test
    answers = [api.get("/accounts") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [remaining(a) for a in answers] == [2, 1, 0]
    assert all(a.headers["RateLimit-Policy"] == '"per-key";q=3;w=15' for a in answers)

    refused = api.get("/accounts")
    assert refused.status_code == 429, refused.text
    body = refused.json()
    assert body["code"] == "rate_limited" and body["request_id"]
    assert body["details"] == {"retry_after": int(refused.headers["Retry-After"]), "per_second": 0.2, "burst": 3}
    assert 1 <= int(refused.headers["Retry-After"]) <= 5
    assert remaining(refused) == 0 and refused.headers["RateLimit-Policy"] == '"per-key";q=3;w=15'
    # A write is refused before it does anything.
    created = api.post("/accounts", json={"account_name": "never"})
    assert created.status_code == 429
    assert tenant_admin.get("/accounts").json()["items"] == []


def test_another_key_of_the_tenant_is_not_slowed(tenant_admin: Api) -> None:
    api = limited_key(tenant_admin, per_second=0.2, burst=1)
    assert api.get("/accounts").status_code == 200
    assert api.get("/accounts").status_code == 429
    other = tenant_admin.get("/accounts")
    assert other.status_code == 200 and remaining(other) > 0


def test_the_bucket_refills_at_the_keys_rate(tenant_admin: Api) -> None:
    api = limited_key(tenant_admin, per_second=2, burst=1)
    assert api.get("/accounts").status_code == 200
    refused = api.get("/accounts")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    time.sleep(0.6)  # a token every 0.5 s
    assert api.get("/accounts").status_code == 200


def test_access_tokens_and_cloud_api_routes_spend_the_keys_bucket(tenant_admin: Api) -> None:
    api = limited_key(tenant_admin, per_second=0.2, burst=3, role="admin")
    token = token_of(api)  # 1
    by_token = bearer(api, token)
    assert by_token.get("/accounts").status_code == 200  # 2
    account = tenant_admin.post("/accounts", json={"account_name": "Graph"}).json()["account_id"]
    first = graph(api, "GET", f"/v21.0/{account}")  # 3
    assert first.status_code == 200, first.text
    assert remaining(first) == 0
    assert by_token.get("/accounts").status_code == 429
    refused = graph(api, "POST", f"/v21.0/{account}/messages",
                    json={"messaging_product": "whatsapp", "to": "15550001111", "type": "text",
                          "text": {"body": "hi"}})
    meta_error(refused, 429, 130429)
    assert int(refused.headers["Retry-After"]) >= 1 and remaining(refused) == 0


def test_concurrent_requests_never_spend_one_token_twice(tenant_admin: Api) -> None:
    api = limited_key(tenant_admin, per_second=0.01, burst=5)  # no refill within the test

    def call(_: int) -> int:
        return int(api.get("/accounts").status_code)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(call, range(16)))
    assert sorted(statuses) == [200] * 5 + [429] * 11


def test_a_rate_limit_is_validated(tenant_admin: Api) -> None:
    for bad in ({"per_second": 0, "burst": 1}, {"per_second": 1, "burst": 0}, {"per_second": 1},
                {"per_second": 1, "burst": 1, "extra": 1}, {"per_second": 10_000, "burst": 1}):
        response = tenant_admin.post("/api-keys", json={"name": "x", "role": "viewer", "rate_limit": bad})
        assert response.status_code == 422, (bad, response.text)
    listed = tenant_admin.get("/api-keys").json()
    assert all("rate_limit" in key for key in (listed["items"] if isinstance(listed, dict) else listed))


def test_public_routes_carry_no_per_key_headers(runtime: Any) -> None:
    health = requests.get(runtime.api_url + "/health", timeout=10)
    assert health.status_code == 200 and "RateLimit" not in health.headers


def test_role_rates_are_read_from_the_setting() -> None:
    rates = Settings(api_rate_limits="viewer=1.5/4, admin=30/90").api_rate_by_role
    assert rates == {"viewer": (1.5, 4), "admin": (30.0, 90)}


def test_the_limiter_spends_refills_and_says_how_long_to_wait(runtime: Any) -> None:
    limiter, bucket, now = RateLimiter(), f"test#{time.time_ns()}", 1_000_000.0
    decisions = [limiter.take(bucket, 1.0, 3, now=now) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
    assert decisions[3].retry_after == 1 and decisions[2].reset == 3
    later: list[Any] = [limiter.take(bucket, 1.0, 3, now=now + 1.0), limiter.take(bucket, 1.0, 3, now=now + 1.0)]
    assert [d.allowed for d in later] == [True, False]  # one token back after one second
    fresh = RateLimiter()  # another process: no hint about the bucket, same answers
    assert fresh.take(bucket, 1.0, 3, now=now + 10).remaining == 2  # idle long enough: full again


def test_identity_provider_callers_of_two_tenants_never_share_a_bucket() -> None:
    from core.models.common import Principal, Role
    from functions.service.rate_limits import bucket_of

    same_subject = [Principal(key_id="idp:alice", tenant_id=t, role=Role.ADMIN, credential="idp") for t in "ab"]
    assert bucket_of(same_subject[0]) != bucket_of(same_subject[1])
    key = Principal(key_id="key_01", tenant_id="a", role=Role.ADMIN)
    assert bucket_of(key) == bucket_of(key.model_copy(update={"credential": "jwt"}))  # a key and its tokens


def test_an_unreachable_bucket_table_lets_requests_through(tenant_admin: Api, runtime: Any) -> None:
    from core.store import tables

    api = limited_key(tenant_admin, per_second=0.2, burst=1)
    tables.RateBucketItem.Meta.table_name, tables.RateBucketItem._connection = "no-such-rate-table", None
    try:
        answers = [api.get("/accounts") for _ in range(3)]  # burst 1: two would be refused with the table there
    finally:
        tables.RateBucketItem.Meta.table_name = runtime.env["RATE_LIMITS_TABLE"]
        tables.RateBucketItem._connection = None
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert all("RateLimit" not in a.headers for a in answers)
