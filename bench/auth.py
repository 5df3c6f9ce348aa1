"""The authorizer and the rate limiter: what each request costs before its route runs.

Run: `python -m bench.auth [--calls 1000] [--no-write]`. The authorizer's handler runs in this process against
moto's server over real HTTP: an API key costs one GetItem (the key by id); an access token (JWT) a signature
check plus the same GetItem (a revoked key's tokens stop at once), and the signing key's lookup, cached. The rate
limiter is one conditional UpdateItem per allowed request. The bare rows make the same DynamoDB calls through
boto3 without our code, interleaved call by call with the measured ones, so the ratios hold on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

for _name, _value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                      ("AWS_DEFAULT_REGION", "us-east-1"), ("POWERTOOLS_TRACE_DISABLED", "true"),
                      ("POWERTOOLS_METRICS_DISABLED", "true"), ("POWERTOOLS_LOG_LEVEL", "WARNING")):
    os.environ.setdefault(_name, _value)

from bench.report import machine, pct, source_state, write_section  # noqa: E402

ARN = "arn:aws:execute-api:us-east-1:000000000000:api/v1/GET/accounts"


def _row(name: str, samples: list[float], bare: list[float] | None = None) -> str:
    p50, p99 = pct(samples, 0.5), pct(samples, 0.99)
    ratio = f"{p50 / statistics.median(bare):.2f}" if bare else "1.00"
    return f"| {name} | {p50:.2f} | {p99:.2f} | {ratio} |"


def measure(calls: int) -> list[str]:
    from infra.local.emulator import free_port
    from infra.local.lambda_runtime import LambdaContext
    from infra.local.runtime import GENEROUS_API_RATES, LocalRuntime, RuntimeConfig

    runtime = LocalRuntime(RuntimeConfig(aws_port=free_port(), api_port=free_port(),
                                         extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING",
                                                    "API_RATE_LIMITS": GENEROUS_API_RATES})).start()
    try:
        import boto3

        from core.store.rate_limits import RateLimiter
        from functions.auth.handler import lambda_handler
        from functions.service.api_keys import authenticate, ensure_bootstrap_key, issue_token
        from functions.service.context import services

        svc = services()
        key, _ = ensure_bootstrap_key(svc, None)
        token = issue_token(svc, authenticate(svc, key)).access_token
        context = LambdaContext(function_name="AuthorizerFunction", timeout_seconds=10)
        by_key = {"type": "REQUEST", "methodArn": ARN, "headers": {"X-Api-Key": key}}
        by_token = {"type": "REQUEST", "methodArn": ARN, "headers": {"Authorization": f"Bearer {token}"}}
        ddb = boto3.client("dynamodb", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
        keys_table, buckets = runtime.env["API_KEYS_TABLE"], runtime.env["RATE_LIMITS_TABLE"]
        key_id = authenticate(svc, key).key_id
        limiter = RateLimiter()
        samples: dict[str, list[float]] = {n: [] for n in ("key", "jwt", "get", "limit", "update")}
        for event in (by_key, by_token):
            lambda_handler(event, context)  # warm: imports, connections, the signing key's cache
        for i in range(calls):
            for name, run in (
                    ("key", lambda: lambda_handler(by_key, context)),
                    ("jwt", lambda: lambda_handler(by_token, context)),
                    ("get", lambda: ddb.get_item(TableName=keys_table, Key={"key_id": {"S": key_id}},
                                                 ConsistentRead=False)),
                    ("limit", lambda: limiter.take("bench#limited", 100_000, 100_000)),
                    ("update", lambda i=i: ddb.update_item(
                        TableName=buckets, Key={"bucket": {"S": "bench#bare"}},
                        UpdateExpression="ADD tat_ms :d SET expires_at = :e",
                        ConditionExpression="attribute_not_exists(tat_ms) OR tat_ms <= :m",
                        ExpressionAttributeValues={":d": {"N": "1"}, ":e": {"N": str(int(time.time()) + 3600)},
                                                   ":m": {"N": str(10**15)}}))):
                start = time.perf_counter()
                result: Any = run()
                samples[name].append((time.perf_counter() - start) * 1000)
                if name in {"key", "jwt"}:
                    assert result["context"]["key_id"] == key_id, result
                if name == "limit":
                    assert result.allowed
        return [
            "| per request | p50 ms | p99 ms | p50 ratio to its bare call |",
            "|---|---|---|---|",
            _row("bare GetItem of the key (boto3)", samples["get"]),
            _row("authorizer, API key (`X-Api-Key`)", samples["key"], samples["get"]),
            _row("authorizer, access token (JWT, `Authorization: Bearer`)", samples["jwt"], samples["get"]),
            _row("bare conditional UpdateItem (boto3)", samples["update"]),
            _row("rate limiter, allowed request (`RateLimiter.take`)", samples["limit"], samples["update"]),
        ]
    finally:
        runtime.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    table = measure(args.calls)
    lines = [
        f"Measured {machine()} ({source_state()}; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at "
        f"the start: the machine is shared) with `python -m bench.auth --calls {args.calls}`: the authorizer's "
        "handler and the rate limiter in process against moto over HTTP, each call interleaved with the bare "
        "DynamoDB call it makes.",
        "",
        *table,
        "",
        "An API key costs one GetItem; a JWT adds its HS256 check and the same GetItem (the key is read on every "
        "call so that revoking it stops its tokens at once; the signing key is cached). The rate limiter adds one "
        "conditional UpdateItem to every authenticated request (a refused one a consistent GetItem more).",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("Authorizer and rate limiter", report)


if __name__ == "__main__":
    main()
