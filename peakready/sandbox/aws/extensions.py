"""What moto lacks, grafted onto moto's own Response classes (moto 5.2.5, pinned).

moto dispatches each action to the snake_case method of the service's Response class
and serialises the returned ``ActionResult`` for whichever protocol the client spoke
(CBOR for CloudWatch, query for the rest), so a method added or replaced here answers
stock boto3 and chaostoolkit-aws in AWS's shapes. Every patched method asks the one
attached control plane (``attach``); with none attached, moto behaves as shipped, so
other in-process users of moto are unaffected.

All moto actions, and the control plane's own edits of moto's state, run under
``LOCK``: moto's models are not thread-safe and the plane mutates them from threads.
"""

from __future__ import annotations

import functools
import threading
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

from peakready.sandbox.aws import processes, queries

LOCK = threading.RLock()
_state: dict[str, Any] = {"plane": None, "installed": False}
_orig: dict[str, Any] = {}


def attach(plane: Any) -> None:
    """Route the patched actions to ``plane`` (one control plane per process)."""
    install()
    _state["plane"] = plane


def detach(plane: Any) -> None:
    if _state["plane"] is plane:
        _state["plane"] = None


def _plane() -> Any:
    return _state["plane"]


def _patch(cls: type, name: str, func) -> None:
    _orig[f"{cls.__name__}.{name}"] = getattr(cls, name, None)
    setattr(cls, name, func)


def _original(cls: type, name: str):
    return _orig[f"{cls.__name__}.{name}"]


def _routed(cls: type, name: str):
    """Decorator: run the new method when a plane is attached, moto's otherwise."""
    def wrap(func):
        original = getattr(cls, name, None)

        @functools.wraps(func)
        def method(self, *args, **kwargs):
            plane = _plane()
            if plane is None:
                if original is None:
                    raise NotImplementedError(f"The {name} action has not been implemented")
                return original(self, *args, **kwargs)
            return func(self, plane)

        _patch(cls, name, method)
        return func
    return wrap


