#!/usr/bin/env python3
"""Checks localstack/ without Docker: the compose file, its README, the env files and the hook.

This machine has no Docker engine, so nothing here starts a container. What can be checked is:
- localstack/docker-compose.yml parses, has the services localstack, mysql (MySQL 8) and redis,
  each with a health check, ports published on 127.0.0.1 only, LocalStack's READY hook mounted
  and the repository mounted where the hook looks for it;
- the services table of localstack/README.md names the same services, images and ports;
- the two `sam local --env-vars` files give every function, as SAM CLI's own code resolves the
  environment (samcli's function provider and EnvironmentVariables, the code `sam local` runs),
  a value for every variable the template declares, and point the URLs at the compose services:
  env.json through host.docker.internal and the published ports, env.network.json through the
  service names and container ports; table names and the queue URL are the template's;
- every function of template.yaml is built by cargo-lambda for arm64 from a package under
  functions/, and every package there is a function of the template;
- with --endpoint: the READY hook itself runs (outside the container, as its KICKSYNC_* variables
  allow) against that endpoint and leaves the template's tables and queues there.

The last line is "localstack check: N passed, M failed".

  localstack_check.py [--endpoint http://127.0.0.1:5001]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

SCRIPTS = Path(__file__).resolve().parent.parent
REPO_ROOT = SCRIPTS.parent
LOCALSTACK = REPO_ROOT / "localstack"
sys.path.insert(0, str(SCRIPTS))
from provision import load_template  # noqa: E402  (the CloudFormation-tag YAML loader only)

SERVICES = ("localstack", "mysql", "redis")
# LocalStack's fixed account id: queue URLs on LocalStack carry it.
LOCALSTACK_ACCOUNT = "000000000000"
# Where LocalStack runs READY hooks, and where the hook expects the repository.
HOOK_DIR = "/etc/localstack/init/ready.d"
REPO_MOUNT = "/opt/kicksync"
# Which compose service each URL variable must reach.
URL_SERVICES = {"DATABASE_URL": "mysql", "REDIS_URL": "redis", "AWS_ENDPOINT_URL": "localstack"}
PORT_SPEC = re.compile(r"^127\.0\.0\.1:\$\{(?P<var>[A-Z_]+):-(?P<published>\d+)\}:(?P<container>\d+)$")
IMAGE_SPEC = re.compile(r"^\$\{(?P<var>[A-Z_]+):-(?P<image>[^}]+)\}$")


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}: {detail}")
        return ok


# ---------------------------------------------------------------------------
# The compose file
# ---------------------------------------------------------------------------
class Service:
    def __init__(self, name: str, image: str, published: int, container: int, port_var: str) -> None:
        self.name = name
        self.image = image
        self.published = published
        self.container = container
        self.port_var = port_var


def check_compose(report: Report) -> tuple[dict[str, Service], dict[str, Any]]:
    path = LOCALSTACK / "docker-compose.yml"
    try:
        compose = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        report.check(False, "docker-compose.yml parses", str(error))
        return {}, {}
    report.check(isinstance(compose, dict) and "services" in compose, "docker-compose.yml parses")
    services: dict[str, Service] = {}
    definitions = compose.get("services") or {}
    for name in SERVICES:
        definition = definitions.get(name)
        if not report.check(isinstance(definition, dict), f"service {name} exists",
                            f"services are {sorted(definitions)}"):
            continue
        image_match = IMAGE_SPEC.match(str(definition.get("image", "")))
        image = image_match.group("image") if image_match else str(definition.get("image", ""))
        report.check("healthcheck" in definition, f"service {name} has a health check", "none")
        ports = definition.get("ports") or []
        matches = [PORT_SPEC.match(str(port)) for port in ports]
        if not report.check(len(ports) == 1 and matches[0] is not None,
                            f"service {name} publishes one port on 127.0.0.1 only",
                            f"ports are {ports}; expected 127.0.0.1:${{VAR:-port}}:port"):
            continue
        match = matches[0]
        assert match is not None
        services[name] = Service(name, image, int(match.group("published")),
                                 int(match.group("container")), match.group("var"))

    mysql = definitions.get("mysql") or {}
    mysql_image = services["mysql"].image if "mysql" in services else ""
    report.check(mysql_image.startswith("mysql:8"), "mysql runs MySQL 8 (production: RDS/Aurora MySQL 8)",
                 f"image is {mysql_image!r}")
    environment = mysql.get("environment") or {}
    report.check(bool(environment.get("MYSQL_DATABASE")), "mysql creates a database",
                 "MYSQL_DATABASE unset")
    report.check(str(environment.get("MYSQL_ALLOW_EMPTY_PASSWORD", "")).lower() in ("yes", "1", "true"),
                 "mysql root has no password, like the local MariaDB and the env files",
                 "MYSQL_ALLOW_EMPTY_PASSWORD unset")

    localstack = definitions.get("localstack") or {}
    volumes = [str(volume) for volume in localstack.get("volumes") or []]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in volumes if volume.count(":") >= 1}
    hook_source = mounts.get(HOOK_DIR)
    report.check(hook_source is not None, f"LocalStack mounts a READY hook directory at {HOOK_DIR}",
                 f"volumes are {volumes}")
    if hook_source is not None:
        hooks = sorted((LOCALSTACK / hook_source).glob("*.sh"))
        report.check(bool(hooks), f"{hook_source} holds a hook script", "no *.sh there")
        for hook in hooks:
            report.check(os.access(hook, os.X_OK), f"{hook.name} is executable", "chmod +x it")
            syntax = subprocess.run(["bash", "-n", str(hook)], capture_output=True, text=True, check=False)
            report.check(syntax.returncode == 0, f"{hook.name} is valid bash", syntax.stderr.strip())
    repo_source = mounts.get(REPO_MOUNT)
    report.check(repo_source is not None and (LOCALSTACK / repo_source).resolve() == REPO_ROOT,
                 f"LocalStack mounts the repository at {REPO_MOUNT}", f"volumes are {volumes}")
    network = ((compose.get("networks") or {}).get("default") or {}).get("name")
    lambda_network = (localstack.get("environment") or {}).get("LAMBDA_DOCKER_NETWORK")
    report.check(network is not None and network == lambda_network,
                 "deployed Lambdas join the compose network",
                 f"network {network!r}, LAMBDA_DOCKER_NETWORK {lambda_network!r}")
    return services, environment


def check_readme_table(report: Report, services: dict[str, Service]) -> None:
    """The services table of localstack/README.md: | `name` | `image` | port | `VAR` |"""
    text = (LOCALSTACK / "README.md").read_text(encoding="utf-8")
    row = re.compile(r"^\|\s*`(?P<name>[a-z]+)`\s*\|\s*`(?P<image>[^`]+)`\s*\|\s*(?P<port>\d+)\s*\|"
                     r"\s*`(?P<var>[A-Z_]+)`\s*\|", re.MULTILINE)
    rows = {match.group("name"): match for match in row.finditer(text)}
    report.check(set(rows) == set(SERVICES), "localstack/README.md's services table lists the services",
                 f"it lists {sorted(rows)}")
    for name, match in rows.items():
        service = services.get(name)
        if service is None:
            continue
        said = (match.group("image"), int(match.group("port")), match.group("var"))
        real = (service.image, service.published, service.port_var)
        report.check(said == real, f"README row {name} = image {said[0]}, port {said[1]}, {said[2]}",
                     f"the compose file says image {real[0]}, port {real[1]}, {real[2]}")


# ---------------------------------------------------------------------------
# The env files, as `sam local` resolves them
# ---------------------------------------------------------------------------
def sam_environments(env_file: Path) -> dict[str, dict[str, Any]]:
    """Each function's environment under `sam local ... --env-vars env_file`, computed by SAM
    CLI's own classes, with the shell's environment left out."""
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    overrides_file = json.loads(env_file.read_text(encoding="utf-8"))
    stacks, _ = SamLocalStackProvider.get_stacks(str(REPO_ROOT / "template.yaml"))
    result = {}
    for function in SamFunctionProvider(stacks).get_all():
        variables = (function.environment or {}).get("Variables") or {}
        overrides = dict(overrides_file.get("Parameters") or {})
        overrides.update(overrides_file.get(function.name) or {})
        resolved = EnvironmentVariables(
            function.name, function.memory, function.timeout, function.handler,
            variables=variables, shell_env_values={}, override_values=overrides,
        ).resolve()
        result[function.name] = {name: resolved.get(name) for name in variables}
    return result


def check_env_files(report: Report, services: dict[str, Service], mysql_env: dict[str, Any],
                    template: dict[str, Any]) -> None:
    resources = template["Resources"]
    unresolved = set(template.get("Parameters") or {}) | set(resources)
    # Variables whose template value is a table (its name) or a queue (its URL).
    refs: dict[str, tuple[str, str]] = {}
    for source in _environment_sources(template):
        for name, value in source.items():
            if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in resources:
                resource = resources[value["Ref"]]
                props = resource.get("Properties") or {}
                if resource.get("Type") == "AWS::DynamoDB::Table" and "TableName" in props:
                    refs[name] = ("table", str(props["TableName"]))
                elif resource.get("Type") == "AWS::SQS::Queue" and "QueueName" in props:
                    refs[name] = ("queue", str(props["QueueName"]))

    files = {"env.json": "host", "env.network.json": "network"}
    keys = {}
    for file_name, mode in files.items():
        path = LOCALSTACK / file_name
        keys[file_name] = set((json.loads(path.read_text(encoding="utf-8")).get("Parameters") or {}))
        environments = sam_environments(path)
        report.check(bool(environments), f"{file_name}: SAM CLI sees the template's functions", "none")
        for function, env in environments.items():
            ok, problems = _function_env_problems(env, unresolved, refs, services, mysql_env, mode)
            report.check(ok, f"{file_name}: {function} gets every variable; URLs and names match",
                         problems)
    first, second = keys.values()
    report.check(first == second, "env.json and env.network.json set the same variables",
                 f"only in one: {sorted(first ^ second)}")


def _function_env_problems(env: dict[str, Any], unresolved: set[str], refs: dict[str, tuple[str, str]],
                           services: dict[str, Service], mysql_env: dict[str, Any],
                           mode: str) -> tuple[bool, str]:
    problems = []
    # DATABASE_PASSWORD may be empty: the compose file's MySQL root has no password, and an empty
    # value means "the password in DATABASE_URL" (shared/src/config.rs).
    missing = sorted(name for name, value in env.items()
                     if value is None or isinstance(value, dict) or value in unresolved
                     or (value == "" and name != "DATABASE_PASSWORD")
                     # A dynamic reference (SSM, Secrets Manager) only CloudFormation resolves.
                     or "{{resolve:" in str(value))
    if missing:
        problems.append(f"no value for {missing}")
    for variable, service_name in URL_SERVICES.items():
        if variable not in env or service_name not in services:
            continue
        problem = _url_problem(env[variable], services[service_name], mode)
        if variable == "DATABASE_URL" and not problem:
            database = urlsplit(str(env[variable])).path.lstrip("/")
            if database != mysql_env.get("MYSQL_DATABASE"):
                problem = f"database {database!r}, compose creates {mysql_env.get('MYSQL_DATABASE')!r}"
        if problem:
            problems.append(f"{variable} {problem}")
    for variable, (kind, name) in refs.items():
        if variable not in env:
            continue
        value = str(env[variable])
        if kind == "table":
            if value != name:
                problems.append(f"{variable} is {value!r}, the template's table is {name!r}")
            continue
        problem = _url_problem(value, services["localstack"], mode) if "localstack" in services else ""
        wanted = f"/{LOCALSTACK_ACCOUNT}/{name}"
        if not problem and urlsplit(value).path != wanted:
            problem = f"path {urlsplit(value).path!r}, expected {wanted!r}"
        if problem:
            problems.append(f"{variable} {problem}")
    return not problems, "; ".join(problems)


def _environment_sources(template: dict[str, Any]) -> list[dict[str, Any]]:
    sources = [((template.get("Globals") or {}).get("Function") or {})]
    sources += [resource.get("Properties") or {} for resource in template["Resources"].values()
                if isinstance(resource, dict) and resource.get("Type") == "AWS::Serverless::Function"]
    return [((source.get("Environment") or {}).get("Variables") or {}) for source in sources]


def _url_problem(value: Any, service: Service, mode: str) -> str:
    parts = urlsplit(str(value))
    host, port = (("host.docker.internal", service.published) if mode == "host"
                  else (service.name, service.container))
    if parts.hostname != host or parts.port != port:
        return f"{value!r} is not on {host}:{port}"
    return ""


# ---------------------------------------------------------------------------
# Functions and packages
# ---------------------------------------------------------------------------
def check_functions(report: Report, template: dict[str, Any]) -> None:
    packages = {path.parent.name for path in (REPO_ROOT / "functions").glob("*/Cargo.toml")}
    globals_ = (template.get("Globals") or {}).get("Function") or {}
    binaries = set()
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        metadata = resource.get("Metadata") or {}
        props = resource.get("Properties") or {}
        binary = (metadata.get("BuildProperties") or {}).get("Binary")
        architectures = props.get("Architectures", globals_.get("Architectures"))
        ok = (metadata.get("BuildMethod") == "rust-cargolambda" and binary in packages
              and architectures == ["arm64"])
        report.check(ok, f"{logical_id} is built by cargo-lambda for arm64 from functions/{binary}",
                     f"BuildMethod {metadata.get('BuildMethod')}, Binary {binary}, "
                     f"Architectures {architectures}")
        binaries.add(binary)
    report.check(packages <= binaries, "every package under functions/ is a function of the template",
                 f"not in the template: {sorted(packages - binaries)}")


# ---------------------------------------------------------------------------
# The READY hook, run outside the container
# ---------------------------------------------------------------------------
def check_hook(report: Report, endpoint: str, template: dict[str, Any]) -> None:
    hook = LOCALSTACK / "init" / "ready.d" / "provision.sh"
    env = dict(os.environ, KICKSYNC_REPO=str(REPO_ROOT), KICKSYNC_AWS_ENDPOINT=endpoint)
    # The hook's python3 is LocalStack's; here it is the venv's (boto3, PyYAML).
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    run = subprocess.run([str(hook)], env=env, capture_output=True, text=True, check=False)
    report.check(run.returncode == 0, f"the READY hook runs against {endpoint}", run.stderr.strip())
    import boto3

    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test",
                            region_name="ap-northeast-2")
    sqs = session.client("sqs", endpoint_url=endpoint)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    queues = set(sqs.list_queues(QueueNamePrefix="kicksync").get("QueueUrls") or [])
    tables = set(dynamodb.list_tables().get("TableNames") or [])
    for logical_id, resource in template["Resources"].items():
        props = (resource or {}).get("Properties") or {}
        if resource.get("Type") == "AWS::SQS::Queue" and "QueueName" in props:
            name = str(props["QueueName"])
            report.check(any(url.rsplit("/", 1)[-1] == name for url in queues),
                         f"after the hook, queue {name} exists", f"queues: {sorted(queues)}")
        if resource.get("Type") == "AWS::DynamoDB::Table" and "TableName" in props:
            name = str(props["TableName"])
            report.check(name in tables, f"after the hook, table {name} exists", f"tables: {sorted(tables)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--endpoint", help="also run the READY hook against this local AWS endpoint")
    args = parser.parse_args()

    report = Report()
    template = load_template(REPO_ROOT / "template.yaml")
    services, mysql_env = check_compose(report)
    check_readme_table(report, services)
    check_env_files(report, services, mysql_env, template)
    check_functions(report, template)
    if args.endpoint:
        check_hook(report, args.endpoint, template)
    print(f"localstack check: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
