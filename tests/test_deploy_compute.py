"""deploy/cloudformation/compute.yaml: cfn-lint clean, and every service as the code runs it.

The template is the contract of `vomage service` (runtime/services.py): each ECS service
must run a command the CLI accepts, as the role the local stack gives that process, with
every setting the service refuses to start without, its port and health check, and its
secrets only through Secrets Manager. Fast: the template is read, nothing is deployed.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path

import pytest
from helpers import cfn_refs

from vomage_dagster.cli import deployment
from vomage_dagster.local import PROJECT_ROOT
from vomage_dagster.local.aws.provision import TEMPLATE as DATA_TEMPLATE
from vomage_dagster.local.aws.roles import PROCESS_ROLES
from vomage_dagster.runtime import health, services
from vomage_dagster.runtime.execution import RUN_QUEUES

COMPUTE = PROJECT_ROOT / "deploy" / "cloudformation" / "compute.yaml"
README = PROJECT_ROOT / "deploy" / "README.md"
INSTANCE = PROJECT_ROOT / "deploy" / "dagster.yaml"

# docs/deploy.md §5: CPU units / MiB per process (run workers by queue), and tasks.
SIZES = {"code-server": (1024, 2048), "webserver": (512, 1024), "daemon": (512, 1024), "ingest": (256, 512),
         "live-view": (256, 512), "vomage-runs": (2048, 4096), "vomage-batch": (1024, 4096),
         "vomage-metrics": (256, 512)}
CONCURRENCY = {"vomage-runs": 4, "vomage-batch": 1, "vomage-metrics": 1}
HEALTH_PATHS = {services.WEBSERVER: "/server_info", services.LIVE_VIEW: "/health"}
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")


def _load(path: Path) -> dict:
    from cfnlint.decode import decode

    tpl, problems = decode(str(path))
    assert not problems, problems
    return tpl


@pytest.fixture(scope="module")
def template() -> dict:
    return _load(COMPUTE)


@pytest.fixture(scope="module")
def data() -> dict:
    return _load(DATA_TEMPLATE)


def _cli(argv: list[str]) -> argparse.Namespace:
    """`vomage service …` parsed by the CLI's own parser (choices of names and queues)."""
    parser = argparse.ArgumentParser(prog="vomage")
    deployment.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["service", *argv])


def _import(key: str) -> dict:
    return {"Fn::ImportValue": {"Fn::Sub": "${DataStackName}-" + key}}


def _of_type(template: dict, kind: str) -> dict[str, dict]:
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def _ref(value) -> str:
    assert isinstance(value, dict) and set(value) == {"Ref"}, value
    return value["Ref"]


def _default(template: dict, value):
    """A value, or the default of the parameter it refers to."""
    if isinstance(value, dict) and "Ref" in value:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def _services(template: dict):
    """Each ECS service: (logical id, its properties, its task definition's, its container,
    the parsed `vomage service` command, and its process key: name, or queue for workers)."""
    found = []
    for lid, res in _of_type(template, "AWS::ECS::Service").items():
        props = res["Properties"]
        task = template["Resources"][_ref(props["TaskDefinition"])]["Properties"]
        (container,) = task["ContainerDefinitions"]
        args = _cli(list(container["Command"]))
        key = args.queue if args.name == services.RUN_WORKER else args.name
        found.append((lid, props, task, container, args, key))
    return found


def _named(container: dict, field: str) -> dict:
    return {e["Name"]: e[("Value" if field == "Environment" else "ValueFrom")] for e in container.get(field, [])}


def test_cfn_lint_finds_nothing():
    """Errors, warnings and informational findings alike fail the test (as for vomage.yaml)."""
    from cfnlint.api import ManualArgs, lint_file

    matches = lint_file(COMPUTE, ManualArgs(include_checks=["I"]))
    assert not matches, "\n".join(f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches)


def test_one_service_per_process_each_a_valid_vomage_service_command(template):
    found = _services(template)
    keys = [key for *_, key in found]
    assert sorted(keys) == sorted([s for s in services.SERVICES if s != services.RUN_WORKER] + list(RUN_QUEUES))
    images = set()
    for _lid, _props, _task, container, args, key in found:
        assert not args.health
        images.add(str(container["Image"]))
        if args.name == services.RUN_WORKER:
            assert args.concurrency == CONCURRENCY[key], key
    assert images == {str({"Ref": "ImageUri"})}  # one image for all


