"""What moto lacks, grafted onto moto's own Response classes (moto 5.2.5, pinned).

moto dispatches each action to the snake_case method of the service's Response class
and serialises the returned ``ActionResult`` for whichever protocol the client spoke
(CBOR for CloudWatch, query for the rest), so a method added or replaced here answers
stock boto3 and chaostoolkit-aws in AWS's shapes. Every patched method asks the one
attached control plane (``attach``); with none attached, moto behaves as shipped, so
other in-process users of moto are unaffected.

All moto actions, and the control plane's own edits of moto's state, run under
``LOCK``: moto's models are not thread-safe and the plane mutates them from threads.

Each graft is one ``Patch`` in ``PATCHES``: what it replaces in moto, why, and a factory
that builds the replacement from moto's original, so a test can build and exercise one
patch on its own (tests/control/test_extensions.py). Adding one is one decorated function.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moto.autoscaling.exceptions import ValidationError as AutoScalingValidationError
from moto.autoscaling.models import FakeAutoScalingGroup, InstanceState
from moto.autoscaling.responses import AutoScalingResponse
from moto.cloudwatch.exceptions import InvalidParameterValue, ValidationError
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.ec2.responses.instances import InstanceResponse
from moto.elasticache.responses import ElastiCacheResponse
from moto.elbv2.responses import ELBV2Response
from moto.rds.models import DBCluster
from moto.rds.responses import RDSResponse

from peakready.sandbox.aws import names, processes, queries

log = logging.getLogger(__name__)
LOCK = threading.RLock()
_state: dict[str, Any] = {"plane": None, "installed": False}
ORIGINALS: dict[str, Any] = {}  # Patch.target -> moto's attribute before install()


def attach(plane: Any) -> None:
    """Route the patched actions to ``plane`` (one control plane per process)."""
    install()
    _state["plane"] = plane


def detach(plane: Any) -> None:
    if _state["plane"] is plane:
        _state["plane"] = None


def _plane() -> Any:
    return _state["plane"]


@dataclass(frozen=True)
class Patch:
    """One graft onto moto: ``owner.attribute`` becomes ``make(moto's original)``."""

    name: str
    owner: type
    attribute: str
    why: str
    make: Callable[[Any], Any]  # moto's original (or None) -> the replacement
    routed: bool = False  # moto's own behaviour, untouched, while no plane is attached

    @property
    def target(self) -> str:
        return f"{self.owner.__module__}.{self.owner.__name__}.{self.attribute}"

    def apply(self) -> None:
        original = getattr(self.owner, self.attribute, None)
        ORIGINALS[self.target] = original
        setattr(self.owner, self.attribute, self.make(original))


PATCHES: list[Patch] = []


def _patch(owner: type, attribute: str, why: str) -> Callable:
    """Register ``make(original) -> replacement`` as a Patch (applied by ``install``)."""
    def register(make: Callable[[Any], Any]) -> Callable[[Any], Any]:
        PATCHES.append(Patch(make.__name__, owner, attribute, why, make))
        return make
    return register


def _routed(owner: type, action: str, why: str) -> Callable:
    """A Response action answered by ``func(self, plane, original)`` while a plane is
    attached, by moto's own method otherwise."""
    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        def make(original: Any) -> Callable[..., Any]:
            @functools.wraps(func)
            def method(self, *args, **kwargs):
                plane = _plane()
                if plane is None:
                    if original is None:
                        raise NotImplementedError(
                            f"The {action} action has not been implemented")
                    return original(self, *args, **kwargs)
                return func(self, plane, original)
            return method
        make.__name__ = func.__name__
        PATCHES.append(Patch(func.__name__, owner, action, why, make, routed=True))
        return func
    return register


def _reconciled(owner: type, action: str, why: str) -> None:
    """Actions that change capacity: moto's effect, then processes follow at once."""
    def make(original: Any) -> Callable[..., Any]:
        def method(self):
            plane = _plane()
            result = original(self)
            if plane is not None:
                plane.web.after_api_change()
            return result
        return method
    PATCHES.append(Patch(f"reconcile_{action}", owner, action, why, make, routed=True))


def install() -> None:
    """Apply every Patch once; idempotent; call before the server answers its first request."""
    if _state["installed"]:
        return
    _state["installed"] = True
    for patch in PATCHES:
        patch.apply()


# ---- every moto action -----------------------------------------------------------------
@_patch(BaseResponse, "call_action", "moto's models are not thread-safe and the control "
        "plane edits them from threads: every action runs under LOCK")
def locked_call_action(call_action):
    def method(self):
        with LOCK:
            return call_action(self)
    return method


@_patch(BaseResponse, "get_region_from_url", "the sandbox is one region: a request signed "
        "for another (an experiment that hard-codes its production region) is served by the "
        "sandbox's, not by an empty backend that answers 'not found'")
def one_region(get_region):
    def method(self, request, full_url):
        region = get_region(self, request, full_url)
        if _plane() is None or region == names.REGION:
            return region
        if region not in _FOREIGN_REGIONS:
            _FOREIGN_REGIONS.add(region)
            log.warning("requests for region %s are served by the sandbox's region %s",
                        region, names.REGION)
        return names.REGION
    return method


_FOREIGN_REGIONS: set[str] = set()


# ---- Auto Scaling / EC2 models -----------------------------------------------------------
@_patch(FakeAutoScalingGroup, "active_instances", "a booting (Pending) instance still counts "
        "toward capacity, as on AWS (moto: InService only)")
def active_instances(_original):
    def method(self):
        return [s for s in self.instance_states if s.lifecycle_state in ("InService", "Pending")]
    return method


@_patch(InstanceState, "__init__", "a new instance is born Pending until its target is "
        "healthy (moto: InService at once)")
def pending_until_healthy(state_init):
    def method(self, instance, lifecycle_state="InService", *args, **kwargs):
        if _plane() is not None and lifecycle_state == "InService":
            lifecycle_state = "Pending"
        state_init(self, instance, lifecycle_state, *args, **kwargs)
    return method


@_patch(FakeAutoScalingGroup, "replace_autoscaling_group_instances", "instances spread over "
        "the group's subnets (moto: all in the first), so an AZ-wide fault takes out part of "
        "the tier; a suspended Launch keeps the group below desired")
def balanced_launch(replace_instances):
    def method(self, count_needed, propagated_tags):
        if _plane() is not None and not processes.may_launch(
                processes.names_of(self.suspended_processes)):
            return None  # Launch suspended: the group stays below desired until resumed
        subnets = (self.vpc_zone_identifier or "").split(",")
        if _plane() is None or len(subnets) < 2:
            return replace_instances(self, count_needed, propagated_tags)
        saved = self.vpc_zone_identifier
        try:
            for _ in range(count_needed):
                used = [s.instance.subnet_id for s in self.active_instances()]
                best = min(subnets, key=lambda sn: (used.count(sn), subnets.index(sn)))
                self.vpc_zone_identifier = ",".join([best, *(sn for sn in subnets if sn != best)])
                replace_instances(self, 1, dict(propagated_tags))
        finally:
            self.vpc_zone_identifier = saved
    return method


@_patch(FakeAutoScalingGroup, "set_desired_capacity", "scale-in picks as AWS's default "
        "termination policy does (moto: list order); a suspended Terminate spares InService "
        "instances")
def balanced_scale_in(set_desired):
    def method(self, new_capacity):
        if _plane() is None:
            return set_desired(self, new_capacity)
        self.instance_states = termination_order(self.instance_states)
        if processes.may_scale_in(processes.names_of(self.suspended_processes)):
            return set_desired(self, new_capacity)
        # Terminate suspended: no InService instance is removed (Pending ones may be, as
        # on AWS); moto's scale-in skips instances protected from scale-in
        shielded = [(s, s.protected_from_scale_in) for s in self.instance_states
                    if s.lifecycle_state == "InService"]
        try:
            for state, _ in shielded:
                state.protected_from_scale_in = True
            return set_desired(self, new_capacity)
        finally:
            for state, protected in shielded:
                state.protected_from_scale_in = protected
    return method


@_patch(FakeAutoScalingGroup, "suspended_processes", "SuspendedProcesses carry AWS's "
        "SuspensionReason (moto: empty)")
def suspension_reasons(_original):
    def get_suspended(self):
        reasons = self.__dict__.get("_peakready_suspended_at", {})
        return [{"ProcessName": name, "SuspensionReason": reasons.get(name, "")}
                for name in self._suspended_processes]

    def set_suspended(self, names):
        reasons = self.__dict__.setdefault("_peakready_suspended_at", {})
        if _plane() is not None:
            now = datetime.now(UTC)
            for name in names:
                reasons.setdefault(name, processes.suspension_reason(now))
        for name in [n for n in reasons if n not in names]:
            del reasons[name]
        self._suspended_processes = list(names)

    return property(get_suspended, set_suspended)


# ---- Auto Scaling / EC2 actions ----------------------------------------------------------
@_routed(AutoScalingResponse, "describe_scaling_activities", "the plane records AWS-shaped "
         "scaling activities (cause, status, times); moto keeps none")
def describe_scaling_activities(self, plane, _original):
    items = plane.activities.query(group=self._get_param("AutoScalingGroupName"),
                                   ids=self._get_param("ActivityIds", []),
                                   limit=self._get_int_param("MaxRecords"))
    return ActionResult({"Activities": items})


@_routed(AutoScalingResponse, "terminate_instance_in_auto_scaling_group", "the instance's "
         "process stops gracefully and the answer carries the scaling activity, as on AWS")
def terminate_in_asg(self, plane, original):
    instance_id = self._get_param("InstanceId")
    decrement = self._get_bool_param("ShouldDecrementDesiredCapacity", False)
    plane.web.note_user_termination([instance_id], graceful=True, decrement=decrement)
    result = original(self)
    activity = plane.web.after_api_change()
    return ActionResult({"Activity": activity}) if activity else result


@_routed(InstanceResponse, "terminate_instances", "an EC2 terminate kills the instance's "
         "process; the group notices and replaces it")
def terminate_instances(self, plane, original):
    ids = self._get_param("InstanceIds", [])
    plane.web.note_user_termination(ids, graceful=False, decrement=False)
    result = original(self)
    plane.web.after_api_change()
    return result


@_routed(InstanceResponse, "reboot_instances", "a rebooted instance's process restarts and "
         "fails its health checks for its boot time (moto: a no-op)")
def reboot_instances(self, plane, original):
    result = original(self)  # moto validates the ids (InvalidInstanceID.NotFound)
    running = {i["id"] for i in plane.stack.instances() if i.get("alive")}
    for instance_id in self._get_param("InstanceIds", []):
        if instance_id in running:  # a stopped or foreign instance: nothing to restart
            plane.stack.reboot_instance(instance_id)
    return result


@_routed(AutoScalingResponse, "set_desired_capacity", "AWS rejects a desired capacity outside "
         "min..max (moto clamps silently); processes follow the new capacity")
def set_desired_capacity(self, plane, original):
    name = self._get_param("AutoScalingGroupName")
    desired = self._get_int_param("DesiredCapacity")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is not None and desired is not None and not (
            group.min_size <= desired <= group.max_size):
        above = desired > group.max_size
        raise AutoScalingValidationError(
            f"New SetDesiredCapacity value {desired} is {'above max' if above else 'below min'} "
            f"value {group.max_size if above else group.min_size} for the AutoScalingGroup.")
    plane.web.note_capacity_request(name, group.desired_capacity if group else None, desired)
    result = original(self)
    plane.web.after_api_change()
    return result


for _action in ("update_auto_scaling_group", "execute_policy", "suspend_processes",
                "resume_processes", "set_instance_health", "enter_standby", "exit_standby"):
    _reconciled(AutoScalingResponse, _action, f"{_action} changes capacity: the instance "
                "processes follow at once, not at the next reconcile tick")
_reconciled(InstanceResponse, "stop_instances", "a stopped instance's process stops at once")


# ---- ELBv2 -----------------------------------------------------------------------------
@_routed(ELBV2Response, "describe_target_health", "target health comes from the live "
         "balancer (initial, healthy, unhealthy, draining with reason codes)")
def describe_target_health(self, plane, original):
    result = original(self)
    return ActionResult({"TargetHealthDescriptions": plane.web.describe_target_health(
        self._get_param("TargetGroupArn"), result.result["TargetHealthDescriptions"])})


@_routed(ELBV2Response, "deregister_targets", "a deregistered target drains on the balancer "
         "for the deregistration delay and stays out (moto: gone at once, and re-registered "
         "by the group's next capacity change)")
def deregister_targets(self, plane, original):
    result = original(self)  # moto validates: unknown group, target not registered
    plane.web.user_deregistered(self._get_param("TargetGroupArn"),
                                [t["Id"] for t in self._get_param("Targets", [])])
    return result


@_routed(ELBV2Response, "register_targets", "a registered target is health-checked by the "
         "balancer from `initial` (moto: healthy at once, no traffic)")
def register_targets(self, plane, original):
    result = original(self)  # moto validates: unknown group, instance not running
    plane.web.user_registered(self._get_param("TargetGroupArn"),
                              [t["Id"] for t in self._get_param("Targets", [])])
    return result


@_routed(ELBV2Response, "modify_target_group_attributes", "deregistration_delay."
         "timeout_seconds is how long the balancer drains a deregistered target (moto: stored)")
def modify_target_group_attributes(self, plane, original):
    result = original(self)  # moto validates 0..3600
    attrs = {a["Key"]: a["Value"] for a in self._get_param("Attributes", [])}
    delay = attrs.get(DEREGISTRATION_DELAY)
    if delay not in (None, "") and plane.web is not None:
        plane.web.set_deregistration_delay(self._get_param("TargetGroupArn"), float(delay))
    return result


@_routed(ELBV2Response, "describe_target_group_attributes", "the deregistration delay the "
         "balancer drains for (the sandbox's timing until set; moto: AWS's default 300)")
def describe_target_group_attributes(self, plane, original):
    result = original(self)
    arn = self._get_param("TargetGroupArn")
    if plane.web is None or arn != plane.web.target_group_arn:
        return result
    delay = plane.web.deregistration_delay_s
    if delay is None:
        delay = plane.timing.deregistration_delay_s
    attrs = result.result["Attributes"]  # moto: a dict, serialised as Key/Value items
    if isinstance(attrs, dict):
        attrs = {**attrs, DEREGISTRATION_DELAY: f"{delay:g}"}
    else:
        attrs = [a for a in attrs if a["Key"] != DEREGISTRATION_DELAY] + [
            {"Key": DEREGISTRATION_DELAY, "Value": f"{delay:g}"}]
    return ActionResult({"Attributes": attrs})


DEREGISTRATION_DELAY = "deregistration_delay.timeout_seconds"


# ---- CloudWatch ------------------------------------------------------------------------
@_routed(CloudWatchResponse, "put_metric_data", "datapoints go to the plane's metric store, "
         "which answers statistics and percentiles as CloudWatch does")
def put_metric_data(self, plane, _original):
    namespace = self._get_param("Namespace")
    for datum in self._get_param("MetricData", []):
        ts = queries.epoch(datum["Timestamp"]) if datum.get("Timestamp") else plane.now()
        plane.store.put(namespace, datum, ts)
    return EmptyResult()


@_routed(CloudWatchResponse, "get_metric_data", "pNN statistics, expressions and ScanBy "
         "from the plane's store (moto: partial)")
def get_metric_data(self, plane, _original):
    params = self._get_params()
    for n, query in enumerate(params.get("MetricDataQueries", []), 1):
        if "MetricStat" not in query and "Expression" not in query:
            raise ValidationError(
                f"The parameter MetricDataQueries.member.{n}.MetricStat is required.\n")
    try:
        results = queries.metric_data(plane.store, params.get("MetricDataQueries", []),
                                      params["StartTime"], params["EndTime"],
                                      params.get("ScanBy") or "TimestampDescending")
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
    return ActionResult({"MetricDataResults": results, "Messages": []})


@_routed(CloudWatchResponse, "get_metric_statistics", "extended (pNN) statistics and AWS's "
         "validation from the plane's store")
def get_metric_statistics(self, plane, _original):
    stats = self._get_param("Statistics", [])
    extended = self._get_param("ExtendedStatistics", [])
    if not stats and not extended:
        raise InvalidParameterValue("Must specify either Statistics or ExtendedStatistics")
    try:
        points = queries.metric_statistics(
            plane.store, self._get_param("Namespace"), self._get_param("MetricName"),
            self._get_param("Dimensions", []), self._get_param("StartTime"),
            self._get_param("EndTime"), self._get_int_param("Period"), stats, extended,
            unit=self._get_param("Unit"))
    except ValueError as exc:
        raise InvalidParameterValue(str(exc)) from exc
    return ActionResult({"Label": self._get_param("MetricName"), "Datapoints": points})


@_routed(CloudWatchResponse, "list_metrics", "lists what the plane's store holds (the "
         "metrics put through put_metric_data above)")
def list_metrics(self, plane, _original):
    metrics = plane.store.metrics(self._get_param("Namespace"),
                                  self._get_param("MetricName"),
                                  self._get_param("Dimensions", []))
    return ActionResult({"Metrics": metrics})


@_routed(CloudWatchResponse, "describe_alarm_history", "alarm history recorded by the plane's "
         "alarm evaluation, with paging and InvalidNextToken as on AWS")
def describe_alarm_history(self, plane, _original):
    try:
        items, token = plane.history.page(
            name=self._get_param("AlarmName"),
            item_type=self._get_param("HistoryItemType"),
            start=self._get_param("StartDate"), end=self._get_param("EndDate"),
            oldest_first=self._get_param("ScanBy") == "TimestampAscending",
            limit=self._get_int_param("MaxRecords"), token=self._get_param("NextToken"))
    except ValueError as exc:
        if "NextToken" in str(exc):
            raise InvalidNextToken(str(exc)) from exc
        raise ValidationError(str(exc)) from exc
    result = {"AlarmHistoryItems": items}
    if token:
        result["NextToken"] = token
    return ActionResult(result)


@_routed(CloudWatchResponse, "set_alarm_state", "a manual state change lands in the alarm "
         "history and runs the alarm's actions, as on AWS")
def set_alarm_state(self, plane, original):
    alarm = self.cloudwatch_backend.alarms.get(self._get_param("AlarmName"))
    old = alarm.state_value if alarm is not None else None
    result = original(self)  # moto validates (name, state, JSON reason data)
    plane.alarm_state_set(self._get_param("AlarmName"), old,
                          self._get_param("StateReason") or "",
                          self._get_param("StateReasonData"))
    return result


@_routed(CloudWatchResponse, "put_metric_alarm", "a new alarm starts INSUFFICIENT_DATA and is "
         "evaluated by the plane (moto: OK, never evaluated)")
def put_metric_alarm(self, plane, original):
    result = original(self)
    plane.alarms_created([self._get_param("AlarmName")])
    return result


# ---- RDS -------------------------------------------------------------------------------
@_patch(DBCluster, "apply_failover", "moto's own failover (the writer swap), kept for the "
        "data tier to call once the standby process has promoted")
def moto_failover(_original):
    return DBCluster.failover  # applied before the patch below replaces it


@_patch(DBCluster, "failover", "a failover promotes the real standby process first; moto's "
        "writer swap (DBCluster.apply_failover) runs once it has promoted")
def failover_promotes_standby(original_failover):
    def method(cluster, target_instance):
        plane = _plane()
        if plane is None or getattr(cluster, "_peakready_apply", False):
            return original_failover(cluster, target_instance)
        plane.data.start_db_failover(cluster, target_instance)
    return method


@_routed(RDSResponse, "describe_events", "adds the failover events the data tier recorded "
         "(moto records none)")
def rds_describe_events(self, plane, original):
    moto_events = original(self).result["Events"]
    mine = plane.data.rds_events.query(
        self._get_param("SourceIdentifier"), self._get_param("SourceType"),
        self._get_param("StartTime"), self._get_param("EndTime"),
        self._get_int_param("Duration"))
    return ActionResult({"Events": list(moto_events) + mine})


@_routed(RDSResponse, "reboot_db_instance", "the node's PostgreSQL process "
         "restarts and is unavailable for its reboot time (moto: a no-op)")
def reboot_db_instance(self, plane, original):
    ident = self._get_param("DBInstanceIdentifier")
    if self._get_bool_param("ForceFailover", False):
        from peakready.sandbox.aws.refusals import CODE, UnsupportedBySandbox, message

        raise UnsupportedBySandbox(CODE, message(
            "reboot_db_instance", "ForceFailover is for Multi-AZ DB instances, which the "
            "sandbox does not model; fail the Aurora cluster over with FailoverDBCluster"))
    database = self.backend.describe_db_instances(ident)[0]  # DBInstanceNotFound as AWS
    plane.data.start_db_reboot(database)
    return ActionResult({"DBInstance": database})


# ---- ElastiCache -----------------------------------------------------------------------
@_routed(ElastiCacheResponse, "test_failover", "kills the Redis primary process and promotes "
         "the replica (moto: not implemented)")
def test_failover(self, plane, _original):
    group = plane.data.start_cache_failover(self._get_param("ReplicationGroupId"),
                                            self._get_param("NodeGroupId"))
    return ActionResult({"ReplicationGroup": group})


@_routed(ElastiCacheResponse, "reboot_cache_cluster", "restarts the node's Redis process "
         "(moto: not implemented)")
def reboot_cache_cluster(self, plane, _original):
    cluster = plane.data.start_cache_reboot(self._get_param("CacheClusterId"),
                                            self._get_param("CacheNodeIdsToReboot", []))
    return ActionResult({"CacheCluster": cluster})


@_routed(ElastiCacheResponse, "describe_events", "the failover and reboot events the data "
         "tier recorded (moto: none)")
def cache_describe_events(self, plane, _original):
    items = plane.data.cache_events.query(
        self._get_param("SourceIdentifier"), self._get_param("SourceType"),
        self._get_param("StartTime"), self._get_param("EndTime"),
        self._get_int_param("Duration"))
    return ActionResult({"Events": items})


@_routed(ElastiCacheResponse, "describe_cache_clusters", "replication-group members are cache "
         "clusters too (moto lists none), with CacheNodes from the live Redis processes")
def describe_cache_clusters(self, plane, original):
    wanted = self._get_param("CacheClusterId")
    members = plane.data.member_clusters(self._get_bool_param("ShowCacheNodeInfo", False))
    if wanted:
        mine = [m for m in members if m["CacheClusterId"] == wanted]
        if mine:
            return ActionResult({"CacheClusters": mine})
        return original(self)
    others = list(original(self).result["CacheClusters"])
    return ActionResult({"CacheClusters": members + others})


class InvalidNextToken(InvalidParameterValue):
    """AWS answers an unknown NextToken with InvalidNextToken (HTTP 400)."""

    code = "InvalidNextToken"


def termination_order(states: list) -> list:
    """Instances in the order AWS's Default termination policy would remove them: from
    the AZ with the most instances first, the oldest there first."""
    remaining = sorted(states, key=lambda s: s.instance.launch_time)
    ordered = []
    while remaining:
        zones = [s.availability_zone for s in remaining]
        busiest = max(dict.fromkeys(zones), key=zones.count)
        pick = next(s for s in remaining if s.availability_zone == busiest)
        ordered.append(pick)
        remaining.remove(pick)
    return ordered


# ---- Firehose and Athena with real behaviour (the API-log pipeline) ----------------------
from peakready.sandbox.aws import logpipe_ext  # noqa: E402

PATCHES.extend(logpipe_ext.patches(Patch, _plane))
