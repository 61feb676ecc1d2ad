#!/usr/bin/env python3
"""Create template.yaml's DynamoDB tables and SQS queues on a local endpoint.

This is the one place that turns the template's resources into real ones on
moto_server or LocalStack, so the local stack and the deployed stack share one
list of names and settings. Handled resource types:

  AWS::DynamoDB::Table, AWS::Serverless::SimpleTable, AWS::SQS::Queue

Resources that already exist are left alone, so running it twice is safe.

  provision.py --endpoint http://127.0.0.1:5000            create everything
  provision.py --endpoint ... --suffix=-t42                a private copy for a test
  eval "$(provision.py --endpoint ... --print-env)"        export the names/URLs
  provision.py --endpoint ... --suffix=-t42 --delete       remove that copy

--print-env only reads: it prints `export NAME=value` for every environment
variable of the template's functions (Globals first) whose value refers to one
of these tables (its name) or queues (its URL).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE_TYPES = {"AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"}
QUEUE_TYPES = {"AWS::SQS::Queue"}
FUNCTION_TYPES = {"AWS::Serverless::Function", "AWS::Lambda::Function"}

# CloudFormation property -> SQS attribute. Names are the same; this is the
# list of properties that are attributes (QueueName and Tags are not).
SQS_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
SIMPLE_TABLE_TYPES = {"String": "S", "Number": "N", "Binary": "B"}


class ProvisionError(Exception):
    """A template this script cannot map, or an endpoint that disagrees."""


# --------------------------------------------------------------------------
# Reading the template
# --------------------------------------------------------------------------
class CfnLoader(yaml.SafeLoader):
    """A YAML loader that reads CloudFormation's short-form tags.

    `!Ref X` becomes {"Ref": "X"}, `!GetAtt A.B` becomes {"Fn::GetAtt": ["A", "B"]},
    `!Condition C` becomes {"Condition": "C"} and every other `!Name v` becomes
    {"Fn::Name": v}, the same shapes as the long form.
    """


def _construct_cfn_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(template, dict) or "Resources" not in template:
        raise ProvisionError(f"{path} has no Resources")
    return template


# --------------------------------------------------------------------------
# The local stack
# --------------------------------------------------------------------------
class LocalResources:
    """The template's tables and queues on one endpoint, created on demand.

    Names are resolved lazily and memoised, so a queue whose RedrivePolicy
    names a dead-letter queue creates that queue first, whatever the order
    of the template.
    """

    def __init__(self, template: dict[str, Any], session: boto3.Session, endpoint: str,
                 suffix: str, stack_name: str, create: bool) -> None:
        self.template = template
        self.resources: dict[str, Any] = template["Resources"]
        self.parameters: dict[str, Any] = template.get("Parameters") or {}
        self.suffix = suffix
        self.stack_name = stack_name
        self.create = create
        self.region = session.region_name
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self._queue_urls: dict[str, str] = {}
        self._tables_done: set[str] = set()

    # ---- names ------------------------------------------------------------
    def kind(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict):
            return None
        if resource.get("Type") in TABLE_TYPES:
            return "table"
        if resource.get("Type") in QUEUE_TYPES:
            return "queue"
        return None

    def _props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties") or {}

    def table_name(self, logical_id: str) -> str:
        name = self._props(logical_id).get("TableName")
        # CloudFormation would invent a name; locally the logical id will do.
        base = self.resolve(name) if name is not None else logical_id
        return f"{base}{self.suffix}"

    def queue_name(self, logical_id: str) -> str:
        props = self._props(logical_id)
        name = props.get("QueueName")
        fifo = str(props.get("FifoQueue", "")).lower() == "true"
        base = self.resolve(name) if name is not None else logical_id
        if fifo:
            # The suffix goes before ".fifo", which SQS requires at the end.
            base = base.removesuffix(".fifo")
            return f"{base}{self.suffix}.fifo"
        return f"{base}{self.suffix}"

    # ---- intrinsic functions ----------------------------------------------
    def resolve(self, value: Any) -> Any:
        """Resolves the intrinsic functions this template may use in names
        and queue attributes; anything else is reported, not guessed."""
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        (key, arg), = value.items()
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(resource, attribute)
        if key == "Fn::Sub":
            return self.sub(arg)
        if key == "Fn::Join":
            delimiter, items = arg
            return delimiter.join(str(item) for item in self.resolve(items))
        if key.startswith("Fn::") or key == "Condition":
            raise ProvisionError(f"{key} is not supported by provision.py")
        return {key: self.resolve(arg)}

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::AccountId": "000000000000",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            default = self.parameters[name].get("Default")
            if default is None:
                raise ProvisionError(f"parameter {name} has no Default to use locally")
            return str(default)
        kind = self.kind(name)
        if kind == "table":
            return self.ensure_table(name)
        if kind == "queue":
            return self.ensure_queue(name)  # Ref of a queue is its URL
        raise ProvisionError(f"!Ref {name}: not a parameter, table or queue")

    def get_att(self, logical_id: str, attribute: str) -> str:
        kind = self.kind(logical_id)
        if kind == "queue":
            url = self.ensure_queue(logical_id)
            if attribute == "QueueUrl":
                return url
            if attribute == "QueueName":
                return self.queue_name(logical_id)
            if attribute == "Arn":
                attributes = self.sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
                return attributes["QueueArn"]
        if kind == "table":
            name = self.ensure_table(logical_id)
            table = self.dynamodb.describe_table(TableName=name)["Table"]
            if attribute == "Arn":
                return table["TableArn"]
            if attribute == "StreamArn" and "LatestStreamArn" in table:
                return table["LatestStreamArn"]
        raise ProvisionError(f"!GetAtt {logical_id}.{attribute} is not supported")

    def sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"  # ${!Literal}
            if token in variables:
                return str(self.resolve(variables[token]))
            if "." in token and not token.startswith("AWS::"):
                return self.get_att(*token.split(".", 1))
            return self.ref(token)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # ---- tables -------------------------------------------------------------
    def ensure_table(self, logical_id: str) -> str:
        name = self.table_name(logical_id)
        if logical_id in self._tables_done or not self.create:
            return name
        self._tables_done.add(logical_id)
        try:
            self.dynamodb.describe_table(TableName=name)
            log(f"table {name}: exists")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            self.dynamodb.create_table(**self._create_table_request(logical_id, name))
            self.dynamodb.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            log(f"table {name}: created")
        self._ensure_ttl(logical_id, name)
        return name

    def _create_table_request(self, logical_id: str, name: str) -> dict[str, Any]:
        resource = self.resources[logical_id]
        props = self.resolve(self._props(logical_id))
        if resource["Type"] == "AWS::Serverless::SimpleTable":
            key = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            request: dict[str, Any] = {
                "TableName": name,
                "KeySchema": [{"AttributeName": key["Name"], "KeyType": "HASH"}],
                "AttributeDefinitions": [{
                    "AttributeName": key["Name"],
                    "AttributeType": SIMPLE_TABLE_TYPES[key["Type"]],
                }],
            }
            if "ProvisionedThroughput" in props:
                request["ProvisionedThroughput"] = _throughput(props["ProvisionedThroughput"])
            else:
                request["BillingMode"] = "PAY_PER_REQUEST"
            return request

        billing = props.get("BillingMode", "PROVISIONED")
        request = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": billing,
        }
        if billing == "PROVISIONED":
            request["ProvisionedThroughput"] = _throughput(props["ProvisionedThroughput"])
        if props.get("GlobalSecondaryIndexes"):
            request["GlobalSecondaryIndexes"] = [
                _index(index, billing) for index in props["GlobalSecondaryIndexes"]]
        if props.get("LocalSecondaryIndexes"):
            request["LocalSecondaryIndexes"] = [
                _index(index, "PAY_PER_REQUEST") for index in props["LocalSecondaryIndexes"]]
        if props.get("StreamSpecification"):
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": props["StreamSpecification"]["StreamViewType"],
            }
        return request

    def _ensure_ttl(self, logical_id: str, name: str) -> None:
        spec = self._props(logical_id).get("TimeToLiveSpecification")
        if not spec or str(spec.get("Enabled", "")).lower() != "true":
            return
        status = self.dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if status.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
            return
        # Also finishes a table whose first run stopped between the two calls.
        self.dynamodb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec["AttributeName"]},
        )
        log(f"table {name}: TTL on {spec['AttributeName']}")

    # ---- queues -------------------------------------------------------------
    def ensure_queue(self, logical_id: str) -> str:
        if logical_id in self._queue_urls:
            return self._queue_urls[logical_id]
        name = self.queue_name(logical_id)
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            if self.create:
                log(f"queue {name}: exists")
        except ClientError as error:
            if "NonExistentQueue" not in error.response["Error"]["Code"]:
                raise
            if not self.create:
                raise ProvisionError(
                    f"queue {name} does not exist on this endpoint: run provision.py first"
                ) from error
            attributes = self._queue_attributes(logical_id)  # creates DLQs first
            url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            log(f"queue {name}: created")
        self._queue_urls[logical_id] = url
        return url

    def _queue_attributes(self, logical_id: str) -> dict[str, str]:
        props = self._props(logical_id)
        attributes = {}
        for key in SQS_ATTRIBUTES:
            if key not in props:
                continue
            value = self.resolve(props[key])
            if isinstance(value, bool):
                value = "true" if value else "false"
            elif isinstance(value, dict):
                # The template may write RedrivePolicy as an object; SQS wants JSON.
                value = json.dumps(value, separators=(",", ":"))
            attributes[key] = str(value)
        return attributes

    # ---- whole stack --------------------------------------------------------
    def provision(self) -> None:
        # Queues before tables only for readable output; DLQs come first anyway.
        for logical_id in self.resources:
            if self.kind(logical_id) == "queue":
                self.ensure_queue(logical_id)
        for logical_id in self.resources:
            if self.kind(logical_id) == "table":
                self.ensure_table(logical_id)

    def delete(self) -> None:
        for logical_id in self.resources:
            kind = self.kind(logical_id)
            try:
                if kind == "queue":
                    name = self.queue_name(logical_id)
                    url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                    self.sqs.delete_queue(QueueUrl=url)
                    log(f"queue {name}: deleted")
                elif kind == "table":
                    name = self.table_name(logical_id)
                    self.dynamodb.delete_table(TableName=name)
                    log(f"table {name}: deleted")
            except ClientError as error:
                code = error.response["Error"]["Code"]
                if "NonExistentQueue" not in code and code != "ResourceNotFoundException":
                    raise

    def environment(self) -> dict[str, str]:
        """Function environment variables that name a table or a queue,
        resolved to this endpoint's names and URLs."""
        sources = [((self.template.get("Globals") or {}).get("Function") or {})]
        sources += [
            resource.get("Properties") or {}
            for resource in self.resources.values()
            if isinstance(resource, dict) and resource.get("Type") in FUNCTION_TYPES
        ]
        env: dict[str, str] = {}
        for source in sources:
            variables = ((source.get("Environment") or {}).get("Variables")) or {}
            for name, value in variables.items():
                resolved = self._resource_value(value)
                if resolved is None:
                    continue
                if env.get(name, resolved) != resolved:
                    raise ProvisionError(f"{name} refers to two different resources")
                env[name] = resolved
        return env

    def _resource_value(self, value: Any) -> str | None:
        if not isinstance(value, dict) or len(value) != 1:
            return None
        (key, arg), = value.items()
        if key == "Ref" and self.kind(arg) is not None:
            return self.ref(arg)
        if key == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            if self.kind(resource) == "queue" and attribute in ("QueueUrl", "QueueName"):
                return self.get_att(resource, attribute)
        return None


