"""Safety rails: nothing is injected unless the account, every resource a fault acts on,
and every experiment check out. Every refusal is one ``BadInput`` line (exit 2).

- ``preflight(plan, aws_env)``: before any load or fault of a run: experiments validate
  (``chaos validate``), credentials exist, the account id (STS GetCallerIdentity) is
  allowed, each resource a fault acts on exists and is allowed by name or by tags.
- ``dry_run(plan, aws_env=None)``: ``peakready run --dry-run``: the same, plus the
  profile and the permissions (describe calls, and an IAM policy simulation of the fault
  actions where the account allows it); injects nothing.

The allow-list decision itself is pure (``violations``); which resources a fault acts on
is ``peakready.chaos.semantics``'s rule, read from the plan's fault specs (re-read only if
an experiment changed since the plan loaded); the AWS calls are at the edges.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from peakready.errors import BadInput
from peakready.plan import Plan

__all__ = ["FAULT_ACTIONS", "dry_run", "preflight", "refuse_unnamed", "validate_experiments",
           "violations"]

# IAM actions each resource kind's faults call (checked by simulation in a dry run).
FAULT_ACTIONS = {
    "autoscaling_group": ["ec2:TerminateInstances", "autoscaling:SuspendProcesses",
                          "autoscaling:ResumeProcesses"],
    "db_cluster": ["rds:FailoverDBCluster"],
    "cache_replication_group": ["elasticache:TestFailover"],
    "search_domain": ["es:StartDomainMaintenance"],
    "web_acl": ["wafv2:GetWebACL", "wafv2:UpdateWebACL"],
    "delivery_stream": ["firehose:ListTagsForDeliveryStream", "firehose:TagDeliveryStream",
                        "firehose:UntagDeliveryStream"],
    "log_bucket": ["s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"],
}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
          "UnauthorizedAccess", "AuthorizationError"}


# --- pure -----------------------------------------------------------------------------------

def violations(touched: Sequence[tuple[str, str, str]], allow: Mapping[str, Any],
               tags: Mapping[tuple[str, str], Mapping[str, str]]) -> list[str]:
    """Every (fault, kind, name) the allow-list does not cover, as one line each.

    A resource is allowed when its name is in ``allow.resources`` or, if ``allow.tags`` is
    set, when it carries every one of those tags (``tags[(kind, name)]``).
    """
    names = set(allow.get("resources") or [])
    wanted = dict(allow.get("tags") or {})
    out = []
    for fault, kind, name in touched:
        if name in names:
            continue
        have = tags.get((kind, name)) or {}
        if wanted and all(have.get(k) == v for k, v in wanted.items()):
            continue
        by_tags = f" or tagged {wanted}" if wanted else ""
        out.append(f"target.allow: fault {fault} would act on {kind} {name}, which is not in "
                   f"target.allow.resources{by_tags}")
    return out


def sandbox_default_allow(plan: Plan) -> bool:
    """A sandbox plan without any allow-list may touch the sandbox's own resources (local,
    disposable); a plan that states an allow-list always gets it enforced."""
    allow = plan.target["allow"]
    return plan.kind == "sandbox" and not allow["resources"] and not allow["tags"]


# --- edges ----------------------------------------------------------------------------------

class _Aws:
    """boto3 clients for the run's account: ``aws_env`` (endpoint, keys, region) over the
    ordinary credential chain."""

    def __init__(self, plan: Plan, aws_env: Mapping[str, str] | None):
        env = dict(aws_env or {})
        self.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") \
            or plan.target["region"]
        self.endpoint = env.get("AWS_ENDPOINT_URL")
        keys = {}
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            keys = {"aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
                    "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
                    "aws_session_token": env.get("AWS_SESSION_TOKEN")}
        self.session = boto3.Session(region_name=self.region, **keys)
        attempts = int(env.get("AWS_MAX_ATTEMPTS") or 3)
        self.config = Config(retries={"max_attempts": attempts, "mode": "standard"},
                             connect_timeout=5, read_timeout=30)
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(
                service, endpoint_url=self.endpoint, config=self.config)
        return self._clients[service]

    def account_id(self) -> str:
        if self.session.get_credentials() is None:
            raise BadInput("target: no AWS credentials found (boto3 chain: AWS_PROFILE, "
                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, instance role)")
        try:
            return self("sts").get_caller_identity()["Account"]
        except NoCredentialsError:
            raise BadInput("target: no AWS credentials found (boto3 chain: AWS_PROFILE, "
                           "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, instance role)") \
                from None
        except (ClientError, BotoCoreError) as exc:
            raise BadInput(f"target: cannot identify the AWS account (sts:GetCallerIdentity): "
                           f"{_short(exc)}") from None

    def caller_arn(self) -> str:
        return self("sts").get_caller_identity()["Arn"]


def _short(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
    return str(exc).splitlines()[0]


def _describe(aws: _Aws, kind: str, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """(tags, description) of one resource; BadInput when it does not exist or the
    describe call is denied (the run would fail the same way, later)."""
    field = f"target.resources.{kind}"
    where = f"in region {aws.region}"
    try:
        if kind == "autoscaling_group":
            groups = aws("autoscaling").describe_auto_scaling_groups(
                AutoScalingGroupNames=[name])["AutoScalingGroups"]
            if not groups:
                raise BadInput(f"{field}: Auto Scaling group {name} not found {where}")
            return {t["Key"]: t["Value"] for t in groups[0].get("Tags", [])}, groups[0]
        if kind == "db_cluster":
            rds = aws("rds")
            clusters = rds.describe_db_clusters(DBClusterIdentifier=name)["DBClusters"]
            if not clusters:
                raise BadInput(f"{field}: DB cluster {name} not found {where}")
            tags = clusters[0].get("TagList")
            if tags is None:
                tags = rds.list_tags_for_resource(
                    ResourceName=clusters[0]["DBClusterArn"])["TagList"]
            return {t["Key"]: t["Value"] for t in tags}, clusters[0]
        if kind == "cache_replication_group":
            ec = aws("elasticache")
            groups = ec.describe_replication_groups(ReplicationGroupId=name)["ReplicationGroups"]
            if not groups:
                raise BadInput(f"{field}: replication group {name} not found {where}")
            tags = []
            if groups[0].get("ARN"):
                try:
                    tags = ec.list_tags_for_resource(ResourceName=groups[0]["ARN"])["TagList"]
                except ClientError:
                    tags = []  # tags only matter for allow.tags; names still work
            return {t["Key"]: t["Value"] for t in tags}, groups[0]
        if kind == "search_domain":
            domain = aws("opensearch").describe_domain(DomainName=name)["DomainStatus"]
            tags = aws("opensearch").list_tags(ARN=domain["ARN"]).get("TagList", [])
            return {t["Key"]: t["Value"] for t in tags}, domain
        if kind == "web_acl":
            return _describe_web_acl(aws, field, name, where)
        if kind == "delivery_stream":
            return _describe_stream(aws, name)
        if kind == "log_bucket":
            return _describe_bucket(aws, field, name)
        if kind == "target_group":
            groups = aws("elbv2").describe_target_groups(Names=[name])["TargetGroups"]
            return {}, groups[0]
        if kind == "load_balancer":
            lbs = aws("elbv2").describe_load_balancers(Names=[name])["LoadBalancers"]
            return {}, lbs[0]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in DENIED:
            raise BadInput(f"{field}: not allowed to describe {name}: {_short(exc)}") from None
        if "NotFound" in code or "NotFoundFault" in code or code == "ValidationError":
            raise BadInput(f"{field}: {name} not found {where} ({code})") from None
        raise BadInput(f"{field}: describing {name} failed: {_short(exc)}") from None
    except BotoCoreError as exc:
        raise BadInput(f"{field}: describing {name} failed: {_short(exc)}") from None
    return {}, {}


def _describe_stream(aws: _Aws, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A Firehose delivery stream and its tags (ResourceNotFoundException: not found)."""
    firehose = aws("firehose")
    desc = firehose.describe_delivery_stream(DeliveryStreamName=name)[
        "DeliveryStreamDescription"]
    tags = firehose.list_tags_for_delivery_stream(DeliveryStreamName=name).get("Tags", [])
    return {t["Key"]: t.get("Value", "") for t in tags}, desc


