"""The local API Gateway's routing and policy rules, no network."""

from __future__ import annotations

from infra.local.apigw import _allows, build_resources
from infra.local.resources import Stack
from infra.local.template import Route, api_routes, load_template, schedules, sqs_mappings


def _match(resources, path):  # type: ignore[no-untyped-def]
    parts = [p for p in path.split("/") if p]
    for resource in resources:
        params = resource.match(parts)
        if params is not None:
            return resource.path, params
    return None


def test_literal_segments_win_over_parameters_and_greedy_paths() -> None:
    resources = build_resources([
        Route("F", "/accounts/{account_id}", "get", None), Route("F", "/accounts/stats", "get", None),
        Route("F", "/{proxy+}", "any", None), Route("F", "/accounts/{account_id}/messages/{message_id}", "get", None),
    ])
    assert _match(resources, "/accounts/stats") == ("/accounts/stats", {})
    assert _match(resources, "/accounts/acc_1") == ("/accounts/{account_id}", {"account_id": "acc_1"})
    assert _match(resources, "/accounts/a/messages/m") == (
        "/accounts/{account_id}/messages/{message_id}", {"account_id": "a", "message_id": "m"})
    assert _match(resources, "/x/y/z") == ("/{proxy+}", {"proxy": "x/y/z"})


def test_policy_evaluation_explicit_deny_wins() -> None:
    arn = "arn:aws:execute-api:us-east-1:0:local/v1/GET/accounts"
    allow = {"Statement": [{"Effect": "Allow", "Resource": "arn:aws:execute-api:us-east-1:0:local/v1/*"}]}
    assert _allows(allow, arn)
    deny = {"Statement": [*allow["Statement"], {"Effect": "Deny", "Resource": [arn]}]}
    assert not _allows(deny, arn)
    assert not _allows({"Statement": []}, arn)


def test_template_parsing_reads_tags_routes_and_mappings() -> None:
    template = load_template()
    routes = api_routes(template)
    health = next(r for r in routes if r.path == "/health" and r.method == "get")
    accounts = next(r for r in routes if r.path == "/accounts" and r.method == "post")
    assert health.authorizer is None and accounts.authorizer == "ApiKeyAuthorizer"
    mappings = {m.queue: m for m in sqs_mappings(template)}
    assert set(mappings) == {"IngressQueue", "EventsQueue", "WebhookRetryQueue", "RealtimeQueue", "CloudOutboxQueue"}
    ingress = mappings["IngressQueue"]
    assert ingress.report_failures and ingress.batch_size == 10 and ingress.function == "IngressFunction"
    assert mappings["EventsQueue"].function == mappings["WebhookRetryQueue"].function == "WebhookFunction"
    cloud = mappings["CloudOutboxQueue"]
    assert cloud.function == "CloudSenderFunction" and cloud.report_failures


def test_intrinsics_resolve_against_the_stack() -> None:
    stack = Stack(name="wagate", region="eu-west-1", endpoint_url=None, parameters={"StageName": "v1"})
    stack.refs["Q"] = "https://sqs/q"
    stack.attrs[("Q", "Arn")] = "arn:q"
    assert stack.resolve({"Fn::Sub": "${AWS::StackName}-x-${AWS::Region}"}) == "wagate-x-eu-west-1"
    assert stack.resolve({"Fn::Sub": "${Q.Arn}/${StageName}"}) == "arn:q/v1"
    assert stack.resolve([{"Ref": "Q"}, {"Fn::GetAtt": ["Q", "Arn"]}]) == ["https://sqs/q", "arn:q"]
    assert stack.resolve({"Fn::Join": ["-", ["a", {"Ref": "AWS::AccountId"}]]}) == "a-000000000000"


def test_the_sweeper_schedule_is_read_from_the_template() -> None:
    # The local runtime fires each `Schedule` rule of the template (the sweeper every minute)
    assert schedules(load_template()) == [("SweeperFunction", 60.0)]

