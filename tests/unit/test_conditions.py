"""Template conditions in the local runtime: evaluation, skipped resources, Fn::If and AWS::NoValue. No network."""

from __future__ import annotations

from typing import Any

import pytest

from infra.local.resources import (
    _CREATORS,
    _IN_PROCESS,
    NOT_EMULATED,
    NOT_NEEDED_LOCALLY,
    Stack,
    create_resources,
    evaluate_conditions,
)
from infra.local.template import load_template


def _stack(**parameters: str) -> Stack:
    return Stack(name="wagate", region="us-east-1", endpoint_url=None, parameters=parameters,
                 list_parameters=frozenset({"Subnets"}))


def _conditions(conditions: dict[str, Any], **parameters: str) -> dict[str, bool]:
    return evaluate_conditions({"Conditions": conditions}, _stack(**parameters))


def _equals(ref: str, value: str) -> dict[str, Any]:
    return {"Fn::Equals": [{"Ref": ref}, value]}


def test_equals_not_and_or_evaluate_against_parameters() -> None:
    conditions = {
        "IsProd": _equals("Env", "prod"),
        "NotProd": {"Fn::Not": [_equals("Env", "prod")]},
        "ProdInEu": {"Fn::And": [_equals("Env", "prod"), _equals("AWS::Region", "eu-west-1")]},
        "ProdOrUs": {"Fn::Or": [_equals("Env", "prod"), _equals("AWS::Region", "us-east-1")]},
    }
    assert _conditions(conditions, Env="prod") == {"IsProd": True, "NotProd": False, "ProdInEu": False,
                                                   "ProdOrUs": True}
    assert _conditions(conditions, Env="dev") == {"IsProd": False, "NotProd": True, "ProdInEu": False,
                                                  "ProdOrUs": True}


def test_conditions_refer_to_other_conditions_in_long_and_short_form() -> None:
    # Given `Condition: X` (long form) and `!Condition X` (what the YAML loader makes of the short form),
    # declared before the condition they use
    conditions = {
        "Both": {"Fn::And": [{"Condition": "HasImage"}, {"Fn::Condition": "HasVpc"}]},
        "HasImage": {"Fn::Not": [_equals("Image", "")]},
        "HasVpc": {"Fn::Not": [_equals("Vpc", "")]},
    }
    # Then they evaluate whatever the order
    assert _conditions(conditions, Image="img", Vpc="vpc-1")["Both"] is True
    assert _conditions(conditions, Image="img", Vpc="")["Both"] is False


def test_equals_compares_as_strings_and_joins_list_parameters() -> None:
    conditions = {
        "One": {"Fn::Equals": [{"Ref": "Count"}, 1]},
        "NoSubnets": {"Fn::Equals": [{"Fn::Join": ["", {"Ref": "Subnets"}]}, ""]},
    }
    assert _conditions(conditions, Count="1", Subnets="") == {"One": True, "NoSubnets": True}
    assert _conditions(conditions, Count="2", Subnets="subnet-a,subnet-b") == {"One": False, "NoSubnets": False}


def test_a_cycle_or_an_unknown_condition_or_function_is_an_error() -> None:
    with pytest.raises(ValueError, match="cycle"):
        _conditions({"A": {"Condition": "B"}, "B": {"Fn::Not": [{"Condition": "A"}]}})
    with pytest.raises(ValueError, match="unknown condition"):
        _conditions({"A": {"Condition": "Missing"}})
    with pytest.raises(ValueError, match="unsupported"):
        _conditions({"A": {"Fn::Contains": [["a"], "a"]}})


def test_fn_if_and_no_value_resolve_against_the_conditions() -> None:
    # Given a stack whose condition HasImage is false
    stack = _stack(Image="")
    stack.conditions = {"HasImage": False}
    value = {
        "Name": {"Fn::If": ["HasImage", "host", "none"]},
        "Optional": {"Fn::If": ["HasImage", "x", {"Ref": "AWS::NoValue"}]},
        "Items": ["a", {"Fn::If": ["HasImage", "b", {"Ref": "AWS::NoValue"}]}],
    }
    # Then the false branches are taken and AWS::NoValue removes the property and the list item
    assert stack.resolve(value) == {"Name": "none", "Items": ["a"]}
    stack.conditions = {"HasImage": True}
    assert stack.resolve(value) == {"Name": "host", "Optional": "x", "Items": ["a", "b"]}