def test_each_service_runs_as_its_own_role_from_the_data_stack(template):
    """The role the local stack gives each process (local/aws/roles.py) is the one its task gets."""
    for lid, _props, task, _container, _args, key in _services(template):
        assert task["TaskRoleArn"] == _import(f"{PROCESS_ROLES[key]}Arn"), lid
        assert task["ExecutionRoleArn"] == {"Fn::GetAtt": ["TaskExecutionRole", "Arn"]}


def test_each_service_gets_every_setting_it_requires(template):
    instance = services.instance_variables(INSTANCE.read_text())
    assert instance  # dagster.yaml reads the Postgres connection from the environment
    for lid, _props, _task, container, args, _key in _services(template):
        given = set(_named(container, "Environment")) | set(_named(container, "Secrets"))
        needed = set(services.required(args.name, args.queue))
        if "DAGSTER_HOME" in needed:
            needed |= set(instance)
        assert needed <= given, f"{lid} lacks {sorted(needed - given)}"
        env = _named(container, "Environment")
        assert env["VOMAGE_ENV"] == "aws"
        assert env["AWS_DEFAULT_REGION"] == {"Ref": "AWS::Region"}


def test_no_secret_is_plain_environment(template):
    secret_resources = set(_of_type(template, "AWS::SecretsManager::Secret"))
    for lid, _props, _task, container, _args, _key in _services(template):
        for name, value in _named(container, "Environment").items():
            assert not any(word in name for word in SECRET_WORDS), f"{lid}: {name} in plain environment"
            assert "resolve:secretsmanager" not in str(value) and "@" not in str(value), f"{lid}: {name}"
        secrets = _named(container, "Secrets")
        # The broker URL carries its AUTH token (Celery takes it only inside the URL).
        assert {"REDIS_PASSWORD", "VOMAGE_CELERY_BROKER"} & set(secrets)
        for name, value in secrets.items():
            refs = cfn_refs(value)
            assert refs and refs <= secret_resources | {"RedisAuthSecretArn"}, f"{lid}: {name} from {value}"


