"""Control plane: cold import of the API handler, warm in-process latency of create-account and enqueue.

Run: `python -m bench.control_plane [--calls 1000]`. The handlers run in this process against moto's
server over real HTTP, so the numbers include the DynamoDB/SQS round trips to the emulator.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.report import machine, write_section


def cold_import_ms() -> tuple[float, list[tuple[str, float]]]:
    """Median over 5 fresh interpreters of `import functions.api.handler`, and the heaviest imports."""
    totals: list[float] = []
    heaviest: dict[str, float] = {}
    for _ in range(5):
        out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import functions.api.handler"],
                             capture_output=True, text=True, check=True, env={**os.environ}).stderr
        rows = [re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line) for line in out.splitlines()]
        parsed = [(m.group(4), int(m.group(2)), len(m.group(3))) for m in rows if m]
        totals.append(sum(cum for _, cum, depth in parsed if depth == 1) / 1000)
        for name, cum, _depth in parsed:
            # Third-party packages and our own top modules, wherever they were first imported.
            if "." not in name or (name.count(".") == 1 and name.startswith("functions.")):
                heaviest[name] = max(heaviest.get(name, 0), cum / 1000)
        heaviest.pop("functions", None)
    top = sorted(heaviest.items(), key=lambda kv: -kv[1])[:8]
    return statistics.median(totals), top


def _event(method: str, path: str, resource: str, params: dict[str, str] | None, body: Any, principal: dict[str, str]
           ) -> dict[str, Any]:
    return {
        "resource": resource, "path": path, "httpMethod": method, "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
        "pathParameters": params, "stageVariables": None, "body": json.dumps(body), "isBase64Encoded": False,
        "requestContext": {"requestId": "bench", "stage": "v1", "resourcePath": resource, "httpMethod": method,
                           "path": path, "authorizer": principal, "identity": {"sourceIp": "127.0.0.1"}},
    }


def _drain(sqs: Any, url: str) -> None:
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(batch)])


def warm_latencies(calls: int) -> dict[str, dict[str, float]]:
    from infra.local.emulator import free_port
    from infra.local.lambda_runtime import LambdaContext
    from infra.local.runtime import LocalRuntime, RuntimeConfig

    runtime = LocalRuntime(RuntimeConfig(aws_port=free_port(), api_port=free_port())).start()
    try:
        from functions.api.handler import lambda_handler

        principal = {"tenant_id": "bench", "role": "admin", "key_id": "key_bench", "account_ids": ""}
        context = LambdaContext(function_name="ApiFunction", timeout_seconds=29)
        create = _event("POST", "/accounts", "/accounts", None, {"account_name": "bench"}, principal)
        account_id = json.loads(lambda_handler(create, context)["body"])["account_id"]
        send = _event("POST", f"/accounts/{account_id}/messages", "/accounts/{account_id}/messages",
                      {"account_id": account_id}, {"to": "15550001111", "type": "text", "text": {"body": "x"}},
                      principal)
        import boto3

        sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
        outbound = runtime.stack.refs["OutboundQueue"] if runtime.stack else ""
        results: dict[str, dict[str, float]] = {}
        for name, event, expected in (("create account", create, 201), ("enqueue text", send, 202)):
            samples = []
            for i in range(calls):
                if i % 50 == 0:
                    # moto's FIFO send is O(queue length); in production the browser host drains the
                    # queue, so keep it short here (untimed) instead of measuring the emulator's scan.
                    _drain(sqs, outbound)
                start = time.perf_counter()
                response = lambda_handler(event, context)
                samples.append((time.perf_counter() - start) * 1000)
                assert response["statusCode"] == expected, response
            samples.sort()
            results[name] = {"p50": statistics.median(samples), "p95": samples[int(len(samples) * 0.95) - 1],
                             "p99": samples[int(len(samples) * 0.99) - 1]}
        return results
    finally:
        runtime.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args(argv)
    import_ms, heaviest = cold_import_ms()
    latencies = warm_latencies(args.calls)
    lines = [
        f"Measured {machine()} with `python -m bench.control_plane --calls {args.calls}`.",
        "",
        f"- Cold import of `functions.api.handler` (`python -X importtime`, median of 5): **{import_ms:.0f} ms**;"
        " heaviest top-level imports: " + ", ".join(f"`{n}` {ms:.0f} ms" for n, ms in heaviest),
        "",
        "| in-process warm call (moto over HTTP) | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|",
        *(f"| {name} | {v['p50']:.2f} | {v['p95']:.2f} | {v['p99']:.2f} |" for name, v in latencies.items()),
        "",
        "Create account = one conditional PutItem; enqueue = GetItem (account) + PutItem (message) + SendMessage",
        "(the outbound queue is drained every 50 calls, untimed: moto's FIFO send scans the whole queue).",
    ]
    report = "\n".join(lines)
    print(report)
    write_section("Control plane", report)


if __name__ == "__main__":
    main()
