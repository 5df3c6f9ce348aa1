"""Creates the resources template.yaml declares on an AWS endpoint and resolves the functions' environment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.local.template import functions

ACCOUNT_ID = "000000000000"  # moto's and LocalStack's default account


@dataclass
class Stack:
    """What was created: physical ids by logical id, plus what Ref/GetAtt resolve to."""

    name: str
    region: str
    endpoint_url: str | None
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Evaluate Ref, GetAtt, Sub and Join against this stack."""
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return self._ref(value["Ref"])
        if "Fn::GetAtt" in value:
            lid, attr = value["Fn::GetAtt"]
            return self.attrs[(lid, attr)]
        if "Fn::Sub" in value:
            spec = value["Fn::Sub"]
            text, local = (spec, {}) if isinstance(spec, str) else (spec[0], self.resolve(spec[1]))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(local.get(m.group(1)) or self._sub_var(m.group(1))), text)
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(self.resolve(p)) for p in parts)
        return {k: self.resolve(v) for k, v in value.items()}

    def _sub_var(self, name: str) -> str:
        if "." in name:
            lid, attr = name.split(".", 1)
            return self.attrs[(lid, attr)]
        return str(self._ref(name))

    def _ref(self, name: str) -> str:
        pseudo = {"AWS::StackName": self.name, "AWS::Region": self.region, "AWS::AccountId": ACCOUNT_ID,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.refs[name]

    def function_environment(self, template: dict[str, Any]) -> dict[str, str]:
        """The union of every function's resolved environment (they agree by construction)."""
        env: dict[str, str] = {}
        for lid, props in functions(template).items():
            for key, raw in props["Environment"]["Variables"].items():
                value = str(self.resolve(raw))
                if env.get(key, value) != value:
                    raise ValueError(f"{lid} sets {key}={value!r}, another function {env[key]!r}")
                env[key] = value
        return env


def _client(stack: Stack, service: str) -> Any:
    return boto3.session.Session().client(service, region_name=stack.region, endpoint_url=stack.endpoint_url)


def _dynamodb_table(stack: Stack, lid: str, props: dict[str, Any]) -> None:
    props = stack.resolve(props)
    name = props["TableName"]
    params: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        params["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    ddb = _client(stack, "dynamodb")
    try:
        ddb.create_table(**params)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        try:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        except ClientError as exc:  # already enabled on a re-run
            if exc.response["Error"]["Code"] != "ValidationException":
                raise
    stack.refs[lid] = name
    description = ddb.describe_table(TableName=name)["Table"]
    stack.attrs[(lid, "Arn")] = description["TableArn"]


_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds",
                     "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
                     "SqsManagedSseEnabled", "MaximumMessageSize")


def _sqs_queue(stack: Stack, lid: str, props: dict[str, Any]) -> None:
    props = stack.resolve(props)
    attributes = {k: str(v).lower() if isinstance(v, bool) else str(v)
                  for k, v in props.items() if k in _QUEUE_ATTRIBUTES}
    if "RedrivePolicy" in props:
        import json

        attributes["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    sqs = _client(stack, "sqs")
    url = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    stack.refs[lid] = url
    stack.attrs[(lid, "Arn")] = arn
    stack.attrs[(lid, "QueueName")] = props["QueueName"]
    stack.attrs[(lid, "QueueUrl")] = url


def _s3_bucket(stack: Stack, lid: str, props: dict[str, Any]) -> None:
    props = stack.resolve(props)
    name = props["BucketName"]
    s3 = _client(stack, "s3")
    try:
        if stack.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": stack.region})
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name,
                                   PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    stack.refs[lid] = name
    stack.attrs[(lid, "Arn")] = f"arn:aws:s3:::{name}"


def _kms_key(stack: Stack, lid: str, props: dict[str, Any]) -> None:
    kms = _client(stack, "kms")
    alias = f"alias/{stack.name}-{lid}"
    try:
        key_id = kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
    except ClientError:
        key_id = kms.create_key(Description=str(props.get("Description", lid)))["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    stack.refs[lid] = key_id
    stack.attrs[(lid, "Arn")] = f"arn:aws:kms:{stack.region}:{ACCOUNT_ID}:key/{key_id}"


# Resources that need no emulator object locally: the functions run in-process, the API is served by
# infra.local.apigw, and alarms have nothing to watch here.
_IN_PROCESS = {"AWS::Serverless::Function", "AWS::Serverless::Api", "AWS::CloudWatch::Alarm"}
_CREATORS = {
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::KMS::Key": _kms_key,
}


def _order(resources: dict[str, Any]) -> list[str]:
    """Logical ids so that every GetAtt/Ref target is created before its user."""
    deps: dict[str, set[str]] = {}
    for lid, res in resources.items():
        found: set[str] = set()

        def walk(value: Any, found: set[str] = found) -> None:
            if isinstance(value, dict):
                if "Ref" in value and value["Ref"] in resources:
                    found.add(value["Ref"])
                if "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in resources:
                    found.add(value["Fn::GetAtt"][0])
                for v in value.values():
                    walk(v)
            elif isinstance(value, list):
                for v in value:
                    walk(v)

        walk(res.get("Properties", {}))
        deps[lid] = found - {lid}
    ordered: list[str] = []

    def visit(lid: str) -> None:
        if lid in ordered:
            return
        for dep in sorted(deps[lid]):
            visit(dep)
        ordered.append(lid)

    for lid in resources:
        visit(lid)
    return ordered


def create_resources(
    template: dict[str, Any], *, endpoint_url: str | None, region: str = "us-east-1", stack_name: str = "wagate",
    parameters: dict[str, str] | None = None,
) -> Stack:
    """Create every resource of the template (idempotently) and return what they resolve to."""
    params = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    params.update(parameters or {})
    stack = Stack(name=stack_name, region=region, endpoint_url=endpoint_url, parameters=params)
    resources = template["Resources"]
    for lid in _order(resources):
        kind = resources[lid]["Type"]
        if kind in _IN_PROCESS:
            stack.refs[lid] = lid
            stack.attrs[(lid, "Arn")] = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{stack_name}-{lid}"
            continue
        creator = _CREATORS.get(kind)
        if creator is None:
            raise NotImplementedError(f"the local runtime cannot create {kind} ({lid}); teach infra/local/resources.py")
        creator(stack, lid, resources[lid].get("Properties", {}))
    return stack