def test_secrets_come_from_where_they_are_made(template):
    every = {}
    for _lid, _props, _task, container, _args, _key in _services(template):
        every.update(_named(container, "Secrets"))
    assert every["DAGSTER_PG_PASSWORD"] == {"Fn::Sub": "${DatabaseSecret}:password::"}
    assert every["REDIS_PASSWORD"] == {"Fn::Sub": "${RedisAuthSecretArn}:token::"}
    assert every["VOMAGE_CELERY_BROKER"] == {"Ref": "BrokerUrlSecret"}
    assert "VOMAGE_APP_SECRET" not in every  # the live view takes the user pool's tokens instead
    granted = template["Resources"]["TaskExecutionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (read,) = granted["Statement"]
    assert read["Action"] == "secretsmanager:GetSecretValue"
    assert cfn_refs(read["Resource"]) == {"DatabaseSecret", "RedisAuthSecretArn", "BrokerUrlSecret"}


def test_run_worker_queues_get_their_queue_specific_settings(template):
    for lid, _props, _task, container, args, key in _services(template):
        env = _named(container, "Environment")
        if key == "vomage-batch":
            assert env["VOMAGE_BEDROCK_BATCH_ROLE_ARN"] == _import("BedrockBatchServiceRoleArn")
        else:
            assert "VOMAGE_BEDROCK_BATCH_ROLE_ARN" not in env, lid
        if args.name == services.LIVE_VIEW:
            assert env["VOMAGE_STREAMING_ROLE_ARN"] == _import("AppStreamingRoleArn")
            assert env["VOMAGE_IMAGES_BASE_URL"] == _import("ImagesBaseUrl")  # stable links over CloudFront


def test_the_platforms_names_come_from_the_data_stack(template):
    for _lid, _props, _task, container, _args, _key in _services(template):
        env = _named(container, "Environment")
        assert env["VOMAGE_BUCKET"] == _import("BucketName")
        assert env["VOMAGE_STATUS_TABLE"] == _import("StatusTableName")
        assert env["VOMAGE_RECORDS_TABLE"] == _import("RecordsTableName")
        assert env["VOMAGE_UPLOADS_QUEUE"] == {"Fn::Select": [5, {"Fn::Split": [":", _import("UploadsQueueArn")]}]}
        assert env["VOMAGE_DEAD_LETTER_QUEUE"] == {
            "Fn::Select": [4, {"Fn::Split": ["/", _import("DeadLetterQueueUrl")]}]}
        if "VOMAGE_CODE_SERVER_HOST" in env:
            assert env["VOMAGE_CODE_SERVER_HOST"] == {"Fn::Sub": "code-server.${ClusterName}.local"}


def test_every_import_is_an_export_of_the_data_stack(template, data):
    keys = set(re.findall(r"'Fn::ImportValue': \{'Fn::Sub': '\$\{DataStackName\}-(\w+)'\}", str(template)))
    assert {"BucketName", "UploadsQueueArn", "IngestSensorRoleArn", "LiveViewRoleArn"} <= keys
    for key in keys:
        assert data["Outputs"][key]["Export"] == {"Name": {"Fn::Sub": "${AWS::StackName}-" + key}}, key


def test_the_code_server_is_found_by_name(template):
    res = template["Resources"]
    namespace = res["ServiceNamespace"]["Properties"]
    assert namespace["Name"] == {"Fn::Sub": "${ClusterName}.local"} and namespace["Vpc"] == {"Ref": "Vpc"}
    assert res["CodeServerDiscovery"]["Properties"]["Name"] == services.CODE_SERVER
    (code_server,) = [p for _l, p, _t, _c, a, _k in _services(template) if a.name == services.CODE_SERVER]
    assert code_server["ServiceRegistries"] == [{"RegistryArn": {"Fn::GetAtt": ["CodeServerDiscovery", "Arn"]}}]


def test_sizes_and_counts_are_the_documented_ones(template):
    for lid, props, task, _container, _args, key in _services(template):
        assert (int(task["Cpu"]), int(task["Memory"])) == SIZES[key], lid
        count = _default(template, props["DesiredCount"])
        assert int(count) == {"daemon": 1, "ingest": 2, "live-view": 2, "vomage-runs": 3}.get(key, 1), lid


def test_the_daemon_is_never_two(template):
    (daemon,) = [p for _l, p, _t, _c, a, _k in _services(template) if a.name == services.DAEMON]
    assert daemon["DesiredCount"] == 1
    assert daemon["DeploymentConfiguration"]["MaximumPercent"] == 100
    assert daemon["DeploymentConfiguration"]["MinimumHealthyPercent"] == 0
    scaled = {str(t["Properties"]["ResourceId"]) for t in
              _of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget").values()}
    assert not any("DaemonService" in s for s in scaled)


def test_ports_target_groups_and_health_checks(template):
    res = template["Resources"]
    for lid, props, _task, container, args, _key in _services(template):
        port = services.PORTS.get(args.name)
        mapped = [m["ContainerPort"] for m in container.get("PortMappings", [])]
        assert mapped == ([port] if port else []), lid
        # The container asks the service itself, through the CLI.
        command = list(container["HealthCheck"]["Command"])
        assert command[:2] == ["CMD", "vomage"], lid
        checked = _cli(command[3:])
        assert checked.health and (checked.name, checked.queue) == (args.name, args.queue), lid
        hc = container["HealthCheck"]
        assert hc["Retries"] >= 2 and hc["StartPeriod"] >= 60 and hc["Timeout"] < hc["Interval"] <= 60, lid
        balanced = props.get("LoadBalancers", [])
        if args.name in HEALTH_PATHS:
            (lb,) = balanced
            assert (lb["ContainerName"], lb["ContainerPort"]) == (container["Name"], port)
            group = res[_ref(lb["TargetGroupArn"])]["Properties"]
            assert group["Port"] == port and group["TargetType"] == "ip" and group["Protocol"] == "HTTP"
            assert group["HealthCheckPath"] == HEALTH_PATHS[args.name]
            assert HEALTH_PATHS[args.name] in inspect.getsource(health.healthy)  # what the container asks too
            assert group["Matcher"] == {"HttpCode": "200"}
        else:
            assert not balanced, lid


def test_every_task_is_fargate_private_read_only_and_logged(template):
    res = template["Resources"]
    for lid, props, task, container, args, _key in _services(template):
        assert props["LaunchType"] == "FARGATE" and task["RequiresCompatibilities"] == ["FARGATE"], lid
        assert task["NetworkMode"] == "awsvpc"
        net = props["NetworkConfiguration"]["AwsvpcConfiguration"]
        assert net["AssignPublicIp"] == "DISABLED"
        assert net["Subnets"] == [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]
        # A read-only root; /tmp (the runtime files) and Dagster's home (dagster-celery's worker
        # config) writable, on task storage.
        assert container["ReadonlyRootFilesystem"] is True, lid
        mounts = {str(m["ContainerPath"]): m["SourceVolume"] for m in container["MountPoints"]}
        home = "DAGSTER_HOME" in services.required(args.name, args.queue)
        assert mounts == {"/tmp": "tmp", **({str({"Ref": "DagsterHome"}): "dagster-home"} if home else {})}, lid
        assert all(m["ReadOnly"] is False for m in container["MountPoints"])
        assert sorted(v["Name"] for v in task["Volumes"]) == sorted(mounts.values()), lid
        assert all(set(v) == {"Name"} for v in task["Volumes"])  # task storage, nothing of the host
        logs = container["LogConfiguration"]
        assert logs["LogDriver"] == "awslogs"
        group = res[_ref(logs["Options"]["awslogs-group"])]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    cluster = res["Cluster"]["Properties"]
    assert cluster["ClusterName"] == {"Ref": "ClusterName"}
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]


def test_scaling_of_the_recordings_workers_and_the_live_view(template):
    targets = _of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = _of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy").values()
    by_service = {}
    for name, target in targets.items():
        (service,) = cfn_refs(target["Properties"]["ResourceId"]) - {"Cluster"}
        by_service[service] = (name, target["Properties"])
    assert set(by_service) == {"RunsWorkerService", "LiveViewService"}
    for service, (low, high) in {"RunsWorkerService": ("RunWorkersMin", "RunWorkersMax"),
                                 "LiveViewService": ("LiveViewMin", "LiveViewMax")}.items():
        name, props = by_service[service]
        assert (props["MinCapacity"], props["MaxCapacity"]) == ({"Ref": low}, {"Ref": high})
        assert props["ScalableDimension"] == "ecs:service:DesiredCount"
        assert template["Resources"][service]["Properties"]["DesiredCount"] == {"Ref": low}
        assert [p for p in policies if p["Properties"]["ScalingTargetId"] == {"Ref": name}], service
    # The recordings' workers follow the uploads queue.
    (uploads,) = [p["Properties"] for p in policies if "CustomizedMetricSpecification" in str(p)]
    metrics = uploads["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]["Metrics"]
    queue = {"Fn::Select": [5, {"Fn::Split": [":", _import("UploadsQueueArn")]}]}
    sqs = [m["MetricStat"]["Metric"] for m in metrics if "MetricStat" in m
           and m["MetricStat"]["Metric"]["Namespace"] == "AWS/SQS"]
    assert {m["MetricName"] for m in sqs} >= {"ApproximateNumberOfMessagesVisible"}
    assert all(m["Dimensions"] == [{"Name": "QueueName", "Value": queue}] for m in sqs)
    assert uploads["ScalingTargetId"] == {"Ref": by_service["RunsWorkerService"][0]}
    (returned,) = [m for m in metrics if m["ReturnData"]]
    assert "tasks" in returned["Expression"]  # per task


def test_postgres_is_multi_az_encrypted_protected_and_its_password_a_secret(template):
    res = template["Resources"]
    (name,) = _of_type(template, "AWS::RDS::DBInstance")
    db = res[name]
    props = db["Properties"]
    assert props["Engine"] == "postgres" and props["MultiAZ"] is True and props["StorageEncrypted"] is True
    assert props["DeletionProtection"] is True and props["PubliclyAccessible"] is False
    assert int(_default(template, props["BackupRetentionPeriod"])) >= 1
    assert db["DeletionPolicy"] == "Snapshot"
    assert _default(template, props["DBInstanceClass"]) == "db.t4g.medium"
    assert int(_default(template, props["AllocatedStorage"])) == 100 and props["StorageType"] == "gp3"
    assert props["MasterUserPassword"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${DatabaseSecret}:SecretString:password}}"}
    assert "GenerateSecretString" in res["DatabaseSecret"]["Properties"]
    assert props["VPCSecurityGroups"] == [{"Ref": "PostgresSecurityGroup"}]
    for _lid, _props, _task, container, _args, _key in _services(template):
        env = _named(container, "Environment")
        if "DAGSTER_PG_HOST" in env:
            assert env["DAGSTER_PG_HOST"] == {"Fn::GetAtt": ["Database", "Endpoint.Address"]}
            assert env["DAGSTER_PG_PORT"] == {"Fn::GetAtt": ["Database", "Endpoint.Port"]}
            assert env["DAGSTER_PG_DB"] == props["DBName"]


def test_two_redis_one_for_the_cache_one_for_the_broker(template):
    res = template["Resources"]
    groups = _of_type(template, "AWS::ElastiCache::ReplicationGroup")
    assert set(groups) == {"CacheRedis", "BrokerRedis"}
    for name, group in groups.items():
        props = group["Properties"]
        assert props["TransitEncryptionEnabled"] is True and props["AtRestEncryptionEnabled"] is True, name
        assert props["MultiAZEnabled"] is True and props["AutomaticFailoverEnabled"] is True, name
        assert props["AuthToken"]["Fn::Sub"].startswith("{{resolve:secretsmanager:"), name
    assert groups["CacheRedis"]["Properties"]["AuthToken"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${RedisAuthSecretArn}:SecretString:token}}"}
    assert groups["CacheRedis"]["Properties"]["SecurityGroupIds"] != groups["BrokerRedis"]["Properties"][
        "SecurityGroupIds"]
    broker_url = res["BrokerUrlSecret"]["Properties"]["SecretString"]["Fn::Sub"]
    assert broker_url.startswith("rediss://") and "BrokerRedis.PrimaryEndPoint" in broker_url
    assert "CacheRedis" not in broker_url
    for _lid, _props, _task, container, _args, _key in _services(template):
        env, secrets = _named(container, "Environment"), _named(container, "Secrets")
        url = env["REDIS_URL"]["Fn::Sub"]
        assert url.startswith("rediss://") and "CacheRedis.PrimaryEndPoint" in url
        if "VOMAGE_CELERY_BROKER" in secrets:
            assert secrets["VOMAGE_CELERY_BROKER"] == {"Ref": "BrokerUrlSecret"}


