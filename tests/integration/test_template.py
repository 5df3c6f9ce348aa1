"""template.yaml is the single source of truth: routes, tables and the OpenAPI document must match the code."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.store import tables
from functions.api.app import create_app, openapi_json
from infra.local.template import TEMPLATE_PATH, api_routes, load_template
from tests.conftest import ROOT, Api

# One handler, split in three functions for the Lambda resource-policy size.
API_FUNCTIONS = {"ApiFunction", "IntegrationsApiFunction", "LegacyApiFunction"}


def handler_routes() -> set[tuple[str, str]]:
    """(method, path) of every route the API function's resolver serves, in template syntax."""
    app = create_app()
    found = set()
    for route in app._static_routes + app._dynamic_routes:
        found.add((route.method.lower(), re.sub(r"<(\w+)>", r"{\1}", route.path)))
    return found


def template_routes(template: dict[str, Any]) -> set[tuple[str, str]]:
    """(method, path) of every concrete route of the API function (catch-all ANY events excluded)."""
    return {(r.method, r.path) for r in api_routes(template) if r.function in API_FUNCTIONS and r.method != "any"}


def route_drift(template: dict[str, Any]) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    """(declared but not handled, handled but not declared)."""
    declared, handled = template_routes(template), handler_routes()
    return declared - handled, handled - declared


def test_template_and_handler_routes_are_the_same_set() -> None:
    missing_handler, undeclared = route_drift(load_template())
    assert missing_handler == set(), f"routes in template.yaml without a handler: {missing_handler}"
    assert undeclared == set(), f"handler routes unreachable on API Gateway: {undeclared}"


def test_a_route_added_to_the_template_without_a_handler_is_caught() -> None:
    template = copy.deepcopy(load_template())
    template["Resources"]["ApiFunction"]["Properties"]["Events"]["Bogus"] = {
        "Type": "Api", "Properties": {"RestApiId": {"Ref": "Api"}, "Path": "/accounts/{account_id}/bogus",
                                      "Method": "post"}}
    missing_handler, _ = route_drift(template)
    assert missing_handler == {("post", "/accounts/{account_id}/bogus")}


def test_no_function_has_more_routes_than_its_lambda_policy_can_hold() -> None:
    # SAM adds one AWS::Lambda::Permission (~390 bytes of resource policy) per Api event and the policy is
    # capped at 20 KB: past ~50 events `sam deploy` fails, which `sam validate` does not catch.
    from collections import Counter

    per_function = Counter(r.function for r in api_routes(load_template()))
    assert max(per_function.values()) <= 45, per_function


def test_every_declared_path_has_a_catch_all_for_405() -> None:
    routes = api_routes(load_template())
    concrete = {r.path for r in routes if r.method != "any"}
    catch_all = {r.path for r in routes if r.method == "any"}
    assert concrete <= catch_all


def test_every_template_route_reaches_its_handler_over_http(root_api: Api) -> None:
    # Given each route of the template, When it is called through the local API Gateway,
    # Then the answer comes from a matching handler route (never a 404/405 route miss)
    for method, path in sorted(template_routes(load_template())):
        concrete = re.sub(r"\{(\w+)\}", lambda m: "key_" + "0" * 26 if m.group(1) == "key_id" else "x1", path)
        response = root_api.request(method.upper(), concrete, json={} if method in {"post", "patch"} else None)
        code = response.json().get("code") if "json" in response.headers.get("Content-Type", "") else None
        assert code not in {"route_not_found", "method_not_allowed"}, (method, path, response.text)


def _table_schema(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props = template["Resources"][logical_id]["Properties"]
    return {
        "keys": sorted((k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]),
        "indexes": sorted((g["IndexName"], tuple(sorted((k["AttributeName"], k["KeyType"]) for k in g["KeySchema"])))
                          for g in props.get("GlobalSecondaryIndexes", [])),
    }


def _model_schema(model: Any) -> dict[str, Any]:
    schema = model._get_schema()
    return {
        "keys": sorted((k["AttributeName"], k["KeyType"]) for k in schema["key_schema"]),
        "indexes": sorted((g["index_name"], tuple(sorted((k["AttributeName"], k["KeyType"]) for k in g["key_schema"])))
                          for g in schema["global_secondary_indexes"]),
    }


@pytest.mark.parametrize(("logical_id", "model"), [
    ("AccountsTable", tables.AccountItem), ("MessagesTable", tables.MessageItem),
    ("ApiKeysTable", tables.ApiKeyItem), ("IdempotencyTable", tables.IdempotencyItem),
    ("LeasesTable", tables.LeaseItem),
    ("ProducersTable", tables.ProducerItem), ("ContactsTable", tables.ContactItem),
])
def test_tables_in_the_template_match_the_pynamodb_models(logical_id: str, model: Any) -> None:
    tables.bind(Settings())
    assert _table_schema(load_template(), logical_id) == _model_schema(model)


def test_committed_openapi_document_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    generated = json.loads(openapi_json(create_app()))
    assert committed == generated, "run `python -m infra.openapi` to regenerate docs/openapi.json"


def test_sam_validate_lint() -> None:
    sam = ROOT / ".venv-sam" / "bin" / "sam"
    if not sam.exists():
        sam_path = shutil.which("sam")
        if sam_path is None:
            pytest.skip("SAM CLI not installed: `make test` installs it into .venv-sam")
        sam = Path(sam_path)
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}
    result = subprocess.run([str(sam), "validate", "--lint", "--template-file", str(TEMPLATE_PATH)],
                            capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
