#!/usr/bin/env python3
"""Runs scripts/provision.py against a local AWS endpoint and checks the result against template.yaml.

The LocalStack READY hook (localstack/init/ready.d/provision.sh) runs provision.py; this machine
has no Docker, so moto_server stands in for LocalStack's API (the same SQS and DynamoDB calls).

What is checked, read from the template rather than written down here, so the check follows it:
- every AWS::SQS::Queue exists under its QueueName, and every SQS attribute the template sets
  (VisibilityTimeout, MessageRetentionPeriod, SqsManagedSseEnabled, ...) has the declared value;
  a RedrivePolicy names the dead-letter queue's real ARN and the declared maxReceiveCount;
- every DynamoDB table exists under its TableName with the declared key schema, attribute
  definitions, billing mode, indexes and TimeToLiveSpecification;
- every SQS event source of a function is a queue that now exists, and every environment variable
  `provision.py --print-env` prints names a table or queue URL that now exists;
- a second run of provision.py changes nothing (the hook may run again on a restarted LocalStack);
- the check can fail: it then changes the provisioned copy (visibility timeout, maxReceiveCount,
  TTL switched off) and must report each change.

Everything is made under a private suffix (-pc<pid>) and deleted at the end, so the check can share
an endpoint with running tests. The last line is "provision check: N passed, M failed".

  provision_check.py --endpoint http://127.0.0.1:5001 [--template template.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

SCRIPTS = Path(__file__).resolve().parent.parent
REPO_ROOT = SCRIPTS.parent
sys.path.insert(0, str(SCRIPTS))
from provision import load_template  # noqa: E402  (the CloudFormation-tag YAML loader only)

TABLE_TYPES = {"AWS::DynamoDB::Table"}
QUEUE_TYPES = {"AWS::SQS::Queue"}
FUNCTION_TYPES = {"AWS::Serverless::Function"}

# Queue properties that are not SQS attributes: the name is checked by looking the queue up.
QUEUE_NOT_ATTRIBUTES = {"QueueName", "Tags"}
# Table properties that only a deployment applies (CloudFormation, not provision.py).
TABLE_DEPLOY_ONLY = {
    "Tags", "SSESpecification", "PointInTimeRecoverySpecification", "DeletionProtectionEnabled",
    "ContributorInsightsSpecification", "TableClass", "WarmThroughput", "OnDemandThroughput",
    "ResourcePolicy", "KinesisStreamSpecification", "ImportSourceSpecification",
}


class Unsupported(Exception):
    """A template value this check cannot evaluate: reported as a failure, never skipped."""


class Report:
    def __init__(self, quiet: bool = False) -> None:
        self.passed = 0
        self.failures: list[str] = []
        self.quiet = quiet

    def check(self, ok: bool, what: str, detail: str = "") -> None:
        if ok:
            self.passed += 1
            if not self.quiet:
                print(f"ok    {what}")
        else:
            self.failures.append(f"{what}: {detail}")
            if not self.quiet:
                print(f"FAIL  {what}: {detail}")


class Checker:
    """Compares what exists on the endpoint with what the template declares."""

    def __init__(self, template: dict[str, Any], session: boto3.Session, endpoint: str,
                 suffix: str) -> None:
        self.resources: dict[str, Any] = template["Resources"]
        self.parameters: dict[str, Any] = template.get("Parameters") or {}
        self.suffix = suffix
        self.sqs = session.client("sqs", endpoint_url=endpoint)
        self.dynamodb = session.client("dynamodb", endpoint_url=endpoint)

    # ---- the template's side ----------------------------------------------
    def of_type(self, types: set[str]) -> list[str]:
        return [logical_id for logical_id, resource in self.resources.items()
                if isinstance(resource, dict) and resource.get("Type") in types]

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties") or {}

    def literal(self, value: Any) -> Any:
        """A plain value, or a !Ref to a parameter with a Default."""
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in self.parameters:
            default = self.parameters[value["Ref"]].get("Default")
            if default is None:
                raise Unsupported(f"!Ref {value['Ref']} has no Default")
            return default
        if isinstance(value, dict) and any(key.startswith("Fn::") or key == "Ref" for key in value):
            raise Unsupported(f"cannot evaluate {value}")
        return value

    def queue_name(self, logical_id: str) -> str:
        props = self.props(logical_id)
        if "QueueName" not in props:
            raise Unsupported(f"{logical_id} has no QueueName (CloudFormation would invent one)")
        name = str(self.literal(props["QueueName"]))
        if name.endswith(".fifo"):
            return f"{name.removesuffix('.fifo')}{self.suffix}.fifo"
        return f"{name}{self.suffix}"

    def table_name(self, logical_id: str) -> str:
        props = self.props(logical_id)
        if "TableName" not in props:
            raise Unsupported(f"{logical_id} has no TableName (CloudFormation would invent one)")
        return f"{self.literal(props['TableName'])}{self.suffix}"

    # ---- the endpoint's side ------------------------------------------------
    def queue_url(self, logical_id: str) -> str | None:
        try:
            return self.sqs.get_queue_url(QueueName=self.queue_name(logical_id))["QueueUrl"]
        except ClientError as error:
            if "NonExistentQueue" in error.response["Error"]["Code"]:
                return None
            raise

    def queue_attributes(self, logical_id: str) -> dict[str, str]:
        url = self.queue_url(logical_id)
        if url is None:
            return {}
        return self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]

    def queue_arn(self, logical_id: str) -> str | None:
        return self.queue_attributes(logical_id).get("QueueArn")

    def expected_attribute(self, value: Any) -> Any:
        """The declared value in SQS's terms: GetAtt Q.Arn becomes Q's real ARN."""
        if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
            resource, attribute = value["Fn::GetAtt"]
            if self.resources.get(resource, {}).get("Type") in QUEUE_TYPES and attribute == "Arn":
                return self.queue_arn(resource) or f"<no queue {self.queue_name(resource)}>"
            raise Unsupported(f"!GetAtt {resource}.{attribute}")
        if isinstance(value, dict):
            if any(key.startswith("Fn::") or key == "Ref" for key in value) and \
                    not (set(value) == {"Ref"} and value["Ref"] in self.parameters):
                raise Unsupported(f"cannot evaluate {value}")
            if set(value) == {"Ref"}:
                return self.literal(value)
            return {key: self.expected_attribute(item) for key, item in value.items()}
        return value

    # ---- checks --------------------------------------------------------------
    def check_queues(self, report: Report) -> None:
        for logical_id in self.of_type(QUEUE_TYPES):
            try:
                name = self.queue_name(logical_id)
            except Unsupported as error:
                report.check(False, f"queue {logical_id}", str(error))
                continue
            attributes = self.queue_attributes(logical_id)
            report.check(bool(attributes), f"queue {name} exists", "not found on the endpoint")
            if not attributes:
                continue
            for key, declared in self.props(logical_id).items():
                if key in QUEUE_NOT_ATTRIBUTES:
                    continue
                what = f"queue {name} {key}"
                try:
                    expected = self.expected_attribute(declared)
                except Unsupported as error:
                    report.check(False, what, str(error))
                    continue
                actual = attributes.get(key)
                if actual is None:
                    report.check(False, what, f"declared {expected!r}, the queue has no such attribute")
                elif isinstance(expected, dict):
                    # JSON policies (RedrivePolicy, RedriveAllowPolicy): compare as data, with
                    # numbers compared as numbers (SQS may return "3" or 3).
                    try:
                        parsed = json.loads(actual)
                    except ValueError:
                        report.check(False, what, f"not JSON: {actual!r}")
                        continue
                    report.check(_normalise(parsed) == _normalise(expected), what + f" = {expected}",
                                 f"declared {expected}, found {parsed}")
                else:
                    report.check(_scalar(actual) == _scalar(expected), what + f" = {expected}",
                                 f"declared {expected!r}, found {actual!r}")

    def check_tables(self, report: Report) -> None:
        for logical_id in self.of_type(TABLE_TYPES):
            try:
                name = self.table_name(logical_id)
            except Unsupported as error:
                report.check(False, f"table {logical_id}", str(error))
                continue
            try:
                table = self.dynamodb.describe_table(TableName=name)["Table"]
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                report.check(False, f"table {name} exists", "not found on the endpoint")
                continue
            report.check(True, f"table {name} exists")
            props = self.props(logical_id)
            for key, declared in props.items():
                what = f"table {name} {key}"
                if key == "TableName" or key in TABLE_DEPLOY_ONLY:
                    continue
                if key == "KeySchema":
                    report.check(table.get("KeySchema") == declared, what,
                                 f"declared {declared}, found {table.get('KeySchema')}")
                elif key == "AttributeDefinitions":
                    found = sorted(table.get("AttributeDefinitions", []),
                                   key=lambda item: item["AttributeName"])
                    wanted = sorted(declared, key=lambda item: item["AttributeName"])
                    report.check(found == wanted, what, f"declared {wanted}, found {found}")
                elif key == "BillingMode":
                    found = (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
                    report.check(found == declared, what + f" = {declared}", f"found {found}")
                elif key == "TimeToLiveSpecification":
                    ttl = self.dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
                    enabled = str(declared.get("Enabled", "")).lower() == "true"
                    status_ok = ttl.get("TimeToLiveStatus") in (
                        ("ENABLED", "ENABLING") if enabled else ("DISABLED", "DISABLING", None))
                    attribute_ok = not enabled or ttl.get("AttributeName") == declared["AttributeName"]
                    report.check(status_ok and attribute_ok,
                                 what + f" = {declared.get('AttributeName')} enabled={enabled}",
                                 f"found {ttl.get('TimeToLiveStatus')} on {ttl.get('AttributeName')}")
                elif key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                    found = {index["IndexName"]: index["KeySchema"] for index in table.get(key, [])}
                    wanted = {index["IndexName"]: index["KeySchema"] for index in declared}
                    report.check(found == wanted, what, f"declared {wanted}, found {found}")
                elif key == "StreamSpecification":
                    found = (table.get("StreamSpecification") or {}).get("StreamViewType")
                    report.check(found == declared.get("StreamViewType"), what,
                                 f"declared {declared}, found {found}")
                elif key == "ProvisionedThroughput":
                    found = table.get("ProvisionedThroughput") or {}
                    ok = all(int(found.get(unit, -1)) == int(declared[unit])
                             for unit in ("ReadCapacityUnits", "WriteCapacityUnits"))
                    report.check(ok, what, f"declared {declared}, found {found}")
                else:
                    report.check(False, what, "this check does not know the property: teach it")

    def check_event_sources(self, report: Report) -> None:
        for function in self.of_type(FUNCTION_TYPES):
            events = self.props(function).get("Events") or {}
            for event_name, event in events.items():
                if event.get("Type") != "SQS":
                    continue
                queue = (event.get("Properties") or {}).get("Queue")
                what = f"{function}.{event_name} reads an existing queue"
                if not (isinstance(queue, dict) and "Fn::GetAtt" in queue):
                    report.check(False, what, f"Queue is {queue!r}, expected !GetAtt <Queue>.Arn")
                    continue
                resource, _ = queue["Fn::GetAtt"]
                report.check(self.queue_arn(resource) is not None, what,
                             f"{resource} is not provisioned")

    def check_environment(self, report: Report, printed: str) -> None:
        tables = {self.table_name(logical_id) for logical_id in self.of_type(TABLE_TYPES)}
        urls = {self.queue_url(logical_id) for logical_id in self.of_type(QUEUE_TYPES)}
        names = {self.queue_name(logical_id) for logical_id in self.of_type(QUEUE_TYPES)}
        exports = _parse_exports(printed)
        report.check(bool(exports), "provision.py --print-env prints variables", printed or "nothing")
        for variable, value in exports.items():
            report.check(value in tables or value in urls or value in names,
                         f"--print-env {variable} names a provisioned table or queue",
                         f"{value!r} is none of {sorted(tables | names)}")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    return text.lower() if text.lower() in ("true", "false") else text


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    return _scalar(value)


def _parse_exports(text: str) -> dict[str, str]:
    exports = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, _, value = words[1].partition("=")
            exports[name] = value
    return exports


def run_provision(args: argparse.Namespace, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPTS / "provision.py"), "--endpoint", args.endpoint,
               "--template", str(args.template), "--region", args.region, *extra]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def break_things(checker: Checker) -> list[str]:
    """Changes the provisioned copy the way a wrong provisioner would, and returns what the
    check must now report (one entry per change)."""
    expected: list[str] = []
    for logical_id in checker.of_type(QUEUE_TYPES):
        props = checker.props(logical_id)
        url = checker.queue_url(logical_id)
        if url is None:
            continue
        if "VisibilityTimeout" in props:
            wrong = int(checker.literal(props["VisibilityTimeout"])) + 1
            checker.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(wrong)})
            expected.append(f"queue {checker.queue_name(logical_id)} VisibilityTimeout")
        redrive = props.get("RedrivePolicy")
        if isinstance(redrive, dict) and "maxReceiveCount" in redrive:
            policy = json.loads(checker.queue_attributes(logical_id)["RedrivePolicy"])
            policy["maxReceiveCount"] = int(policy["maxReceiveCount"]) + 1
            checker.sqs.set_queue_attributes(QueueUrl=url,
                                             Attributes={"RedrivePolicy": json.dumps(policy)})
            expected.append(f"queue {checker.queue_name(logical_id)} RedrivePolicy")
    for logical_id in checker.of_type(TABLE_TYPES):
        spec = checker.props(logical_id).get("TimeToLiveSpecification") or {}
        if str(spec.get("Enabled", "")).lower() == "true":
            checker.dynamodb.update_time_to_live(
                TableName=checker.table_name(logical_id),
                TimeToLiveSpecification={"Enabled": False, "AttributeName": spec["AttributeName"]})
            expected.append(f"table {checker.table_name(logical_id)} TimeToLiveSpecification")
            break
    return expected


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="local AWS endpoint (default: $AWS_ENDPOINT_URL)")
    parser.add_argument("--template", type=Path, default=REPO_ROOT / "template.yaml")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or "ap-northeast-2")
    args = parser.parse_args()
    if not args.endpoint:
        parser.error("no endpoint: pass --endpoint or set AWS_ENDPOINT_URL")

    suffix = f"-pc{os.getpid()}"
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                            region_name=args.region)
    checker = Checker(load_template(args.template), session, args.endpoint, suffix)
    report = Report()
    try:
        first = run_provision(args, f"--suffix={suffix}")
        report.check(first.returncode == 0, "provision.py runs", first.stderr.strip())
        if first.returncode != 0:
            return finish(report)
        checker.check_queues(report)
        checker.check_tables(report)
        checker.check_event_sources(report)
        printed = run_provision(args, f"--suffix={suffix}", "--print-env")
        report.check(printed.returncode == 0, "provision.py --print-env runs", printed.stderr.strip())
        checker.check_environment(report, printed.stdout)

        again = run_provision(args, f"--suffix={suffix}")
        created = [line for line in again.stderr.splitlines() if "created" in line or "TTL on" in line]
        report.check(again.returncode == 0 and not created, "a second provision.py run changes nothing",
                     again.stderr.strip())

        # The check must be able to fail: break the copy and expect every change to be reported.
        expected = break_things(checker)
        report.check(bool(expected), "the template declares something to break", "nothing")
        broken = Report(quiet=True)
        checker.check_queues(broken)
        checker.check_tables(broken)
        for what in expected:
            caught = any(failure.startswith(what) for failure in broken.failures)
            report.check(caught, f"a changed copy is caught: {what}", f"not reported: {broken.failures}")
    except Unsupported as error:
        report.check(False, "template", str(error))
    finally:
        deleted = run_provision(args, f"--suffix={suffix}", "--delete")
        if deleted.returncode != 0:
            print(f"warning: could not delete the {suffix} copy: {deleted.stderr.strip()}",
                  file=sys.stderr)
    return finish(report)


def finish(report: Report) -> int:
    print(f"provision check: {report.passed} passed, {len(report.failures)} failed")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