def test_only_the_processes_with_the_instance_reach_postgres_broker_and_code_server(template):
    for lid, props, _task, _container, args, _key in _services(template):
        groups = {_ref(g) for g in props["NetworkConfiguration"]["AwsvpcConfiguration"]["SecurityGroups"]}
        assert "AppTaskSecurityGroup" in groups
        uses_instance = "DAGSTER_HOME" in services.required(args.name, args.queue)
        assert ("DagsterTaskSecurityGroup" in groups) == uses_instance, lid
        own = {services.CODE_SERVER: "CodeServerSecurityGroup", services.WEBSERVER: "WebserverSecurityGroup",
               services.LIVE_VIEW: "LiveViewSecurityGroup"}.get(args.name)
        assert groups - {"AppTaskSecurityGroup", "DagsterTaskSecurityGroup"} == ({own} if own else set()), lid


def test_security_groups_let_in_only_the_traffic_each_needs(template):
    res = template["Resources"]
    rules = set()

    def source(rule):
        return rule.get("CidrIp") or _ref(rule["SourceSecurityGroupId"])

    for name, group in _of_type(template, "AWS::EC2::SecurityGroup").items():
        assert "SecurityGroupEgress" in group["Properties"], f"{name} keeps EC2's all-traffic egress"
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            rules.add((name, rule["FromPort"], rule["ToPort"], str(source(rule))))
    for rule in _of_type(template, "AWS::EC2::SecurityGroupIngress").values():
        p = rule["Properties"]
        rules.add((_ref(p["GroupId"]), p["FromPort"], p["ToPort"], str(source(p))))
    operators = str({"Ref": "OperatorsCidr"})
    assert rules == {
        ("LiveViewLoadBalancerSecurityGroup", 443, 443, "0.0.0.0/0"),
        ("LiveViewLoadBalancerSecurityGroup", 80, 80, "0.0.0.0/0"),  # redirected to HTTPS
        ("OperatorsLoadBalancerSecurityGroup", 443, 443, operators),
        ("WebserverSecurityGroup", 3000, 3000, "OperatorsLoadBalancerSecurityGroup"),
        ("LiveViewSecurityGroup", 8000, 8000, "LiveViewLoadBalancerSecurityGroup"),
        ("CodeServerSecurityGroup", 4000, 4000, "DagsterTaskSecurityGroup"),
        ("PostgresSecurityGroup", 5432, 5432, "DagsterTaskSecurityGroup"),
        ("CacheSecurityGroup", 6379, 6379, "AppTaskSecurityGroup"),
        ("BrokerSecurityGroup", 6379, 6379, "DagsterTaskSecurityGroup"),
        ("EndpointSecurityGroup", 443, 443, "AppTaskSecurityGroup"),
    }
    assert services.PORTS == {services.CODE_SERVER: 4000, services.WEBSERVER: 3000, services.LIVE_VIEW: 8000}
    assert res["CacheRedis"]["Properties"]["SecurityGroupIds"] == [{"Ref": "CacheSecurityGroup"}]
    assert res["BrokerRedis"]["Properties"]["SecurityGroupIds"] == [{"Ref": "BrokerSecurityGroup"}]


