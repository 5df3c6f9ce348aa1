"""schemathesis against the local stack's `/openapi.json`: no generated request gets a server error or a dropped
connection, every answer has a documented status and matches its schema, schema-valid requests are taken,
schema-violating ones refused, and methods the API does not serve get 405 with `Allow`.

Every check, the examples, coverage and fuzzing phases, a fixed seed, a fresh tenant's admin key; settings in
schemathesis.toml (with why each check is widened where it is), hooks around known bugs of others in
fuzz_hooks.py. About a minute on two cores. To rerun by hand against `make run`:
`SCHEMATHESIS_HOOKS=tests/integration/fuzz_hooks.py schemathesis --config-file tests/integration/schemathesis.toml
run http://127.0.0.1:3000/openapi.json -H "X-Api-Key: $KEY" --checks all --phases examples,coverage,fuzzing`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import Api

HERE = Path(__file__).resolve().parent
SEED = 20261202
RUN_TIMEOUT = 420  # seconds; the run takes about one minute


def test_no_generated_request_breaks_the_api(tenant_admin: Api, tmp_path: Path) -> None:
    # Given a fresh tenant's admin key and the local stack's OpenAPI document
    # When schemathesis runs every check through its examples, coverage and fuzzing phases
    output, events = run_schemathesis(tenant_admin, tmp_path)
    try:
        # Then nothing fails and nothing errs (a dropped connection is an error), and every operation was tested
        failures = Counter(f"{f['operation']}: {f['code']} {f['title']} {(f.get('message') or '').splitlines()[-1:]}"
                           for f in failures_of(events))
        errors = [e for e in events if "NonFatalError" in e]
        assert not failures and not errors, (
            "\n".join(f"{n}x {what}" for what, n in failures.most_common()) + "\n" + json.dumps(errors)[:3000]
            + "\n" + output[-6000:])
        tested = {finished["recorder"]["label"] for finished in scenarios(events)}
        assert len(tested) >= 50, tested
    finally:
        remove_what_it_made(tenant_admin)


def run_schemathesis(api: Api, report_dir: Path) -> tuple[str, list[dict[str, Any]]]:
    """Run the CLI in a process of its own (the stack's functions keep this one's CPU); its output and events."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run",
        f"{api.base_url}/openapi.json", "--header", f"X-Api-Key: {api.key}", "--checks", "all",
        "--phases", "examples,coverage,fuzzing", "--seed", str(SEED), "--no-color",
        "--report", "ndjson", "--report-dir", str(report_dir),
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "fuzz_hooks.py")}
    result = subprocess.run(command, cwd=report_dir, env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT, check=False)
    reports = sorted(report_dir.glob("*.ndjson"))
    assert reports, result.stdout[-3000:] + result.stderr[-3000:]
    events = [json.loads(line) for line in reports[-1].read_text().splitlines() if line.strip()]
    return result.stdout + result.stderr, events


def scenarios(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event["ScenarioFinished"] for event in events if "ScenarioFinished" in event]


def failures_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every failed check of the run: operation, code (ST101 …), title and message."""
    found = []
    for finished in scenarios(events):
        for results in (finished["recorder"].get("checks") or {}).values():
            found.extend(result["failure_info"]["failure"] for result in results
                         if result.get("status") == "failure" and result.get("failure_info"))
    return found


def remove_what_it_made(admin: Api) -> None:
    """Delete the tenant's accounts and webhooks: the shared stack must not keep delivering or sweeping for them."""
    for collection, key in (("/webhooks", "webhook_id"), ("/accounts", "account_id")):
        for _ in range(50):
            items = admin.get(collection, params={"limit": 100} if collection == "/accounts" else None).json()
            if not items.get("items"):
                break
            for item in items["items"]:
                admin.delete(f"{collection}/{item[key]}")


def test_a_cloud_token_no_header_can_carry_is_refused(tenant_admin: Api) -> None:
    # Given a cloud account's credentials whose token has a character outside latin-1
    body = {"account_name": "x", "provider": "cloud",
            "cloud": {"phone_number_id": "106540352242922", "access_token": "EAAG" + "\U000106ed" * 16}}
    # When it is created, Then the API refuses it as invalid input (it was a 500 from the Graph client)
    response = tenant_admin.post("/accounts", json=body)
    assert response.status_code == 422, response.text