def test_list_parameters_resolve_to_lists() -> None:
    stack = _stack(Subnets="subnet-a,subnet-b", Image="img")
    assert stack.resolve({"Ref": "Subnets"}) == ["subnet-a", "subnet-b"]
    assert stack.resolve({"Fn::Join": ["+", {"Ref": "Subnets"}]}) == "subnet-a+subnet-b"
    assert stack.resolve({"Ref": "Image"}) == "img"


def _conditional_template() -> dict[str, Any]:
    return {
        "Parameters": {"Image": {"Type": "String", "Default": ""}},
        "Conditions": {"HasImage": {"Fn::Not": [_equals("Image", "")]}},
        "Resources": {
            "Service": {"Type": "AWS::ECS::Service", "Condition": "HasImage", "Properties": {}},
            "Role": {"Type": "AWS::IAM::Role", "Condition": "HasImage", "Properties": {}},
            "Unknown": {"Type": "AWS::Made::Up", "Condition": "HasImage", "Properties": {}},
            "Alarm": {"Type": "AWS::CloudWatch::Alarm", "Properties": {}},
        },
    }


def test_resources_under_a_false_condition_are_skipped() -> None:
    # Given a template whose conditional resources include a type the local runtime cannot create
    # When it is created with the default (empty) image
    stack = create_resources(_conditional_template(), endpoint_url=None)
    # Then only the unconditional resource exists, and nothing reached an AWS endpoint
    assert stack.conditions == {"HasImage": False}
    assert set(stack.refs) == {"Alarm"}


def test_not_emulated_types_are_skipped_and_unknown_types_still_fail() -> None:
    template = _conditional_template()
    # Given the condition is true, When the template holds only types the runtime knows
    del template["Resources"]["Unknown"]
    stack = create_resources(template, endpoint_url=None, parameters={"Image": "repo/host:1"})
    # Then the ECS and IAM resources resolve to placeholders instead of being created
    assert stack.conditions == {"HasImage": True}
    assert set(stack.refs) == {"Service", "Role", "Alarm"}
    # And a type nobody taught the runtime is still an error, not silently ignored
    with pytest.raises(NotImplementedError, match="AWS::Made::Up"):
        create_resources(_conditional_template(), endpoint_url=None, parameters={"Image": "repo/host:1"})


def test_the_browser_host_exists_only_with_an_image_and_a_network() -> None:
    template = load_template()

    def has_browser_host(**parameters: str) -> bool:
        params = {name: str(spec.get("Default", "")) for name, spec in template["Parameters"].items()}
        params.update(parameters)
        stack = Stack(name="wagate", region="us-east-1", endpoint_url=None, parameters=params,
                      list_parameters=frozenset({"VpcSubnetIds"}))
        return evaluate_conditions(template, stack)["HasBrowserHost"]

    assert has_browser_host() is False
    assert has_browser_host(BrowserHostImage="1.dkr.ecr/x:1", VpcId="vpc-1", VpcSubnetIds="subnet-a") is True
    assert has_browser_host(BrowserHostImage="1.dkr.ecr/x:1") is False


def test_every_template_resource_type_is_created_run_in_process_or_deliberately_not_emulated() -> None:
    template = load_template()
    known = set(_CREATORS) | _IN_PROCESS | NOT_EMULATED | NOT_NEEDED_LOCALLY
    unknown = {res["Type"] for res in template["Resources"].values()} - known
    assert unknown == set(), f"teach infra/local/resources.py these types: {unknown}"
    # The serverless part must deploy without the browser host: what the runtime skips is conditional.
    unconditional = {lid for lid, res in template["Resources"].items()
                     if res["Type"] in NOT_EMULATED and res.get("Condition") != "HasBrowserHost"}
    # ...except the REST API's access logs (a log group, and API Gateway's account-wide role that writes it).
    assert unconditional == {"ApiAccessLogGroup", "ApiGatewayCloudWatchRole"}