def _listeners(template: dict, balancer: str) -> list[dict]:
    return [r["Properties"] for r in _of_type(template, "AWS::ElasticLoadBalancingV2::Listener").values()
            if r["Properties"]["LoadBalancerArn"] == {"Ref": balancer}]


def _attributes(props: dict) -> dict:
    return {a["Key"]: a["Value"] for a in props.get("LoadBalancerAttributes", props.get("TargetGroupAttributes", []))}


def test_the_webserver_is_internal_https_only_and_signs_in_first(template):
    res = template["Resources"]
    balancer = res["OperatorsLoadBalancer"]["Properties"]
    assert balancer["Scheme"] == "internal"
    assert balancer["Subnets"] == [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]
    (listener,) = _listeners(template, "OperatorsLoadBalancer")  # no HTTP listener at all
    assert (listener["Protocol"], listener["Port"]) == ("HTTPS", 443)
    assert listener["Certificates"] == [{"CertificateArn": {"Ref": "OperatorsCertificateArn"}}]
    actions = sorted(listener["DefaultActions"], key=lambda a: a["Order"])
    assert [a["Type"] for a in actions] == ["authenticate-cognito", "forward"]
    sign_in = actions[0]["AuthenticateCognitoConfig"]
    assert sign_in["UserPoolArn"] == {"Fn::GetAtt": ["OperatorsUserPool", "Arn"]}
    assert sign_in["OnUnauthenticatedRequest"] == "authenticate"
    assert actions[1]["TargetGroupArn"] == {"Ref": "WebserverTargetGroup"}
    pool = res["OperatorsUserPool"]["Properties"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    client = res["OperatorsUserPoolClient"]["Properties"]
    assert client["CallbackURLs"] == [{"Fn::Sub": "https://${OperatorsDomainName}/oauth2/idpresponse"}]


def test_the_live_view_is_public_https_with_room_for_websockets(template):
    res = template["Resources"]
    balancer = res["LiveViewLoadBalancer"]["Properties"]
    assert balancer["Scheme"] == "internet-facing"
    assert balancer["Subnets"] == [{"Ref": "PublicSubnetA"}, {"Ref": "PublicSubnetB"}]
    assert int(_attributes(balancer)["idle_timeout.timeout_seconds"]) >= 120
    by_protocol = {ls["Protocol"]: ls for ls in _listeners(template, "LiveViewLoadBalancer")}
    assert set(by_protocol) == {"HTTPS", "HTTP"}
    https = by_protocol["HTTPS"]
    assert https["Port"] == 443
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "LiveViewCertificateArn"}}]
    assert https["DefaultActions"] == [{"Type": "forward", "TargetGroupArn": {"Ref": "LiveViewTargetGroup"}}]
    (redirect,) = by_protocol["HTTP"]["DefaultActions"]
    assert redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    group = res["LiveViewTargetGroup"]["Properties"]
    assert int(_attributes(group)["deregistration_delay.timeout_seconds"]) <= 30