def _describe_bucket(aws: _Aws, field: str, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """An S3 bucket (HEAD) and its tags (none: NoSuchTagSet)."""
    s3 = aws("s3")
    try:
        s3.head_bucket(Bucket=name)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise BadInput(f"{field}: bucket {name} not found") from None
        raise
    try:
        tags = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchTagSet":
            raise
        tags = []
    return {t["Key"]: t["Value"] for t in tags}, {"Name": name}


def _describe_web_acl(aws: _Aws, field: str, name: str,
                      where: str) -> tuple[dict[str, str], dict[str, Any]]:
    """A regional Web ACL by name (WAFv2 has no describe-by-name: list, then tags)."""
    wafv2, marker = aws("wafv2"), None
    while True:
        page = wafv2.list_web_acls(Scope="REGIONAL", **({"NextMarker": marker} if marker else {}))
        found = next((a for a in page.get("WebACLs", []) if a["Name"] == name), None)
        if found:
            tags = wafv2.list_tags_for_resource(ResourceARN=found["ARN"]).get(
                "TagInfoForResource", {}).get("TagList", [])
            return {t["Key"]: t["Value"] for t in tags}, found
        marker = page.get("NextMarker")
        if not marker or not page.get("WebACLs"):
            raise BadInput(f"{field}: Web ACL {name} not found {where}")


def refuse_unnamed(plan: Plan) -> None:
    """A fault whose experiment would fall back to its own default resource (or one from
    the environment) acts on something the allow-list never saw: refused, before any
    AWS call. The run engine checks this too (defence in depth)."""
    problems = plan.unnamed_resources()
    if problems:
        raise BadInput(f"{plan.path}: {problems[0]}")


def validate_experiments(plan: Plan) -> list[str]:
    """Every experiment of the plan through Chaos Toolkit's own validation (what ``chaos
    validate`` runs), again: the files may have changed since the plan was loaded."""
    import shutil

    from peakready.chaos.runner import chaos_executable
    from peakready.chaos.validate import ExperimentInvalid, validate_spec

    notes = []
    if plan.faults and shutil.which(chaos_executable()) is None:
        raise BadInput(f"{plan.path}: faults: the Chaos Toolkit CLI `chaos` is not installed "
                       "(pip install chaostoolkit)")
    for i, (fault, spec) in enumerate(zip(plan.faults, plan.current().fault_specs,
                                          strict=True)):
        try:
            validate_spec(spec)
        except ExperimentInvalid as exc:
            raise BadInput(f"{plan.path}: faults[{i}].experiment: {fault['experiment']} does "
                           f"not validate (chaos validate): {exc}") from None
        notes.append(f"experiment {fault['experiment']}: valid (chaos validate)")
    return notes


def preflight(plan: Plan, aws_env: Mapping[str, str] | None) -> list[str]:
    """Before any load or fault: experiments, credentials, account, allow-list, resources.

    Returns notes for the user; raises BadInput with the first problem.
    """
    plan = plan.current()  # the experiments as the run will find them
    refuse_unnamed(plan)
    notes = validate_experiments(plan)
    touched = plan.touched_resources()
    aws = _Aws(plan, aws_env)
    account = aws.account_id()
    allowed_accounts = plan.target["allow"]["account_ids"]
    if allowed_accounts and account not in allowed_accounts:
        raise BadInput(f"{plan.path}: target.allow.account_ids: the credentials are for "
                       f"account {account}, which is not allowed ({', '.join(allowed_accounts)})")
    if not allowed_accounts:
        if plan.kind != "sandbox":
            raise BadInput(f"{plan.path}: target.allow.account_ids: required for an aws target")
        notes.append(f"account {account} (the sandbox's; target.allow.account_ids is empty)")
    else:
        notes.append(f"account {account} is allowed")
    if not plan.faults:
        return notes + ["no faults in the plan: nothing to allow-list"]

    tags, descriptions = {}, {}
    for _fault, kind, name in touched:
        if kind == "db_instance" or (kind, name) in tags:
            continue
        tags[(kind, name)], descriptions[(kind, name)] = _describe(aws, kind, name)
    _check_db_targets(plan, touched, descriptions)

    if sandbox_default_allow(plan):
        notes.append("target.allow lists no resources: the sandbox's own resources are "
                     "allowed")
    else:
        problems = violations([t for t in touched if t[1] != "db_instance"],
                              plan.target["allow"], tags)
        if problems:
            raise BadInput(f"{plan.path}: {problems[0]}")
    for fault, kind, name in touched:
        notes.append(f"fault {fault} may act on {kind} {name}: allowed")
    return notes + probe_notes(plan)


def probe_notes(plan: Plan) -> list[str]:
    """A steady-state probe reading the experiment's default resource (not the plan's)
    judges somebody else's resource: not an action, so a warning, not a refusal."""
    return [f"warning: fault {r.fault}'s steady state reads {r.kind} {r.name} taken from "
            f"{r.source}, not from the plan; set target.resources.{r.kind}"
            for r in plan.probed_resources() if r.variable and not r.from_plan and r.name]


def _check_db_targets(plan: Plan, touched: Sequence[tuple[str, str, str]],
                      descriptions: Mapping[tuple[str, str], Mapping[str, Any]]) -> None:
    """A named failover target must be a member of the fault's (allowed) cluster."""
    for fault in plan.faults:
        config = fault["configuration"]
        target, cluster = config.get("target_instance"), config.get("db_cluster")
        if not target or not cluster:
            continue
        members = {m["DBInstanceIdentifier"] for m in
                   descriptions.get(("db_cluster", cluster), {}).get("DBClusterMembers", [])}
        if target not in members:
            raise BadInput(f"{plan.path}: faults: {fault['name']}.configuration."
                           f"target_instance: {target} is not a member of {cluster}")


def _simulate(aws: _Aws, touched: Sequence[tuple[str, str, str]],
              descriptions: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[str]:
    """Ask IAM whether the caller may run the fault actions; a note either way (a role
    may not be allowed to simulate itself, which proves nothing)."""
    actions = sorted({a for _f, kind, _n in touched for a in FAULT_ACTIONS.get(kind, [])})
    if not actions:
        return []
    try:
        arn = aws.caller_arn()
        if ":assumed-role/" in arn:  # simulate the role, not the session
            account = arn.split(":")[4]
            role = arn.split(":assumed-role/")[1].split("/")[0]
            arn = f"arn:aws:iam::{account}:role/{role}"
        result = aws("iam").simulate_principal_policy(PolicySourceArn=arn,
                                                      ActionNames=actions)
    except Exception as exc:  # noqa: BLE001 - best effort: any failure means "not checked"
        return [f"permissions for {', '.join(actions)}: not checked (IAM policy simulation "
                f"unavailable: {_short(exc)})"]
    denied = [r["EvalActionName"] for r in result.get("EvaluationResults", [])
              if r.get("EvalDecision") != "allowed"]
    if denied:
        raise BadInput(f"target: the credentials may not run {', '.join(denied)} "
                       "(IAM policy simulation); the faults would fail")
    return [f"permissions: {', '.join(actions)} allowed (IAM policy simulation)"]


def dry_run(plan: Plan, aws_env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Validate everything that can be without injecting or loading anything.

    Against a sandbox target without ``aws_env`` (the sandbox is not started for a dry
    run) account, resources and permissions are left to the run's preflight, and the
    report says so.
    """
    from peakready.profiles import load_profile

    load = plan.data["load"]
    profile = load_profile(load["profile"]).scaled(load["scale"]).compressed(load["speed"])
    report: dict[str, Any] = {
        "plan": f"{plan.path}: valid, target {plan.kind}, {len(plan.faults)} fault(s), "
                f"load {plan.duration_s:.0f} s",
        "profile": f"{load['profile']}: peak {profile.peak_rps:.1f} rps, "
                   f"{profile.duration_s:.0f} s after speed {load['speed']:g}",
        "locustfile": f"{load['locustfile']}: found",
        "faults": [f"{f['name']} at {f['at_s']:g} s: {f['experiment']}" for f in plan.faults],
    }
    plan = plan.current()  # the experiments as the run would find them
    refuse_unnamed(plan)
    touched = plan.touched_resources()
    report["acts_on"] = [f"{fault}: {kind} {name}" for fault, kind, name
                         in touched] or ["no resource (no faults)"]
    probes = probe_notes(plan)
    if probes:
        report["probes"] = probes
    report["experiments"] = validate_experiments(plan)
    if plan.kind == "sandbox" and aws_env is None:
        report["account"] = ("sandbox: account, resources and allow-list are checked against "
                             "the sandbox when the run starts (preflight)")
        return report
    report["preflight"] = preflight(plan, aws_env)
    aws = _Aws(plan, aws_env)
    acted_on = {(kind, name) for _fault, kind, name in touched}
    descriptions: dict[tuple[str, str], dict[str, Any]] = {}
    report["resources"] = []
    for kind, name in dict(plan.target["resources"]).items():
        try:
            _tags, descriptions[(kind, name)] = _describe(aws, kind, name)
        except BadInput as exc:
            if (kind, name) in acted_on:
                raise
            # a tier the shop may not run (a default name, e.g. no OpenSearch domain): no
            # fault acts on it, so it is a note; the checks reading it will say skipped
            report["resources"].append(f"{kind} {name}: not found, no fault acts on it "
                                       f"({str(exc).rsplit(': ', 1)[-1]})")
            continue
        report["resources"].append(f"{kind} {name}: found")
    alarms = list(plan.target["alarms"]) + list(plan.data["stop_conditions"]["alarms"])
    if alarms:
        try:
            found = {a["AlarmName"] for a in aws("cloudwatch").describe_alarms(
                AlarmNames=alarms)["MetricAlarms"]}
        except (ClientError, BotoCoreError) as exc:
            raise BadInput(f"target.alarms: cannot describe alarms: {_short(exc)}") from None
        missing = [a for a in alarms if a not in found]
        if missing:
            raise BadInput(f"{plan.path}: target.alarms: no such CloudWatch alarm: "
                           f"{', '.join(missing)}")
        report["alarms"] = f"{len(found)} alarm(s) found"
    report["permissions"] = _simulate(aws, touched, descriptions)
    return report

