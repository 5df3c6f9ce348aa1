"""Control plane: cold import of the API handler, warm in-process latency of create-account and enqueue.

Run: `python -m bench.control_plane [--calls 1000] [--no-write]`. The handlers run in this process against
moto's server over real HTTP, so the numbers include the DynamoDB/SQS round trips to the emulator. An
enqueue writes the `queued` row (the outbox) and sends a nudge to the owning host's inbox, or to the
control queue when no host holds the account (the case here: no host runs).
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

for _name, _value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                      ("AWS_DEFAULT_REGION", "us-east-1"), ("POWERTOOLS_TRACE_DISABLED", "true"),
                      ("POWERTOOLS_METRICS_DISABLED", "true"), ("POWERTOOLS_LOG_LEVEL", "WARNING")):
    os.environ.setdefault(_name, _value)

from bench.report import machine, write_section  # noqa: E402


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


def _summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {"p50": statistics.median(samples), "p95": samples[max(0, int(len(samples) * 0.95) - 1)],
            "p99": samples[max(0, int(len(samples) * 0.99) - 1)]}


class BareEnqueue:
    """The AWS calls of one enqueue without the handler: GetItem (account), conditional PutItem (message),
    SendMessage (nudge), straight through boto3 to the same moto: what the handler adds is the difference."""

    def __init__(self, runtime: Any, account_id: str, control_url: str) -> None:
        import boto3

        self.ddb = boto3.client("dynamodb", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
        self.sqs = boto3.client("sqs", endpoint_url=runtime.endpoint_url, region_name="us-east-1")
        self.accounts, self.messages = runtime.env["ACCOUNTS_TABLE"], runtime.env["MESSAGES_TABLE"]
        self.account_id, self.control_url = account_id, control_url
        self.samples: dict[str, list[float]] = {"get": [], "put": [], "send": [], "all": []}

    def once(self, i: int) -> None:
        t0 = time.perf_counter()
        self.ddb.get_item(TableName=self.accounts, Key={"account_id": {"S": self.account_id}}, ConsistentRead=True)
        t1 = time.perf_counter()
        self.ddb.put_item(TableName=self.messages, Item={
            "account_id": {"S": self.account_id}, "message_id": {"S": f"msg_bare{i:08d}"}, "status": {"S": "queued"},
            "direction": {"S": "outbound"}, "tenant_id": {"S": "bench"}, "type": {"S": "text"},
            "content": {"S": '{"to":"15550001111","type":"text","text":{"body":"x"}}'},
            "created_at": {"S": "2026-01-01T00:00:00.000Z"}, "updated_at": {"S": "2026-01-01T00:00:00.000Z"}},
            ConditionExpression="attribute_not_exists(message_id)")
        t2 = time.perf_counter()
        self.sqs.send_message(QueueUrl=self.control_url, MessageBody=json.dumps({"account_id": self.account_id,
                                                                                 "reason": "message"}))
        t3 = time.perf_counter()
        for name, value in (("get", t1 - t0), ("put", t2 - t1), ("send", t3 - t2), ("all", t3 - t0)):
            self.samples[name].append(value * 1000)

    def results(self) -> dict[str, dict[str, float]]:
        return {"bare enqueue calls (boto3, no handler)": _summary(self.samples["all"]),
                "- of which GetItem (account)": _summary(self.samples["get"]),
                "- of which conditional PutItem (message)": _summary(self.samples["put"]),
                "- of which SendMessage (nudge)": _summary(self.samples["send"])}


def warm_latencies(calls: int) -> dict[str, dict[str, float]]:
    from infra.local.emulator import free_port
    from infra.local.lambda_runtime import LambdaContext
    from infra.local.runtime import GENEROUS_API_RATES, LocalRuntime, RuntimeConfig

    runtime = LocalRuntime(RuntimeConfig(aws_port=free_port(), api_port=free_port(),
                                         extra_env={"POWERTOOLS_LOG_LEVEL": "WARNING",
                                                    "API_RATE_LIMITS": GENEROUS_API_RATES})).start()
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
        # No host runs here, so every nudge goes to the shared control queue.
        control = runtime.env["CONTROL_QUEUE_URL"]
        bare = BareEnqueue(runtime, account_id, control)
        samples: dict[str, list[float]] = {"create account": [], "enqueue text": []}
        for i in range(calls):
            if i % 25 == 0:
                # In production hosts drain the control queue; keep it short here (untimed).
                _drain(sqs, control)
            # Interleaved, so that the load of a shared machine falls on every row alike.
            for name, event, expected in (("create account", create, 201), ("enqueue text", send, 202)):
                start = time.perf_counter()
                response = lambda_handler(event, context)
                samples[name].append((time.perf_counter() - start) * 1000)
                assert response["statusCode"] == expected, response
            bare.once(i)
        return {**{name: _summary(values) for name, values in samples.items()}, **bare.results()}
    finally:
        runtime.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    import_ms, heaviest = cold_import_ms()
    latencies = warm_latencies(args.calls)
    lines = [
        f"Measured {machine()} (load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start: the "
        f"machine is shared) with `python -m bench.control_plane --calls {args.calls}`.",
        "",
        f"- Cold import of `functions.api.handler` (`python -X importtime`, median of 5): **{import_ms:.0f} ms**;"
        " heaviest top-level imports: " + ", ".join(f"`{n}` {ms:.0f} ms" for n, ms in heaviest),
        "",
        "| in-process warm call (moto over HTTP) | p50 ms | p95 ms | p99 ms |",
        "|---|---|---|---|",
        *(f"| {name} | {v['p50']:.2f} | {v['p95']:.2f} | {v['p99']:.2f} |" for name, v in latencies.items()),
        "",
        "Create account = one conditional PutItem; enqueue = GetItem (account) + conditional PutItem (the `queued`",
        "row, which is the outbox) + SendMessage (a nudge to the owner's inbox, here the control queue: no host",
        "holds the account). The control queue is drained every 25 iterations, untimed. The bare rows make the",
        "same three calls through boto3 without the handler (same moto), so the difference is the handler's own",
        "cost (event parsing, validation, authorization context, pydantic models, PynamoDB). The rows are",
        "interleaved call by call, so load from other jobs on the machine falls on all of them alike.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("Control plane", report)


if __name__ == "__main__":
    main()