def test_the_network_spans_two_zones_with_gateway_endpoints(template):
    res = template["Resources"]
    zones = {str(res[s]["Properties"]["AvailabilityZone"]) for s in ("PrivateSubnetA", "PrivateSubnetB")}
    assert len(zones) == 2
    gateways = {str(r["Properties"]["ServiceName"]) for r in _of_type(template, "AWS::EC2::VPCEndpoint").values()
                if r["Properties"]["VpcEndpointType"] == "Gateway"}
    assert gateways == {str({"Fn::Sub": "com.amazonaws.${AWS::Region}." + s}) for s in ("s3", "dynamodb")}
    assert len(_of_type(template, "AWS::EC2::NatGateway")) == 2


def test_shared_settings_default_to_the_data_stacks(template, data):
    """Parameters both stacks have must agree: the data stack's roles are scoped to them."""
    mine, theirs = template["Parameters"], data["Parameters"]
    for name in ("EventBusName", "AnalysisModelId", "InferenceProfilePrefix", "ImageModelId", "ImageModelRegion"):
        assert mine[name]["Default"] == theirs[name]["Default"], name
    assert mine["ClusterName"]["Default"] == theirs["EcsClusterName"]["Default"]
    assert mine["DataStackName"]["Default"] == "vomage"
    role = template["Resources"]["TaskExecutionRole"]["Properties"]
    assert role["RoleName"] == {"Fn::Sub": "${DataStackName}-task-execution"}  # what the daemon may pass


