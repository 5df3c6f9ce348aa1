"""Creates the resources template.yaml declares on an AWS endpoint and resolves the functions' environment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra.local.template import functions

ACCOUNT_ID = "000000000000"  # moto's and LocalStack's default account


class _NoValue:
    """What `Ref: AWS::NoValue` resolves to: the property or list item that holds it disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


@dataclass
class Stack:
    """What was created: physical ids by logical id, plus what Ref/GetAtt resolve to."""

    name: str
    region: str
    endpoint_url: str | None
    #: Services whose endpoint is not `endpoint_url` (DynamoDB on moto beside LocalStack).
    service_endpoints: dict[str, str] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    attrs: dict[tuple[str, str], str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    #: Parameters of a list type (CommaDelimitedList, List<...>): Ref gives their comma-split value.
    list_parameters: frozenset[str] = frozenset()
    #: The template's conditions, evaluated against the parameters (see `evaluate_conditions`).
    conditions: dict[str, bool] = field(default_factory=dict)

    def resolve(self, value: Any) -> Any:
        """Evaluate Ref, GetAtt, Sub, Join and If against this stack; AWS::NoValue removes what holds it."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if "Ref" in value:
            return NO_VALUE if value["Ref"] == "AWS::NoValue" else self._ref(value["Ref"])
        if "Fn::If" in value:
            name, when_true, when_false = value["Fn::If"]
            return self.resolve(when_true if self.conditions[name] else when_false)
        if "Fn::GetAtt" in value:
            lid, attr = value["Fn::GetAtt"]
            return self.attrs[(lid, attr)]
        if "Fn::Sub" in value:
            spec = value["Fn::Sub"]
            text, local = (spec, {}) if isinstance(spec, str) else (spec[0], self.resolve(spec[1]))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(local.get(m.group(1)) or self._sub_var(m.group(1))), text)
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(p) for p in self.resolve(parts))
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _sub_var(self, name: str) -> str:
        if "." in name:
            lid, attr = name.split(".", 1)
            return self.attrs[(lid, attr)]
        return str(self._ref(name))

    def _ref(self, name: str) -> Any:
        pseudo = {"AWS::StackName": self.name, "AWS::Region": self.region, "AWS::AccountId": ACCOUNT_ID,
                  "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            # CloudFormation splits list parameters; an empty one is [""], not [].
            return value.split(",") if name in self.list_parameters else value
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


def evaluate_conditions(template: dict[str, Any], stack: Stack) -> dict[str, bool]:
    """Every entry of the template's Conditions, evaluated against the stack's parameters.

    Supports what conditions may contain: Fn::Equals (over Ref, Join and other resolvable values),
    Fn::Not, Fn::And, Fn::Or and references to other conditions.
    """
    specs: dict[str, Any] = template.get("Conditions", {})
    done: dict[str, bool] = {}
    pending: list[str] = []

    def condition(name: str) -> bool:
        if name in done:
            return done[name]
        if name not in specs:
            raise ValueError(f"unknown condition {name!r}")
        if name in pending:
            raise ValueError(f"conditions refer to each other in a cycle: {' -> '.join([*pending, name])}")
        pending.append(name)
        done[name] = evaluate(specs[name])
        pending.pop()
        return done[name]

    def evaluate(expr: Any) -> bool:
        if not isinstance(expr, dict) or len(expr) != 1:
            raise ValueError(f"not a condition function: {expr!r}")
        [(fn, args)] = expr.items()
        if fn in {"Condition", "Fn::Condition"}:  # long form `Condition`, short-form `!Condition` tag
            return condition(args)
        if fn == "Fn::Equals":
            left, right = (stack.resolve(arg) for arg in args)
            return _condition_string(left) == _condition_string(right)
        if fn == "Fn::Not":
            [inner] = args
            return not evaluate(inner)
        if fn == "Fn::And":
            return all([evaluate(arg) for arg in args])
        if fn == "Fn::Or":
            return any([evaluate(arg) for arg in args])
        raise ValueError(f"unsupported function in a condition: {fn}")

    for name in specs:
        condition(name)
    return done


def _condition_string(value: Any) -> str:
    # CloudFormation compares strings: a Number parameter "1" equals the literal 1, true equals "true".
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _client(stack: Stack, service: str) -> Any:
    endpoint = stack.service_endpoints.get(service, stack.endpoint_url)
    return boto3.session.Session().client(service, region_name=stack.region, endpoint_url=endpoint)


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


def _sns_topic(stack: Stack, lid: str, props: dict[str, Any]) -> None:
    props = stack.resolve(props)
    name = props.get("TopicName") or f"{stack.name}-{lid}"
    arn = _client(stack, "sns").create_topic(Name=name)["TopicArn"]
    stack.refs[lid] = arn
    stack.attrs[(lid, "TopicArn")] = arn
    stack.attrs[(lid, "TopicName")] = name


def _sns_subscription(stack: Stack, lid: str, props: dict[str, Any]) -> None:
    """Subscribe a queue (or anything) to a topic; the emulator delivers SNS → SQS itself."""
    props = stack.resolve(props)
    attributes = {}
    # Only when true: moto treats any value it is given, "false" included, as raw delivery.
    if str(props.get("RawMessageDelivery", "")).lower() == "true":
        attributes["RawMessageDelivery"] = "true"
    if props.get("FilterPolicy"):
        import json

        attributes["FilterPolicy"] = json.dumps(props["FilterPolicy"])
    arn = _client(stack, "sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"],
                                          Endpoint=props["Endpoint"], Attributes=attributes,
                                          ReturnSubscriptionArn=True)["SubscriptionArn"]
    stack.refs[lid] = arn


def _sqs_queue_policy(stack: Stack, lid: str, props: dict[str, Any]) -> None:
    import json

    props = stack.resolve(props)
    sqs = _client(stack, "sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})
    stack.refs[lid] = lid


# Resources that need no emulator object locally: the functions run in-process, the APIs are served by
# infra.local.apigw (REST) and infra.local.apigw_ws (WebSocket), and alarms have nothing to watch here.
_IN_PROCESS = {"AWS::Serverless::Function", "AWS::Serverless::Api", "AWS::CloudWatch::Alarm",
               "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route",
               "AWS::ApiGatewayV2::Deployment", "AWS::ApiGatewayV2::Stage", "AWS::Lambda::Permission"}
# The browser host's Fargate service and what only it needs: locally the host is a process on this
# machine (`python -m browser_host`, started by the local runtime), so these are skipped, not emulated.
NOT_EMULATED = frozenset({
    "AWS::ECS::Cluster", "AWS::ECS::TaskDefinition", "AWS::ECS::Service",
    "AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy",
    "AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress",
    "AWS::Logs::LogGroup",
})
# What only matters on AWS: the dashboard, the bucket's TLS-only policy (the emulator serves plain http on
# loopback), API Gateway's account-wide logging role.
NOT_NEEDED_LOCALLY = frozenset({
    "AWS::CloudWatch::Dashboard", "AWS::S3::BucketPolicy", "AWS::ApiGateway::Account",
})
_CREATORS = {
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::SQS::Queue": _sqs_queue,
    "AWS::S3::Bucket": _s3_bucket,
    "AWS::KMS::Key": _kms_key,
    "AWS::SNS::Topic": _sns_topic,
    "AWS::SNS::Subscription": _sns_subscription,
    "AWS::SQS::QueuePolicy": _sqs_queue_policy,
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
    parameters: dict[str, str] | None = None, service_endpoints: dict[str, str] | None = None,
) -> Stack:
    """Create every resource of the template (idempotently) and return what they resolve to."""
    declared = template.get("Parameters", {})
    params = {name: str(spec.get("Default", "")) for name, spec in declared.items()}
    params.update(parameters or {})
    list_params = frozenset(name for name, spec in declared.items()
                            if spec.get("Type") == "CommaDelimitedList" or str(spec.get("Type")).startswith("List<"))
    stack = Stack(name=stack_name, region=region, endpoint_url=endpoint_url, parameters=params,
                  list_parameters=list_params, service_endpoints=dict(service_endpoints or {}))
    stack.conditions = evaluate_conditions(template, stack)
    # A resource whose Condition is false does not exist, as in CloudFormation.
    resources = {lid: res for lid, res in template["Resources"].items()
                 if "Condition" not in res or stack.conditions[res["Condition"]]}
    for lid in _order(resources):
        kind = resources[lid]["Type"]
        if kind in NOT_EMULATED or kind in NOT_NEEDED_LOCALLY:
            stack.refs[lid] = lid
            continue
        if kind in _IN_PROCESS:
            stack.refs[lid] = lid
            stack.attrs[(lid, "Arn")] = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{stack_name}-{lid}"
            continue
        creator = _CREATORS.get(kind)
        if creator is None:
            raise NotImplementedError(f"the local runtime cannot create {kind} ({lid}); teach infra/local/resources.py")
        creator(stack, lid, resources[lid].get("Properties", {}))
    return stack