def install() -> None:
    """Idempotent; call before the server answers its first request."""
    if _state["installed"]:
        return
    _state["installed"] = True

    call_action = BaseResponse.call_action

    def locked_call_action(self):
        with LOCK:
            return call_action(self)

    _patch(BaseResponse, "call_action", locked_call_action)

    # A booting ASG instance is "Pending" and still counts toward capacity.
    def active_instances(self):
        return [s for s in self.instance_states if s.lifecycle_state in ("InService", "Pending")]

    _patch(FakeAutoScalingGroup, "active_instances", active_instances)

    # ... and a new instance is born Pending (moto: InService) until its target is healthy
    state_init = InstanceState.__init__

    def instance_state_init(self, instance, lifecycle_state="InService", *args, **kwargs):
        if _plane() is not None and lifecycle_state == "InService":
            lifecycle_state = "Pending"
        state_init(self, instance, lifecycle_state, *args, **kwargs)

    _patch(InstanceState, "__init__", instance_state_init)

    # ... and instances spread over the group's subnets (moto: all in the first), so an
    # AZ-wide fault takes out part of the tier, not all of it
    replace_instances = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def balanced(self, count_needed, propagated_tags):
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

    _patch(FakeAutoScalingGroup, "replace_autoscaling_group_instances", balanced)

    # scale-in picks as AWS's default termination policy does (moto: list order)
    set_desired = FakeAutoScalingGroup.set_desired_capacity

    def set_desired_capacity_balanced(self, new_capacity):
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

    _patch(FakeAutoScalingGroup, "set_desired_capacity", set_desired_capacity_balanced)

    # SuspendedProcesses carry AWS's SuspensionReason (moto: empty)
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

    _patch(FakeAutoScalingGroup, "suspended_processes", property(get_suspended, set_suspended))

    # ---- Auto Scaling / EC2 ------------------------------------------------------
    @_routed(AutoScalingResponse, "describe_scaling_activities")
    def describe_scaling_activities(self, plane):
        items = plane.activities.query(group=self._get_param("AutoScalingGroupName"),
                                       ids=self._get_param("ActivityIds", []),
                                       limit=self._get_int_param("MaxRecords"))
        return ActionResult({"Activities": items})

    original_asg_terminate = AutoScalingResponse.terminate_instance_in_auto_scaling_group

    @_routed(AutoScalingResponse, "terminate_instance_in_auto_scaling_group")
    def terminate_in_asg(self, plane):
        instance_id = self._get_param("InstanceId")
        decrement = self._get_bool_param("ShouldDecrementDesiredCapacity", False)
        plane.web.note_user_termination([instance_id], graceful=True, decrement=decrement)
        result = original_asg_terminate(self)
        activity = plane.web.after_api_change()
        return ActionResult({"Activity": activity}) if activity else result

    original_ec2_terminate = InstanceResponse.terminate_instances

    @_routed(InstanceResponse, "terminate_instances")
    def terminate_instances(self, plane):
        ids = self._get_param("InstanceIds", [])
        plane.web.note_user_termination(ids, graceful=False, decrement=False)
        result = original_ec2_terminate(self)
        plane.web.after_api_change()
        return result

    original_set_desired = AutoScalingResponse.set_desired_capacity

    @_routed(AutoScalingResponse, "set_desired_capacity")
    def set_desired_capacity(self, plane):
        name = self._get_param("AutoScalingGroupName")
        desired = self._get_int_param("DesiredCapacity")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is not None and desired is not None and not (
                group.min_size <= desired <= group.max_size):
            raise AutoScalingValidationError(
                f"New SetDesiredCapacity value {desired} is {'above max' if desired > group.max_size else 'below min'} "
                f"value {group.max_size if desired > group.max_size else group.min_size} for the AutoScalingGroup.")
        plane.web.note_capacity_request(name, group.desired_capacity if group else None, desired)
        result = original_set_desired(self)
        plane.web.after_api_change()
        return result

    for action in ("update_auto_scaling_group", "execute_policy", "suspend_processes",
                   "resume_processes", "set_instance_health", "enter_standby", "exit_standby"):
        _route_then_reconcile(AutoScalingResponse, action)
    _route_then_reconcile(InstanceResponse, "stop_instances")

    # ---- ELBv2 -------------------------------------------------------------------
    original_target_health = ELBV2Response.describe_target_health

    @_routed(ELBV2Response, "describe_target_health")
    def describe_target_health(self, plane):
        result = original_target_health(self)
        return ActionResult({"TargetHealthDescriptions": plane.web.describe_target_health(
            self._get_param("TargetGroupArn"), result.result["TargetHealthDescriptions"])})

    # ---- CloudWatch --------------------------------------------------------------
    @_routed(CloudWatchResponse, "put_metric_data")
    def put_metric_data(self, plane):
        namespace = self._get_param("Namespace")
        for datum in self._get_param("MetricData", []):
            ts = queries.epoch(datum["Timestamp"]) if datum.get("Timestamp") else plane.now()
            plane.store.put(namespace, datum, ts)
        return EmptyResult()

    @_routed(CloudWatchResponse, "get_metric_data")
    def get_metric_data(self, plane):
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

    @_routed(CloudWatchResponse, "get_metric_statistics")
    def get_metric_statistics(self, plane):
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

    @_routed(CloudWatchResponse, "list_metrics")
    def list_metrics(self, plane):
        metrics = plane.store.metrics(self._get_param("Namespace"),
                                      self._get_param("MetricName"),
                                      self._get_param("Dimensions", []))
        return ActionResult({"Metrics": metrics})

    @_routed(CloudWatchResponse, "describe_alarm_history")
    def describe_alarm_history(self, plane):
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

    original_set_state = CloudWatchResponse.set_alarm_state

    @_routed(CloudWatchResponse, "set_alarm_state")
    def set_alarm_state(self, plane):
        alarm = self.cloudwatch_backend.alarms.get(self._get_param("AlarmName"))
        old = alarm.state_value if alarm is not None else None
        result = original_set_state(self)  # moto validates (name, state, JSON reason data)
        plane.alarm_state_set(self._get_param("AlarmName"), old,
                              self._get_param("StateReason") or "",
                              self._get_param("StateReasonData"))
        return result

    original_put_alarm = CloudWatchResponse.put_metric_alarm

    @_routed(CloudWatchResponse, "put_metric_alarm")
    def put_metric_alarm(self, plane):
        result = original_put_alarm(self)
        plane.alarms_created([self._get_param("AlarmName")])
        return result

    # ---- RDS ---------------------------------------------------------------------
    original_failover = DBCluster.failover

    def failover(cluster, target_instance):
        plane = _plane()
        if plane is None or getattr(cluster, "_peakready_apply", False):
            return original_failover(cluster, target_instance)
        plane.data.start_db_failover(cluster, target_instance)

    _patch(DBCluster, "failover", failover)
    DBCluster.apply_failover = original_failover  # used once the process has promoted

    original_rds_events = RDSResponse.describe_events

    @_routed(RDSResponse, "describe_events")
    def rds_describe_events(self, plane):
        moto_events = original_rds_events(self).result["Events"]
        mine = plane.data.rds_events.query(
            self._get_param("SourceIdentifier"), self._get_param("SourceType"),
            self._get_param("StartTime"), self._get_param("EndTime"),
            self._get_int_param("Duration"))
        return ActionResult({"Events": list(moto_events) + mine})

    # ---- ElastiCache -------------------------------------------------------------
    @_routed(ElastiCacheResponse, "test_failover")
    def test_failover(self, plane):
        group = plane.data.start_cache_failover(self._get_param("ReplicationGroupId"),
                                                self._get_param("NodeGroupId"))
        return ActionResult({"ReplicationGroup": group})

    @_routed(ElastiCacheResponse, "reboot_cache_cluster")
    def reboot_cache_cluster(self, plane):
        cluster = plane.data.start_cache_reboot(self._get_param("CacheClusterId"),
                                                self._get_param("CacheNodeIdsToReboot", []))
        return ActionResult({"CacheCluster": cluster})

    @_routed(ElastiCacheResponse, "describe_events")
    def cache_describe_events(self, plane):
        items = plane.data.cache_events.query(
            self._get_param("SourceIdentifier"), self._get_param("SourceType"),
            self._get_param("StartTime"), self._get_param("EndTime"),
            self._get_int_param("Duration"))
        return ActionResult({"Events": items})

    original_cache_clusters = ElastiCacheResponse.describe_cache_clusters

    @_routed(ElastiCacheResponse, "describe_cache_clusters")
    def describe_cache_clusters(self, plane):
        """Replication-group members are cache clusters too (moto lists none), with
        CacheNodes from the live Redis processes under ShowCacheNodeInfo."""
        wanted = self._get_param("CacheClusterId")
        members = plane.data.member_clusters(self._get_bool_param("ShowCacheNodeInfo", False))
        if wanted:
            mine = [m for m in members if m["CacheClusterId"] == wanted]
            if mine:
                return ActionResult({"CacheClusters": mine})
            return original_cache_clusters(self)
        others = list(original_cache_clusters(self).result["CacheClusters"])
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


def _route_then_reconcile(cls: type, action: str) -> None:
    """Actions that change capacity: moto's effect, then processes follow at once."""
    original = getattr(cls, action)

    def method(self):
        plane = _plane()
        result = original(self)
        if plane is not None:
            plane.web.after_api_change()
        return result

    _patch(cls, action, method)