def test_required_parameters_are_checked_before_anything_is_created(template):
    required = {n for n, p in template["Parameters"].items() if "Default" not in p}
    assert {"ImageUri", "LiveViewCertificateArn", "OperatorsCertificateArn", "RedisAuthSecretArn"} <= required
    for name in required:
        p = template["Parameters"][name]
        assert "AllowedPattern" in p or "AllowedValues" in p, name
    image = re.compile(template["Parameters"]["ImageUri"]["AllowedPattern"])
    assert image.match("123456789012.dkr.ecr.us-east-1.amazonaws.com/vomage:3f2a9c1")
    assert image.match("123456789012.dkr.ecr.us-east-1.amazonaws.com/vomage@sha256:" + "a" * 64)
    assert not image.match("123456789012.dkr.ecr.us-east-1.amazonaws.com/vomage:latest")
    assert not image.match("123456789012.dkr.ecr.us-east-1.amazonaws.com/vomage")
    cert = re.compile(template["Parameters"]["LiveViewCertificateArn"]["AllowedPattern"])
    assert cert.match("arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012")
    assert not cert.match("arn:aws:iam::123456789012:server-certificate/x")


DOCKERFILE = PROJECT_ROOT / "deploy" / "image" / "Dockerfile"


def _dockerfile() -> str:
    if not DOCKERFILE.exists():
        pytest.skip("no deploy/image/Dockerfile")
    return DOCKERFILE.read_text()


def test_dagster_home_is_where_the_image_puts_dagster_yaml(template):
    home = template["Parameters"]["DagsterHome"]["Default"]
    assert re.search(rf"\bDAGSTER_HOME={re.escape(home)}\b", _dockerfile())
    assert re.search(rf"COPY \S*dagster\.yaml {re.escape(home)}/dagster\.yaml", _dockerfile())


def _image_volumes() -> set[str]:
    found: set[str] = set()
    for line in re.findall(r"^VOLUME\s+(.+)$", _dockerfile(), flags=re.M):
        found |= set(re.findall(r"[^\s\[\]\",]+", line))
    return found


def test_the_image_declares_every_mounted_path_a_volume(template):
    """Fargate mounts task storage root-owned and empty; a path the image declares VOLUME is
    copied in with its owner and contents, which the service user (and dagster.yaml) need."""
    volumes = _image_volumes()
    mounted = {"/tmp", template["Parameters"]["DagsterHome"]["Default"]}
    assert mounted <= volumes, f"deploy/image/Dockerfile lacks VOLUME {sorted(mounted - volumes)}"


def _readme_names() -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Za-z0-9]+)=", README.read_text()))


def _required_parameters() -> dict[str, set[str]]:
    return {path.name: {n for n, p in _load(path)["Parameters"].items() if "Default" not in p}
            for path in (DATA_TEMPLATE, COMPUTE)}


def test_every_required_parameter_is_in_the_readmes_deploy_command():
    named = _readme_names()
    for template, required in _required_parameters().items():
        assert required <= named, f"{template}: {sorted(required - named)} not in deploy/README.md"
