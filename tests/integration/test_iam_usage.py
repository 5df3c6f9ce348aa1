"""template.yaml grants each function and the browser host exactly the AWS calls its code makes (infra/iam_usage.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from infra import iam_usage
from infra.local.template import load_template


def _host_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    role = template["Resources"]["BrowserHostTaskRole"]["Properties"]
    return list(role["Policies"][0]["PolicyDocument"]["Statement"])


def test_every_grant_is_used_and_every_call_is_granted() -> None:
    unused, missing = iam_usage.differences(load_template())
    assert missing == set(), f"calls in infra/iam_usage.py the template does not grant: {sorted(missing)}"
    assert unused == set(), f"grants no code uses (remove them, or add the call to USAGE): {sorted(unused)}"


def test_every_aws_call_of_the_code_has_a_row() -> None:
    # Given the AST inventory of the code's AWS calls, Then it is the table's: a new call needs its row
    assert iam_usage.call_sites() == iam_usage.CALL_SITES, "run `python -m infra.iam_usage` and update CALL_SITES"


def test_a_removed_grant_is_caught() -> None:
    # Given the host's control queue statement without SendMessage (nudge_fleet needs it)
    template = copy.deepcopy(load_template())
    statements = _host_statements(template)
    control = next(s for s in statements if s.get("Sid") == "ControlQueue")
    control["Action"] = [a for a in control["Action"] if a != "sqs:SendMessage"]
    # Then the test reports it as a call without a grant
    _, missing = iam_usage.differences(template)
    assert missing == {("BrowserHostTaskRole", "HostControlQueue", "sqs:SendMessage")}


def test_an_extra_grant_is_caught() -> None:
    # Given the host task role granted Scan on the accounts table again
    template = copy.deepcopy(load_template())
    statements = _host_statements(template)
    next(s for s in statements if s.get("Sid") == "Accounts")["Action"].append("dynamodb:Scan")
    unused, _ = iam_usage.differences(template)
    assert unused == {("BrowserHostTaskRole", "AccountsTable", "dynamodb:Scan")}


def test_a_call_added_without_a_row_is_caught(tmp_path: Path) -> None:
    # Given a copy of the code where the host's store also scans the accounts table
    for folder in iam_usage.SCANNED:
        for path in (iam_usage.ROOT / folder).rglob("*.py"):
            target = tmp_path / path.relative_to(iam_usage.ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    store = tmp_path / "browser_host" / "store.py"
    store.write_text(store.read_text() + "\n\ndef everything():\n    return list(AccountItem.scan())\n")
    # Then the inventory differs from the table in that module
    found = iam_usage.call_sites(tmp_path)
    assert found != iam_usage.CALL_SITES
    assert found["browser_host/store.py"] == {"AccountItem.scan": 1}


def test_the_ratchet_only_names_policy_template_grants() -> None:
    # KNOWN_UNUSED may only hold what a SAM policy template grants wholesale, never a hand-written statement's action.
    bundled = {a for _, actions in iam_usage.SAM_POLICY_TEMPLATES.values() for a in actions}
    named = {a for resources in iam_usage.KNOWN_UNUSED.values() for actions in resources.values() for a in actions}
    assert named <= bundled
    assert "BrowserHostTaskRole" not in iam_usage.KNOWN_UNUSED