def _throughput(value: dict[str, Any]) -> dict[str, int]:
    return {
        "ReadCapacityUnits": int(value["ReadCapacityUnits"]),
        "WriteCapacityUnits": int(value["WriteCapacityUnits"]),
    }


def _index(index: dict[str, Any], billing: str) -> dict[str, Any]:
    result = {
        "IndexName": index["IndexName"],
        "KeySchema": index["KeySchema"],
        "Projection": index["Projection"],
    }
    if billing == "PROVISIONED" and "ProvisionedThroughput" in index:
        result["ProvisionedThroughput"] = _throughput(index["ProvisionedThroughput"])
    return result


def log(message: str) -> None:
    print(f"provision: {message}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="local AWS endpoint (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--suffix", default="",
                        help="appended to every table and queue name; write --suffix=-t1 "
                        "when it starts with a dash")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION")
                        or os.environ.get("AWS_DEFAULT_REGION") or "ap-northeast-2")
    parser.add_argument("--stack-name", default="kicksync", help="value of AWS::StackName")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--print-env", action="store_true",
                        help="print `export NAME=value` lines instead of creating anything")
    action.add_argument("--delete", action="store_true",
                        help="delete the tables and queues (with --suffix: that copy)")
    args = parser.parse_args()

    # Refuse to touch a real account: deployments go through SAM.
    if not args.endpoint:
        parser.error("no endpoint: pass --endpoint or set AWS_ENDPOINT_URL")

    session = boto3.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=args.region,
    )
    try:
        stack = LocalResources(load_template(args.template), session, args.endpoint,
                           args.suffix, args.stack_name, create=not args.print_env)
        if args.print_env:
            for name, value in stack.environment().items():
                print(f"export {name}={shlex.quote(value)}")
        elif args.delete:
            stack.delete()
        else:
            stack.provision()
    except ProvisionError as error:
        print(f"provision: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
