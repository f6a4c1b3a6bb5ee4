"""The Auto Scaling group in moto and the storefront processes, kept in step both ways.

moto decides *which* instances the group has (it launches replacements and removes
terminated instances instantly); this module makes processes follow, and makes moto's
view follow the processes: a launched instance stays ``Pending`` until its target is
healthy behind the balancer, a target that stays unhealthy is marked Unhealthy and
replaced. Every launch and termination is a scaling activity with AWS's wording.

The group registers an instance in its target group only when it launches or attaches it
or the instance exits Standby, as Auto Scaling does: a target a user deregistered
(``DeregisterTargets``, chaosaws ``deregister_target``) drains and stays out until a user
registers it again, even though moto re-registers every member whenever capacity changes.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from moto.autoscaling.models import autoscaling_backends
from moto.elbv2.models import elbv2_backends

from peakready.sandbox.aws import names, processes
from peakready.sandbox.aws.extensions import LOCK
from peakready.sandbox.aws.scaling import ActivityLog, iso, launch_cause

log = logging.getLogger(__name__)
_REASONS = {"initial": "Elb.InitialHealthChecking", "unhealthy": "Target.FailedHealthChecks",
            "draining": "Target.DeregistrationInProgress", "unused": "Target.NotRegistered"}


@dataclass
class _Tracked:
    activity: str
    launched: float
    in_service_at: float | None = None
    unhealthy_since: float | None = None
    unhealthy_cause: str = ""  # why the group marked it Unhealthy (kept until replaced)
    standby: bool = False  # out of the target group while in Standby


@dataclass
class WebTier:
    stack: object
    timing: object
    activities: ActivityLog
    target_group_arn: str
    tracked: dict[str, _Tracked] = field(default_factory=dict)
    terminations: dict[str, dict] = field(default_factory=dict)  # id -> how it went
    trigger: str = ""  # why desired capacity last changed, prefixed to the next causes
    deregistered: set[str] = field(default_factory=set)  # members a user took out of the TG
    deregistration_delay_s: float | None = None  # the target group attribute; None: timing's
    _timers: list[threading.Timer] = field(default_factory=list)

    # ---- moto side ---------------------------------------------------------------
    def group(self):
        return autoscaling_backends[names.ACCOUNT_ID][names.REGION].autoscaling_groups[names.ASG]

    def counts(self) -> dict[str, int]:
        """Group sizes as AWS/AutoScaling publishes them."""
        with LOCK:
            g = self.group()
            states = [s.lifecycle_state for s in g.instance_states]
            sizes = (g.min_size, g.max_size, g.desired_capacity)
        terminating = len(self.terminations)
        return {"GroupMinSize": sizes[0], "GroupMaxSize": sizes[1],
                "GroupDesiredCapacity": sizes[2],
                "GroupInServiceInstances": states.count("InService"),
                "GroupPendingInstances": states.count("Pending"),
                "GroupTerminatingInstances": terminating,
                "GroupStandbyInstances": states.count("Standby"),
                "GroupTotalInstances": len(states) + terminating}

    def note_user_termination(self, ids: list[str], graceful: bool, decrement: bool) -> None:
        """Called by the API hooks before moto removes the instances."""
        now = datetime.now(UTC)
        for instance_id in ids:
            if instance_id not in self.tracked:
                continue
            if graceful:
                cause = f"At {iso(now)} instance {instance_id} was taken out of service in " \
                        f"response to a user request"
                cause += ", shrinking the capacity." if decrement else "."
            else:
                cause = (f"At {iso(now)} an instance was taken out of service in response to "
                         f"an EC2 health check indicating it has been terminated or stopped.")
            self.terminations.setdefault(instance_id, {"cause": cause, "graceful": graceful})

    def note_capacity_request(self, group: str, before: int | None, after: int | None) -> None:
        """SetDesiredCapacity: the causes of the launches/terminations it brings."""
        if group == names.ASG and before is not None and after is not None and before != after:
            self.trigger = (f"At {iso(datetime.now(UTC))} a user request explicitly set group "
                            f"desired capacity changing the desired capacity from {before} to "
                            f"{after}.  ")

    def after_api_change(self) -> dict | None:
        """Processes follow an API call at once; returns the newest activity."""
        self.reconcile()
        newest = self.activities.query(limit=1)
        return newest[0] if newest else None

    # ---- the loop ---------------------------------------------------------------
    def reconcile(self) -> None:
        """Launch what moto added, stop what moto removed, track health; again at once
        when a pass replaced an instance, so the replacement boots without delay."""
        for _ in range(3):
            if not self._reconcile_pass():
                return

    def _reconcile_pass(self) -> bool:
        now = time.time()
        replaced = False
        health = self.stack.target_health()  # an HTTP call: outside the lock
        with LOCK:
            g = self.group()
            suspended = processes.names_of(g.suspended_processes)
            _converge(g, suspended)
            states = {s.instance.id: s for s in g.instance_states}
            new = [i for i in states if i not in self.tracked]
            gone = [i for i in self.tracked if i not in states]
            before = len(self.tracked) - len(gone)
            trigger, self.trigger = self.trigger, ""
            if trigger and not new and len(g.active_instances()) != g.desired_capacity:
                self.trigger = trigger  # a suspended process holds it: the cause waits
            for instance_id in gone:
                self.deregistered.discard(instance_id)
                if _ec2_state(instance_id) in ("running", "pending"):
                    self._detach(instance_id)  # DetachInstances: the VM lives on, alone
                else:
                    self._terminate(instance_id, trigger, before + len(new), now)
            for n, instance_id in enumerate(new):
                states[instance_id].lifecycle_state = "Pending"
                log.info("launching %s", instance_id)
                self.stack.launch_instance(instance_id)
                self.stack.register_target(instance_id)
                self._register_in_moto(instance_id)
                cause = launch_cause(datetime.now(UTC), before + n, before + n + 1, trigger)
                activity = self.activities.start(
                    f"Launching a new EC2 instance: {instance_id}", cause)
                self.tracked[instance_id] = _Tracked(activity=activity, launched=now)
            for instance_id, state in states.items():
                self._follow_standby(instance_id, state)
            self._sync_moto_targets(states)
            for instance_id, state in states.items():
                replaced |= self._follow_health(instance_id, state, health.get(instance_id),
                                                now, suspended)
        return replaced

    def _follow_standby(self, instance_id: str, state) -> None:
        """EnterStandby takes the instance out of the target group (it drains) and
        ExitStandby puts it back, Pending until its target is healthy, as on AWS."""
        tracked = self.tracked[instance_id]
        standby = state.lifecycle_state == "Standby"
        if standby == tracked.standby:
            return
        tracked.standby = standby
        if standby:
            self.stack.deregister_target(instance_id)
            self._deregister_in_moto(instance_id)
        else:
            state.lifecycle_state = "Pending"
            self.deregistered.discard(instance_id)  # ExitStandby registers it again
            self.stack.register_target(instance_id)
            self._register_in_moto(instance_id)

    def _follow_health(self, instance_id: str, state, target: str | None, now: float,
                       suspended: frozenset[str] = frozenset()) -> bool:
        """HealthCheck marks, ReplaceUnhealthy replaces; True when the instance was
        taken out."""
        tracked = self.tracked[instance_id]
        if state.lifecycle_state == "Pending" and target == "healthy":
            state.lifecycle_state = "InService"
            tracked.in_service_at = now
            self.activities.finish(tracked.activity)
        if target == "unhealthy" and state.lifecycle_state == "InService":
            tracked.unhealthy_since = tracked.unhealthy_since or now
        else:
            tracked.unhealthy_since = None
        if state.health_status == "Healthy" and processes.may_mark_unhealthy(suspended):
            cause = self._health_check(state, tracked, now)
            if cause:
                log.info("instance %s is unhealthy", instance_id)
                state.health_status = "Unhealthy"
                tracked.unhealthy_cause = cause
        if state.health_status != "Unhealthy" or not processes.may_replace_unhealthy(suspended):
            return False
        log.info("replacing unhealthy instance %s", instance_id)
        self.terminations[instance_id] = {"cause": tracked.unhealthy_cause or (
            f"At {iso(datetime.now(UTC))} an instance was taken out of service in response "
            f"to a user health-check."), "graceful": False}
        backend = autoscaling_backends[names.ACCOUNT_ID][names.REGION]
        backend.terminate_instance(instance_id, should_decrement=False)
        return True

    def _health_check(self, state, tracked: _Tracked, now: float) -> str:
        """The cause AWS gives when its health checks fail the instance, or ""."""
        at = iso(datetime.now(UTC))
        if state.instance.state in ("stopping", "stopped"):
            # a stopped VM fails the EC2 status check at once
            return (f"At {at} an instance was taken out of service in response to an EC2 "
                    f"health check indicating it has been terminated or stopped.")
        if (tracked.unhealthy_since is not None
                and now - tracked.unhealthy_since >= self.timing.replace_unhealthy_after_s):
            return (f"At {at} an instance was taken out of service in response to an ELB "
                    f"system health check failure.")
        return ""

    def _terminate(self, instance_id: str, trigger: str, after: int, now: float) -> None:
        log.info("terminating %s", instance_id)
        how = self.terminations.get(instance_id) or {
            "cause": f"{trigger}At {iso(datetime.now(UTC))} an instance was taken out of "
                     f"service in response to a difference between desired and actual "
                     f"capacity, shrinking the capacity from {after + 1} to {after}.",
            "graceful": True}
        self.terminations[instance_id] = how
        tracked = self.tracked.pop(instance_id)
        self.activities.finish(tracked.activity, "Cancelled", "Instance was terminated.")
        activity = self.activities.start(f"Terminating EC2 instance: {instance_id}", how["cause"])
        self.stack.deregister_target(instance_id)
        self._deregister_in_moto(instance_id)
        if how["graceful"]:
            # ALB drains the target first; the VM is terminated after the delay.
            delay = self.deregistration_delay_s
            if delay is None:
                delay = self.timing.deregistration_delay_s
            timer = threading.Timer(delay, self._kill,
                                    args=(instance_id, activity, True))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        else:
            self._kill(instance_id, activity)

    def _detach(self, instance_id: str) -> None:
        tracked = self.tracked.pop(instance_id)
        self.activities.finish(tracked.activity, "Cancelled", "Instance was detached.")
        activity = self.activities.start(
            f"Detaching EC2 instance: {instance_id}",
            f"At {iso(datetime.now(UTC))} instance {instance_id} was detached in response to "
            f"a user request.")
        self.stack.deregister_target(instance_id)
        self._deregister_in_moto(instance_id)
        self.activities.finish(activity)

    def _target_group(self):
        return elbv2_backends[names.ACCOUNT_ID][names.REGION].target_groups.get(
            self.target_group_arn)

    def _register_in_moto(self, instance_id: str) -> None:
        """The group puts every instance it launches into its target groups (moto does
        only on some paths: not for the replacement of an EC2-terminated member)."""
        group = self._target_group()
        if group is not None and instance_id not in group.targets \
                and instance_id not in self.deregistered \
                and _ec2_state(instance_id) == "running":  # moto refuses the others
            group.register([{"Id": instance_id, "Port": names.WEB_PORT}])

    def _sync_moto_targets(self, states: dict) -> None:
        """The target group holds the group's instances that are not in Standby and were
        not deregistered by a user (moto re-registers every member, those too, whenever
        capacity changes)."""
        for instance_id, state in states.items():
            if state.lifecycle_state == "Standby" or instance_id in self.deregistered:
                self._deregister_in_moto(instance_id)
            else:
                self._register_in_moto(instance_id)

    def _deregister_in_moto(self, instance_id: str) -> None:
        """The group takes a terminated instance out of its target groups (moto does
        not when it scales in)."""
        group = self._target_group()
        if group is not None and instance_id in group.targets:
            group.deregister([{"Id": instance_id}])

    def _kill(self, instance_id: str, activity: str, graceful: bool = False) -> None:
        status, message = "Successful", ""
        try:
            if graceful:
                self.stack.terminate_instance(instance_id)  # SIGTERM after draining
            else:
                self.stack.kill_instance(instance_id)
        except Exception as exc:  # noqa: BLE001 - recorded on the activity, as AWS would
            log.exception("terminating %s failed", instance_id)
            status, message = "Failed", str(exc)
        self.activities.finish(activity, status, message)
        with LOCK:
            self.terminations.pop(instance_id, None)

    # ---- user requests on the target group ------------------------------------------
    def user_deregistered(self, tg_arn: str, ids: list[str]) -> None:
        """DeregisterTargets (moto has already taken them out): the balancer drains them
        for the deregistration delay; the group does not register them again."""
        if tg_arn != self.target_group_arn:
            return
        for instance_id in ids:
            self.deregistered.add(instance_id)
            self.stack.deregister_target(instance_id)

    def user_registered(self, tg_arn: str, ids: list[str]) -> None:
        """RegisterTargets (moto has validated them): the balancer health-checks them from
        ``initial``, whether or not they belong to the group."""
        if tg_arn != self.target_group_arn:
            return
        known = {i["id"] for i in self.stack.instances() if i.get("alive")}
        for instance_id in ids:
            self.deregistered.discard(instance_id)
            if instance_id in known:
                self.stack.register_target(instance_id)

    def set_deregistration_delay(self, tg_arn: str, seconds: float) -> None:
        """ModifyTargetGroupAttributes ``deregistration_delay.timeout_seconds``: the
        balancer drains for it, and a scale-in terminates the VM after it."""
        if tg_arn != self.target_group_arn:
            return
        self.stack.set_deregistration_delay(seconds)
        self.deregistration_delay_s = seconds

    def in_service(self) -> list[str]:
        with LOCK:
            return [s.instance.id for s in self.group().instance_states
                    if s.lifecycle_state == "InService"]

    def warming(self, now: float) -> int:
        """In-service instances still inside the instance warm-up."""
        return sum(1 for t in self.tracked.values() if t.in_service_at is not None
                   and now - t.in_service_at < self.timing.instance_warmup_s)

    def describe_target_health(self, tg_arn: str, described: list) -> list[dict]:
        """moto's registrations, with the balancer's real states (and draining targets)."""
        if tg_arn != self.target_group_arn:
            return described
        health = self.stack.target_health()
        out = []
        for item in described:
            target = _target(item)
            state = health.get(target.get("Id"), "unused")
            out.append(_health_item(target, state))
        listed = {t["Target"]["Id"] for t in out}
        for instance_id, state in health.items():
            if state == "draining" and instance_id not in listed:
                out.append(_health_item({"Id": instance_id, "Port": names.WEB_PORT}, state))
        return out

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()


def _converge(group, suspended: frozenset[str]) -> None:
    """Launch or terminate towards desired capacity where the processes allow it: what
    a suspended Launch or Terminate held back happens once it is resumed (the patched
    moto methods skip whatever is still suspended)."""
    active = len(group.active_instances())
    desired = group.desired_capacity or 0
    if (active < desired and processes.may_launch(suspended)) or (
            active > desired and processes.may_scale_in(suspended)):
        group.set_desired_capacity(desired)


def _ec2_state(instance_id: str) -> str:
    """moto's EC2 state of an instance ("terminated" when unknown)."""
    from moto.ec2.models import ec2_backends

    try:
        return ec2_backends[names.ACCOUNT_ID][names.REGION].get_instance(instance_id).state
    except Exception:  # noqa: BLE001 - moto raises its own not-found error
        return "terminated"


def _target(item) -> dict:
    """The Target of a moto FakeHealthStatus (or of an already-built dict)."""
    return dict(item["Target"]) if isinstance(item, dict) else dict(item.target)


def _health_item(target: dict, state: str) -> dict:
    health = {"State": state}
    if state in _REASONS:
        health["Reason"] = _REASONS[state]
    return {"Target": target, "HealthCheckPort": "traffic-port", "TargetHealth": health}
