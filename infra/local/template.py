"""Reading template.yaml: CloudFormation short-form tags, resources by type, API routes, SQS mappings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, tag: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = node.value
        if tag == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


for _name in ("Ref", "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
              "FindInMap", "GetAZs", "ImportValue", "Base64", "Cidr", "Condition"):
    _CfnLoader.add_constructor(f"!{_name}", lambda loader, node, _t=_name: _tag(loader, _t, node))


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain data, short-form tags turned into their long form."""
    with path.open(encoding="utf-8") as fh:
        data = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass with CFN tags only
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a template")
    return data


@dataclass(frozen=True)
class Route:
    """One API event of a function: method is lower-case, `any` for ANY."""

    function: str
    path: str
    method: str
    authorizer: str | None


@dataclass(frozen=True)
class SqsMapping:
    function: str
    queue: str  # logical id
    batch_size: int
    report_failures: bool
    window_seconds: int


def _merged_function(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    props = dict(template.get("Globals", {}).get("Function", {}))
    own = template["Resources"][logical_id].get("Properties", {})
    env = dict(props.get("Environment", {}).get("Variables", {}))
    env.update(own.get("Environment", {}).get("Variables", {}))
    props.update(own)
    props["Environment"] = {"Variables": env}
    return props


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Serverless functions by logical id, with Globals applied."""
    return {lid: _merged_function(template, lid) for lid, res in template["Resources"].items()
            if res.get("Type") == "AWS::Serverless::Function"}


def api_routes(template: dict[str, Any]) -> list[Route]:
    """Every Api event of every function, with the authorizer that applies to it."""
    default_auth: dict[str, str | None] = {}
    for lid, res in template["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Api":
            default_auth[lid] = res.get("Properties", {}).get("Auth", {}).get("DefaultAuthorizer")
    routes = []
    for fid, props in functions(template).items():
        for event in props.get("Events", {}).values():
            if event.get("Type") != "Api":
                continue
            ep = event["Properties"]
            api_ref = ep.get("RestApiId", {}).get("Ref") if isinstance(ep.get("RestApiId"), dict) else None
            auth = ep.get("Auth", {}).get("Authorizer", default_auth.get(api_ref or ""))
            routes.append(Route(fid, ep["Path"], ep["Method"].lower(), None if auth == "NONE" else auth))
    return routes


def sqs_mappings(template: dict[str, Any]) -> list[SqsMapping]:
    """Every SQS event source mapping declared on a function."""
    mappings = []
    for fid, props in functions(template).items():
        for event in props.get("Events", {}).values():
            if event.get("Type") != "SQS":
                continue
            ep = event["Properties"]
            queue = ep["Queue"]["Fn::GetAtt"][0]
            mappings.append(SqsMapping(
                fid, queue, int(ep.get("BatchSize", 10)),
                "ReportBatchItemFailures" in ep.get("FunctionResponseTypes", []),
                int(ep.get("MaximumBatchingWindowInSeconds", 0)),
            ))
    return mappings


def schedules(template: dict[str, Any]) -> list[tuple[str, float]]:
    """(function, seconds) of every `Schedule` event with a `rate(...)` expression."""
    units = {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}
    found = []
    for fid, props in functions(template).items():
        for event in props.get("Events", {}).values():
            if event.get("Type") != "Schedule":
                continue
            expression = str(event["Properties"]["Schedule"])
            amount, unit = expression.removeprefix("rate(").removesuffix(")").split()
            found.append((fid, float(amount) * units[unit]))
    return found


def authorizers(template: dict[str, Any]) -> dict[str, str]:
    """Authorizer name → the logical id of its function."""
    found = {}
    for res in template["Resources"].values():
        if res.get("Type") != "AWS::Serverless::Api":
            continue
        for name, spec in res.get("Properties", {}).get("Auth", {}).get("Authorizers", {}).items():
            found[name] = spec["FunctionArn"]["Fn::GetAtt"][0]
    return found


@dataclass(frozen=True)
class WebSocketApi:
    """An `AWS::ApiGatewayV2::Api` of protocol WEBSOCKET: its route selection and route key → function."""

    logical_id: str
    route_selection: str
    routes: dict[str, str]


def _integration_function(template: dict[str, Any], integration: dict[str, Any]) -> str | None:
    """The function an AWS_PROXY integration invokes (`${Fn.Arn}` in its Sub, or a GetAtt)."""
    uri = integration.get("Properties", {}).get("IntegrationUri")
    text = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
    if isinstance(text, list):
        text = text[0]
    if isinstance(text, str):
        match = re.search(r"\$\{(\w+)\.Arn\}", text)
        return match.group(1) if match else None
    if isinstance(uri, dict) and "Fn::GetAtt" in uri:
        return str(uri["Fn::GetAtt"][0])
    return None


def websocket_apis(template: dict[str, Any]) -> list[WebSocketApi]:
    """Every WebSocket API of the template with its routes (`Target: integrations/${Integration}`)."""
    resources = template["Resources"]
    apis = []
    for lid, res in resources.items():
        props = res.get("Properties", {})
        if res.get("Type") != "AWS::ApiGatewayV2::Api" or props.get("ProtocolType") != "WEBSOCKET":
            continue
        routes: dict[str, str] = {}
        for route in resources.values():
            rprops = route.get("Properties", {})
            if route.get("Type") != "AWS::ApiGatewayV2::Route" or rprops.get("ApiId") != {"Ref": lid}:
                continue
            target = rprops.get("Target")
            text = target.get("Fn::Sub") if isinstance(target, dict) else target
            match = re.search(r"integrations/\$\{(\w+)\}", str(text or ""))
            function = _integration_function(template, resources[match.group(1)]) if match else None
            if function:
                routes[str(rprops["RouteKey"])] = function
        apis.append(WebSocketApi(lid, str(props.get("RouteSelectionExpression", "$request.body.action")), routes))
    return apis
